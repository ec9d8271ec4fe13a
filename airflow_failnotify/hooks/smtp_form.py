"""The ``failnotify_smtp`` connection form: ``conn-fields`` and ``ui-field-behaviour``.

Read by get_provider_info() (Airflow 3's connection form) and by the hook's form widgets. Secrets are
``"format": "password"`` fields. The descriptions carry the presets of the README's section "OAuth 2.0
providers" (Microsoft 365, Google Workspace, Gmail) in short.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_failnotify.hooks.oauth2_settings import GRANT_TYPES, TOKEN_AUTH_METHODS
from airflow_failnotify.hooks.smtp_settings import (
    AUTH_TYPES,
    DEFAULT_RESPONSE_PARAMETER,
    DEFAULT_TIMEOUT,
    SECURITY_MODES,
)

#: ``conn-fields`` for get_provider_info() (Airflow 3 connection form). Secrets are password fields.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "security": {
        "label": "Security",
        "schema": {"type": ["string", "null"], "enum": [*SECURITY_MODES, None]},
        "description": "none, starttls or ssl. Empty: by port (587 starttls, 465 ssl, otherwise none).",
    },
    "auth_type": {
        "label": "Authentication type",
        "schema": {"type": ["string", "null"], "enum": [*AUTH_TYPES, None], "default": "none"},
        "description": "none (No Auth), basic (Basic Auth: login + password) "
        "or oauth2 (OAuth 2.0 + XOAUTH2).",
    },
    "from_email": {
        "label": "Sender email",
        "schema": {"type": ["string", "null"]},
        "description": "Mandatory whatever the authentication type. Also the default SMTP user name.",
    },
    "grant_type": {
        "label": "OAuth 2.0 grant",
        "schema": {"type": ["string", "null"], "enum": [*GRANT_TYPES, None], "default": "client_credentials"},
        "description": "client_credentials (Microsoft 365: client secret or certificate), "
        "refresh_token (Gmail / a user mailbox: consent obtained once) or "
        "jwt_bearer (Google Workspace: service account with domain-wide delegation). "
        "Presets: see the README, section OAuth 2.0 providers.",
    },
    "token_url": {
        "label": "Token URL",
        "schema": {"type": ["string", "null"]},
        "description": "OAuth 2.0 token endpoint. Microsoft 365: "
        "https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token; Google and Gmail: "
        "https://oauth2.googleapis.com/token (jwt_bearer: empty takes the key's token_uri).",
    },
    "client_id": {
        "label": "Client ID",
        "schema": {"type": ["string", "null"]},
        "description": "Microsoft: the app registration's Application (client) ID; Gmail: the OAuth "
        "client ID. Not used by jwt_bearer (the key names its service account).",
    },
    "client_secret": {
        "label": "Client secret",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "client_credentials with client_secret_post/basic, and refresh_token.",
    },
    "scope": {
        "label": "Scope",
        "schema": {"type": ["string", "null"]},
        "description": "Microsoft 365 client_credentials: https://outlook.office365.com/.default; "
        "Google (jwt_bearer, refresh_token): https://mail.google.com/",
    },
    "token_auth_method": {
        "label": "Token client authentication",
        "schema": {
            "type": ["string", "null"],
            "enum": [*TOKEN_AUTH_METHODS, None],
            "default": "client_secret_post",
        },
        "description": "client_secret_post (credentials in the form body), client_secret_basic "
        "(HTTP Basic) or private_key_jwt (client_credentials with a certificate: a signed client "
        "assertion, as Microsoft recommends for production apps).",
    },
    "private_key": {
        "label": "Certificate private key (PEM)",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "private_key_jwt: the PEM private key of the certificate uploaded to the app "
        "registration (Certificates & secrets).",
    },
    "certificate_thumbprint": {
        "label": "Certificate thumbprint",
        "schema": {"type": ["string", "null"]},
        "description": "private_key_jwt: the certificate's SHA-1 thumbprint as the Entra portal shows "
        "it (40 hex digits); sent as the assertion's x5t header.",
    },
    "refresh_token": {
        "label": "Refresh token",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "refresh_token grant: obtained once with the mailbox owner's consent. When the "
        "token endpoint rotates it, the new one is kept encrypted in failnotify's store.",
    },
    "service_account_key": {
        "label": "Service account key (JSON)",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "jwt_bearer: the content of the service account's JSON key file "
        "(or give service_account_key_path).",
    },
    "service_account_key_path": {
        "label": "Service account key file",
        "schema": {"type": ["string", "null"]},
        "description": "jwt_bearer: path of the JSON key file on every machine that sends mail.",
    },
    "subject": {
        "label": "Mailbox to send as (sub)",
        "schema": {"type": ["string", "null"]},
        "description": "jwt_bearer: the Workspace user the service account acts for. Empty: the SMTP "
        "user name (login, else the sender email).",
    },
    "response_parameter": {
        "label": "Response parameter",
        "schema": {"type": ["string", "null"], "default": json.dumps(DEFAULT_RESPONSE_PARAMETER)},
        "description": "JSON telling where the token and its lifetime are in the token response; "
        "dotted paths for nested responses.",
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT},
        "description": "A mail not sent within it is not sent and counts as a send failure.",
    },
    "to_email": {
        "label": "Default To email",
        "schema": {"type": ["string", "null"]},
        "description": "Recipient(s) of a test email, comma separated.",
    },
    "ca_file": {
        "label": "CA certificate file",
        "schema": {"type": ["string", "null"]},
        "description": "Optional PEM file of certificates to trust for STARTTLS/SSL (e.g. a private CA).",
    },
}

#: ``ui-field-behaviour`` for get_provider_info() and FailnotifySmtpHook.get_ui_field_behaviour().
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "extra"],
    "relabeling": {"host": "SMTP server host", "login": "SMTP user name (optional)", "password": "Password"},
    "placeholders": {
        "host": "smtp.example.com",
        "port": "25, 587 (STARTTLS) or 465 (SSL)",
        "login": "defaults to the sender email",
        "password": "Basic Auth password",
        "from_email": "airflow@example.com",
        "grant_type": "client_credentials",
        "token_url": "https://login.microsoftonline.com/<TENANT_ID>/oauth2/v2.0/token",
        "scope": "https://outlook.office365.com/.default",
        "certificate_thumbprint": "40 hex digits (Entra: Certificates & secrets)",
        "service_account_key_path": "/opt/airflow/secrets/mail-sa.json",
        "subject": "airflow@example.com",
        "response_parameter": json.dumps(DEFAULT_RESPONSE_PARAMETER),
        "to_email": "ops@example.com, oncall@example.com",
    },
}
