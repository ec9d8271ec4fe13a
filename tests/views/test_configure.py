"""Configure Failure Notification (plugins/views/configure.py): the form, Save/Update, Test, Unregister."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.views.conftest import DB_CONN_SECRET, VALID_FORM, Client, Mail, Page, register_valid_form

URL = "/failnotify/configure"
BACKWARD_HIDDEN = re.compile(r'id="failnotify-backward" class="failnotify-backward" hidden')

# (case, changes to VALID_FORM (None removes the key), the field that must show the message)
INVALID_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no_server", {"smtp_conn_id": ""}, "smtp_conn_id"),
    ("bad_server_id", {"smtp_conn_id": "bad id!"}, "smtp_conn_id"),
    ("no_recipients", {"recipients": ""}, "recipients"),
    ("bad_recipient", {"recipients": "ops@example.com, not-an-address"}, "recipients"),
    ("bad_cc", {"cc": "audit@"}, "cc"),
    ("prefix_line_break", {"subject_prefix": "[Sync]\r\nBcc: x@evil.test"}, "subject_prefix"),
    ("prefix_too_long", {"subject_prefix": "x" * 150}, "subject_prefix"),
    ("bad_trace_choice", {"include_error_trace": "maybe"}, "include_error_trace"),
    ("bad_inactivity", {"inactivity": "soon"}, "inactivity"),
    ("zero_inactivity", {"inactivity": "0"}, "inactivity"),
    ("threshold_21", {"failure_count_threshold": "21"}, "failure_count_threshold"),
    ("threshold_0", {"failure_count_threshold": "0"}, "failure_count_threshold"),
    ("threshold_text", {"failure_count_threshold": "abc"}, "failure_count_threshold"),
    ("backward_is_itself", {"backward_integration": "sync_c"}, "backward_integration"),
    ("separate_without_backward_dag", {"backward_integration": ""}, "same_for_backward"),
    ("backward_no_recipients", {"b_recipients": ""}, "b_recipients"),
    ("backward_bad_cc", {"b_cc": "x@@y"}, "b_cc"),
    (
        "backward_threshold_99",
        {"b_failure_count_threshold": "99", "b_notify_immediately": None},
        "b_failure_count_threshold",
    ),
    ("backward_bad_inactivity", {"b_inactivity": "-5"}, "b_inactivity"),
    ("backward_dag_taken", {"backward_integration": "sync_a"}, "backward_integration"),
]
CASE_IDS = [case for case, _, _ in INVALID_CASES]


def post_form(client: Client, dag_id: str, form: dict[str, Any], action: str = "save") -> Page:
    return client.post(f"{URL}/{dag_id}", {**form, "action": action})


def outcome_flags(page: Page) -> list[str]:
    return re.findall(r'data-ok="(yes|no)"', page.text)


def forward_reason(page: Page) -> list[str]:
    return re.findall(r"<strong>Test \(forward\):</strong> ([^<]*)<", page.text)


# ----------------------------------------------------------------------------------------------- new form


@pytest.fixture
def new_form(admin: Client, mail: Mail) -> Page:
    return admin.get(f"{URL}/sync_a")


def test_new_form_says_not_registered(new_form: Page) -> None:
    assert new_form.status == 200
    assert "Not registered" in new_form.text


def test_new_form_offers_the_failnotify_smtp_connections_of_metastore_and_environment(new_form: Page) -> None:
    assert set(re.findall(r'<option value="(mail_[\w]+)"', new_form.text)) == {
        "mail_db",
        "mail_down",
        "mail_test",
    }
    assert "other_http" not in new_form.text  # a connection of another type


def test_new_form_shows_a_server_host_but_never_its_secret(new_form: Page) -> None:
    assert "mail_db (smtp.db.test)" in new_form.text
    assert DB_CONN_SECRET not in new_form.text


def test_new_form_links_to_airflows_connection_list_outside_the_frame(new_form: Page) -> None:
    assert re.search(r'href="/connections" target="_top"', new_form.text)


def test_new_form_includes_the_error_trace_by_default(new_form: Page) -> None:
    assert re.search(r'<option value="yes" selected>Yes</option>', new_form.text)


def test_new_form_checks_the_seed_defaults(new_form: Page) -> None:
    checked = set(re.findall(r'name="(\w+)"[^>]*?\schecked', new_form.text))
    assert checked >= {
        "global_enabled",
        "notify_immediately",
        "processing_enabled",
        "same_for_backward",
        "b_global_enabled",
    }
    assert "notify_before_max_retries" not in checked


def test_new_form_hides_the_backward_section_and_scripts_the_threshold(new_form: Page) -> None:
    assert BACKWARD_HIDDEN.search(new_form.text)
    assert 'id="threshold-group"' in new_form.text
    assert "failnotify.js" in new_form.text


def test_new_form_offers_the_other_dags_as_backward_dag(new_form: Page) -> None:
    assert re.findall(r'<option value="(sync_\w)"', new_form.text) == ["sync_b", "sync_c", "sync_d", "sync_e"]


def test_new_form_has_save_and_test_buttons(new_form: Page) -> None:
    assert re.findall(r'name="action" value="(\w+)"', new_form.text) == ["save", "test"]


# ----------------------------------------------------------------------------------------------- save


def test_valid_save_redirects_to_the_form(admin: Client) -> None:
    saved = post_form(admin, "sync_a", VALID_FORM)
    assert saved.status == 302 and saved.location.endswith("/failnotify/configure/sync_a")


def test_valid_save_stores_every_field(admin: Client, fn_store: Any) -> None:
    post_form(admin, "sync_a", VALID_FORM)
    reg = fn_store.get_registration("sync_a")
    assert reg is not None and reg.backward is not None
    assert {
        "server": reg.forward.smtp_conn_id,
        "recipients": list(reg.forward.recipients),
        "cc": list(reg.forward.cc),
        "prefix": reg.forward.subject_prefix,
        "trace": reg.forward.include_error_trace,
        "global": [
            reg.forward.global_.enabled,
            reg.forward.global_.inactivity_minutes,
            reg.forward.global_.notify_immediately,
            reg.forward.global_.failure_count_threshold,
        ],
        "processing": [reg.forward.processing.enabled, reg.forward.processing.notify_before_max_retries],
        "backward_dag": reg.backward_integration,
        "same": reg.same_for_backward,
        "backward_recipients": list(reg.backward.recipients),
        "backward_prefix": reg.backward.subject_prefix,
        "backward_immediate": reg.backward.global_.notify_immediately,
    } == {
        "server": "mail_test",
        "recipients": ["ops@example.com", "lead@example.com"],
        "cc": ["audit@example.com"],
        "prefix": "[Sync]",
        "trace": False,
        "global": [True, 120, False, 5],
        "processing": [True, True],
        "backward_dag": "sync_b",
        "same": False,
        "backward_recipients": ["back@example.com"],
        "backward_prefix": "[Back]",
        "backward_immediate": True,
    }


def test_after_a_save_the_form_flashes_that_it_was_saved(admin: Client) -> None:
    post_form(admin, "sync_a", VALID_FORM)
    assert "was saved" in admin.get(f"{URL}/sync_a").text


def test_a_registered_form_shows_registered_update_and_unregister(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.get(f"{URL}/sync_a")
    assert "Registered" in page.text and "forward and backward" in page.text
    assert ">Update</button>" in page.text
    assert 'id="failnotify-unregister"' in page.text


def test_a_registered_form_shows_the_stored_values(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.get(f"{URL}/sync_a")
    assert page.input_value("inactivity") == "2h"
    assert page.input_value("failure_count_threshold") == "5"
    assert not BACKWARD_HIDDEN.search(page.text)  # separate backward settings: the section is open


# ----------------------------------------------------------------------------------------------- refused


@pytest.fixture
def refused(request: pytest.FixtureRequest, admin: Client, fn_store: Any) -> tuple[Page, dict[str, Any], str]:
    """The answer to a Save of VALID_FORM with one invalid field (sync_a registered, backward sync_b)."""
    register_valid_form(fn_store)
    _case, changes, expected = next(c for c in INVALID_CASES if c[0] == request.param)
    return post_form(admin, "sync_c", {**VALID_FORM, **changes}), changes, expected


@pytest.mark.parametrize("refused", CASE_IDS, indirect=True)
def test_an_invalid_field_is_refused_with_its_message_at_the_field(refused: tuple[Page, Any, str]) -> None:
    page, _changes, expected = refused
    assert page.status == 422
    errors = page.field_errors()
    assert expected in errors, errors
    assert errors[expected].strip()


@pytest.mark.parametrize("refused", CASE_IDS, indirect=True)
def test_an_invalid_form_stores_nothing_and_says_so(refused: tuple[Page, Any, str], fn_store: Any) -> None:
    page, _changes, _expected = refused
    assert fn_store.get_registration("sync_c") is None
    assert "Nothing was saved" in page.text


@pytest.mark.parametrize("refused", CASE_IDS, indirect=True)
def test_an_invalid_form_comes_back_with_the_users_values(refused: tuple[Page, dict[str, Any], str]) -> None:
    page, changes, _expected = refused
    if "recipients" not in changes:
        assert page.input_value("recipients") == VALID_FORM["recipients"]


def test_an_invalid_update_keeps_the_stored_registration(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    before = fn_store.get_registration("sync_a")
    page = post_form(admin, "sync_a", {**VALID_FORM, "recipients": "nope", "cc": ""})
    assert page.status == 422
    assert fn_store.get_registration("sync_a") == before


def test_user_values_are_escaped_when_the_form_comes_back(admin: Client) -> None:
    page = post_form(admin, "sync_c", {**VALID_FORM, "recipients": '"><script>x()</script>'})
    assert "<script>x()" not in page.text and "&lt;script&gt;x()" in page.text


# ----------------------------------------------------------------------------------------------- Test button


@pytest.fixture
def tested(admin: Client, mail: Mail) -> tuple[Page, list[Any]]:
    """Test of a valid form with separate backward settings (backward DAG sync_d): page, mails."""
    before = len(mail.server.messages)
    page = post_form(admin, "sync_c", {**VALID_FORM, "backward_integration": "sync_d"}, "test")
    return page, mail.server.wait_for(before + 2)[before:]


def test_test_button_reports_success_for_each_direction(tested: tuple[Page, list[Any]]) -> None:
    page, _mails = tested
    assert page.status == 200 and outcome_flags(page) == ["yes", "yes"]


def test_test_button_mails_the_recipients_and_cc_of_each_direction(tested: tuple[Page, list[Any]]) -> None:
    _page, mails = tested
    assert sorted(sorted(m.rcpt_tos) for m in mails) == [
        ["audit@example.com", "lead@example.com", "ops@example.com"],
        ["back@example.com"],
    ]


def test_test_button_mails_carry_each_directions_subject_prefix(tested: tuple[Page, list[Any]]) -> None:
    _page, mails = tested
    assert sorted(str(m.message["Subject"]) for m in mails) == [
        "[Back] Test notification: sync_d (backward of sync_c)",
        "[Sync] Test notification: sync_c (forward)",
    ]


def test_test_button_saves_nothing_and_keeps_the_form(tested: tuple[Page, list[Any]], fn_store: Any) -> None:
    page, _mails = tested
    assert fn_store.get_registration("sync_c") is None
    assert page.input_value("subject_prefix") == "[Sync]"


def test_test_button_shows_the_exact_reason_when_the_server_is_down(admin: Client, mail: Mail) -> None:
    page = post_form(
        admin, "sync_c", {**VALID_FORM, "smtp_conn_id": "mail_down", "same_for_backward": "on"}, "test"
    )
    assert page.status == 200 and outcome_flags(page) == ["no"]
    (reason,) = forward_reason(page)
    assert reason.startswith("Not sent:") and "127.0.0.1" in reason


@pytest.fixture
def tested_db_conn(admin: Client, mail: Mail) -> Page:
    """Test through ``mail_db`` (metastore, a host that does not resolve, a password)."""
    return post_form(
        admin, "sync_c", {**VALID_FORM, "smtp_conn_id": "mail_db", "same_for_backward": "on"}, "test"
    )


def test_test_button_reason_names_the_connections_host(tested_db_conn: Page) -> None:
    assert outcome_flags(tested_db_conn) == ["no"]
    assert "smtp.db.test" in forward_reason(tested_db_conn)[0]


def test_test_button_never_shows_a_connection_secret(tested_db_conn: Page) -> None:
    assert DB_CONN_SECRET not in tested_db_conn.text


def test_test_with_an_invalid_form_is_refused_and_sends_nothing(admin: Client, mail: Mail) -> None:
    page = post_form(admin, "sync_c", {**VALID_FORM, "recipients": ""}, "test")
    assert page.status == 422 and "recipients" in page.field_errors()
    assert mail.server.messages == []


# ----------------------------------------------------------------------------------------------- email server


def _register_server(store: Any, dag_id: str, conn_id: str) -> None:
    from airflow_failnotify.core.model import DirectionSettings, Registration

    settings = DirectionSettings(smtp_conn_id=conn_id, recipients=("ops@example.com",))
    store.save_registration(Registration(integration=dag_id, forward=settings))


def test_a_stored_server_that_resolves_nowhere_is_marked_not_found(admin: Client, fn_store: Any) -> None:
    _register_server(fn_store, "sync_c", "mail_gone")
    page = admin.get(f"{URL}/sync_c")
    assert re.search(r'<option value="mail_gone" selected>mail_gone \(not found\)</option>', page.text)


def test_a_server_only_another_secrets_backend_knows_is_offered_with_its_host(
    admin: Client, fn_store: Any, vault_backend: None
) -> None:
    _register_server(fn_store, "sync_c", "mail_vault")
    page = admin.get(f"{URL}/sync_c")
    assert re.search(
        r'<option value="mail_vault" selected>mail_vault \(vault\.example\.test\)</option>', page.text
    )


def test_a_typed_in_server_id_of_another_secrets_backend_is_accepted(
    admin: Client, fn_store: Any, vault_backend: None
) -> None:
    page = post_form(admin, "sync_c", {**VALID_FORM, "smtp_conn_id": "mail_vault", "same_for_backward": "on"})
    assert page.status == 302
    assert fn_store.get_registration("sync_c").forward.smtp_conn_id == "mail_vault"


# ----------------------------------------------------------------------------------------------- unregister


def test_unregister_asks_for_confirmation_first(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.get(f"{URL}/sync_a/unregister")
    assert page.status == 200
    assert 'id="failnotify-unregister-yes"' in page.text and 'name="confirm" value="yes"' in page.text


def test_unregister_without_confirmation_removes_nothing(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.post(f"{URL}/sync_a/unregister")
    assert page.status == 302
    assert fn_store.get_registration("sync_a") is not None


def test_unregister_with_confirmation_removes_the_registration(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.post(f"{URL}/sync_a/unregister", {"confirm": "yes"})
    assert page.status == 302 and page.location.endswith("/failnotify/")
    assert fn_store.get_registration("sync_a") is None


def test_unregister_of_an_unregistered_integration_goes_back_to_the_form(admin: Client) -> None:
    assert admin.get(f"{URL}/sync_a/unregister").status == 302


# ------------------------------------------------------------------------------------------ backward DAGs


def test_the_form_of_a_backward_dag_says_which_integration_covers_it(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)  # sync_a, backward sync_b
    page = admin.get(f"{URL}/sync_b")
    assert page.status == 200
    assert 'data-covered-by="sync_a"' in page.text
    assert re.search(r'<a href="[^"]*/configure/sync_a" id="failnotify-covered-by">sync_a</a>', page.text)
    assert 'id="failnotify-configure-form"' not in page.text  # nothing to fill in


def test_a_post_for_a_backward_dag_is_refused_before_anything_is_filled(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = post_form(admin, "sync_b", {**VALID_FORM, "backward_integration": ""})
    assert page.status == 409 and 'data-covered-by="sync_a"' in page.text
    assert fn_store.get_registration("sync_b") is None


# ----------------------------------------------------------------------------------------------- audit


def test_a_save_is_recorded_with_the_users_name_and_what_changed(admin: Client, fn_store: Any) -> None:
    post_form(admin, "sync_c", VALID_FORM)
    post_form(admin, "sync_c", {**VALID_FORM, "subject_prefix": "[New]"})
    entries, total = fn_store.list_audit(integration="sync_c")
    assert total == 2
    update, register = entries
    assert (register.actor, register.source, register.action) == ("admin", "ui", "register")
    assert (update.action, [(c.field, c.before, c.after) for c in update.changes]) == (
        "update",
        [("subject_prefix", "[Sync]", "[New]")],
    )


def test_the_configure_page_shows_the_change_history(admin: Client, fn_store: Any) -> None:
    post_form(admin, "sync_c", VALID_FORM)
    page = admin.get(f"{URL}/sync_c")
    history = page.between('id="failnotify-history"', "</table>")
    assert 'data-action="register"' in history and ">admin <small" in history


def test_a_save_without_a_change_records_nothing(admin: Client, fn_store: Any) -> None:
    post_form(admin, "sync_c", VALID_FORM)
    post_form(admin, "sync_c", VALID_FORM)
    assert fn_store.list_audit(integration="sync_c")[1] == 1


def test_an_unregister_is_recorded_with_the_users_name(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    admin.post(f"{URL}/sync_a/unregister", {"confirm": "yes"})
    (entry,), _ = fn_store.list_audit(integration="sync_a")
    assert (entry.actor, entry.action) == ("admin", "unregister")
    assert ("recipients", "ops@example.com, lead@example.com", None) in [
        (c.field, c.before, c.after) for c in entry.changes
    ]
