"""The headers that make a notification a thread member and a list message: Message-ID, List-Id, References.

Pure: imports nothing from Airflow, SQLAlchemy or Flask.

- Message-ID: the same for every send of one notification (from its dedupe key), a new one for each
  test mail.
- Threads: mails about one integration-direction form one thread per failure episode
  (:class:`~airflow_failnotify.core.model.DirectionState`): the episode's first mail is the root, every
  later one carries ``In-Reply-To`` and ``References`` with the root's Message-ID.
- List-Id (RFC 2919): one list per integration (both directions), so people can filter on it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

from airflow_failnotify.core.model import DirectionSettings, NotificationDraft
from airflow_failnotify.core.notification import Attachment, Notification
from airflow_failnotify.core.subjects import subject_for
from airflow_failnotify.core.text import MAX_DAG_ID_CHARS, as_utc, base_url_of, clean_addresses, header_safe

__all__ = ["MESSAGE_ID_DOMAIN", "list_id_for", "message_id_for", "references_for", "unique_message_id"]

MESSAGE_ID_DOMAIN = "failnotify"
LIST_ID_FALLBACK_DOMAIN = "localhost"
_LIST_LABEL_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_LIST_DOMAIN_UNSAFE = re.compile(r"[^a-z0-9.-]+")


def unique_message_id(kind: str) -> str:
    """A new Message-ID, for a mail that is never sent twice (a test mail, a callback's mail)."""
    return f"<{kind}-{uuid.uuid4().hex}@{MESSAGE_ID_DOMAIN}>"


def message_id_for(dedupe_key: str) -> str:
    """A Message-ID that is the same for every send of one notification."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def list_id_for(integration: str, base_url: str | None = None) -> str:
    """The List-Id of an integration's mails (RFC 2919), both directions alike.

    ``"failnotify: sync_a" <sync_a.failnotify.airflow.example.com>``: the integration (lower case,
    anything but letters, digits, ``_`` and ``-`` made ``-``), ``failnotify``, and the host of the
    Airflow UI's base URL (``localhost`` without one), so mails of several Airflow deployments stay
    apart and people can filter on one integration.
    """
    label = _LIST_LABEL_UNSAFE.sub("-", integration.lower()).strip("-")[:100] or "integration"
    base = base_url_of(base_url)
    host = (urlsplit(base).hostname or "") if base else ""
    domain = _LIST_DOMAIN_UNSAFE.sub("-", host.lower()).strip(".-") or LIST_ID_FALLBACK_DOMAIN
    phrase = header_safe(integration, MAX_DAG_ID_CHARS).replace("\\", "").replace('"', "")
    list_address = f"<{label}.{MESSAGE_ID_DOMAIN}.{domain}>"
    if phrase and phrase.isascii():
        return f'"failnotify: {phrase}" {list_address}'
    return list_address


def references_for(draft: NotificationDraft) -> tuple[str, ...]:
    """The episode's first mail, for every later mail of the episode (the first one starts the thread)."""
    if draft.episode_key and draft.episode_key != draft.dedupe_key:
        return (message_id_for(draft.episode_key),)
    return ()


def notification_for(
    draft: NotificationDraft,
    settings: DirectionSettings,
    text: str,
    html: str,
    *,
    dag_id: str | None,
    base_url: str | None,
    now: datetime | None,
    attachments: tuple[Attachment, ...] = (),
    failed_tasks: tuple[str, ...] = (),
) -> Notification:
    """A draft's rendered bodies as the Notification every kind shares: subject, recipients,
    Message-ID from the dedupe key, Date, the kinds and thread headers."""
    return Notification(
        subject=subject_for(draft, settings, dag_id),
        text=text,
        html=html,
        to=clean_addresses(settings.recipients),
        cc=clean_addresses(settings.cc),
        message_id=message_id_for(draft.dedupe_key),
        attachments=attachments,
        date=as_utc(now) if now is not None else datetime.now(timezone.utc),
        episode_key=draft.episode_key,
        kinds=(draft.kind.value,),
        failed_tasks=failed_tasks,
        references=references_for(draft),
        list_id=list_id_for(draft.integration, base_url),
    )
