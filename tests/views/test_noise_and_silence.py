"""The Configure page's noise control fields and its Silence/Unsilence buttons; silences in the lists."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_failnotify.core.model import Direction, NoiseSettings, OutboxState
from tests.views.conftest import VALID_FORM, Client, register_valid_form

URL = "/failnotify/configure"
NOISE_FORM = {
    **VALID_FORM,
    "noise_coalesce": "on",
    "noise_group_wait": "30",
    "noise_repeat_interval": "2h",
    "noise_recovery_mail": "on",
    "b_noise_group_wait": "0",
    "b_noise_repeat_interval": "0",
}


def test_a_new_form_shows_every_noise_option_with_its_default(admin: Client, mail: Any) -> None:
    page = admin.get(f"{URL}/sync_a")
    assert page.input_value("noise_group_wait") == "5"
    assert page.input_value("noise_repeat_interval") == "1h"
    assert 'id="noise_coalesce" name="noise_coalesce" checked>' in page.text  # on by default
    assert 'id="noise_recovery_mail" name="noise_recovery_mail" >' in page.text  # off by default
    assert 'name="b_noise_recovery_mail"' in page.text  # and in the backward section


def test_a_save_stores_the_noise_options_of_each_direction(admin: Client, fn_store: Any) -> None:
    saved = admin.post(f"{URL}/sync_a", {**NOISE_FORM, "action": "save"})
    assert saved.status == 302
    reg = fn_store.get_registration("sync_a")
    assert reg.forward.noise == NoiseSettings(True, 30, 120, True)
    assert reg.settings_for(Direction.BACKWARD).noise == NoiseSettings(False, 0, 0, False)
    page = admin.get(f"{URL}/sync_a")
    assert page.input_value("noise_repeat_interval") == "2h"
    assert page.input_value("b_noise_repeat_interval") == "0"


def test_bad_noise_values_are_refused_at_their_fields(admin: Client, fn_store: Any) -> None:
    page = admin.post(
        f"{URL}/sync_a",
        {**NOISE_FORM, "noise_group_wait": "301", "b_noise_repeat_interval": "2d", "action": "save"},
    )
    assert page.status == 422
    errors = page.field_errors()
    assert "0 to 300 seconds" in errors["noise_group_wait"]
    assert "0 to 1440 minutes" in errors["b_noise_repeat_interval"]
    assert fn_store.get_registration("sync_a") is None


def test_silence_and_unsilence_from_the_configure_page(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.get(f"{URL}/sync_a")
    assert (
        'id="failnotify-silence-button"' in page.text and 'id="failnotify-unsilence-button"' not in page.text
    )
    done = admin.post(f"{URL}/sync_a/silence", {"until": "2h", "reason": "vendor maintenance"})
    assert done.status == 302
    (silence,) = fn_store.list_silences()
    assert silence.integration == "sync_a" and silence.reason == "vendor maintenance"
    page = admin.get(f"{URL}/sync_a")
    assert 'data-silenced="yes"' in page.text and "Silenced until" in page.text
    assert 'id="failnotify-unsilence-button"' in page.text
    entries, _ = fn_store.list_audit(integration="sync_a")
    assert entries[0].action == "silence" and entries[0].actor == "admin" and entries[0].source == "ui"
    assert admin.post(f"{URL}/sync_a/unsilence").status == 302
    assert fn_store.list_silences() == []
    assert fn_store.list_audit(integration="sync_a")[0][0].action == "unsilence"


def test_a_bad_silence_is_refused_at_its_field(admin: Client, fn_store: Any) -> None:
    register_valid_form(fn_store)
    page = admin.post(f"{URL}/sync_a/silence", {"until": "whenever", "reason": "r"})
    assert page.status == 422 and "neither a duration" in page.field_errors()["until"]
    page = admin.post(f"{URL}/sync_a/silence", {"until": "1h", "reason": ""})
    assert page.status == 422 and "reason is required" in page.field_errors()["reason"]
    assert page.input_value("until") == "1h"  # the user's values come back
    assert fn_store.list_silences() == []


def test_a_viewer_may_not_silence(login: Any, fn_store: Any) -> None:
    register_valid_form(fn_store)
    assert login("viewer").post(f"{URL}/sync_a/silence", {"until": "1h", "reason": "r"}).status == 403
    assert fn_store.list_silences() == []


def test_the_integrations_list_says_silenced_until(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.service.silences import silence
    from airflow_failnotify.store import Actor

    register_valid_form(fn_store)
    now = datetime.now(timezone.utc)
    silence(fn_store, "sync_a", now + timedelta(hours=3), "deploy", Actor("admin", "ui"), now)
    page = admin.get("/failnotify/?size=100")
    row = page.between('data-dag-id="sync_a"', "</tr>")
    assert "Silenced until" in row
    assert "Silenced until" not in page.between('data-dag-id="sync_c"', "</tr>")


def test_error_management_filters_silenced_notifications_as_their_own_state(
    admin: Client, fn_store: Any
) -> None:
    from airflow_failnotify.core import rules
    from airflow_failnotify.core.model import EventKind
    from airflow_failnotify.service.evaluation import evaluate
    from airflow_failnotify.service.silences import silence
    from airflow_failnotify.store import Actor, EventRecord

    register_valid_form(fn_store)
    now = datetime.now(timezone.utc)
    silence(fn_store, "sync_a", now + timedelta(hours=3), "deploy", Actor("admin", "ui"), now)
    fn_store.record_events(  # a final task failure: a processing notification is due
        [
            EventRecord(
                kind=EventKind.TASK_FAILED,
                dag_id="sync_a",
                run_id="r1",
                occurred_at=now,
                source="task",
                task_id="load",
                try_number=1,
                max_tries=1,
                error_message="ValueError: boom",
            )
        ]
    )
    evaluate(fn_store, rules.evaluate, lambda ids: {}, now=now)
    items, _ = fn_store.list_outbox(state=OutboxState.SILENCED)
    assert items
    page = admin.get("/failnotify/errors/?ostate=silenced")
    assert page.status == 200 and '<option value="silenced" selected' in page.text
    assert f'data-outbox-id="{items[0].id}" data-state="silenced"' in page.text
