"""Settings (plugins/views/settings.py): the Post Failure Notification schedule, read by the DAG."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.views.conftest import Client, Page

URL = "/failnotify/settings/"


def source(page: Page) -> list[str]:
    return re.findall(r'id="failnotify-source">([^<]*)<', page.text)


@pytest.fixture
def settings_page(admin: Client, fn_store: Any) -> Page:
    """The page after one notification pass (so there is a last run to show)."""
    from airflow_failnotify.service.passes import run_notification_pass

    run_notification_pass(trigger="manual", dag_status=lambda ids: {})
    return admin.get(URL)


def test_settings_shows_the_default_schedule_as_effective(settings_page: Page) -> None:
    assert settings_page.status == 200
    assert re.findall(r'id="failnotify-effective">([^<]*)<code>([^<]*)</code>', settings_page.text) == [
        ("Every 30 minutes (default) ", "*/30 * * * *")
    ]
    assert source(settings_page) == ["default"]


def test_settings_shows_the_last_run(settings_page: Page) -> None:
    assert "never" not in settings_page.between('id="failnotify-last-run">', "</td>")


def test_settings_shows_the_next_run_of_the_schedule(settings_page: Page) -> None:
    (next_run,) = re.findall(r'id="failnotify-next-run">([^<]*)<', settings_page.text)
    assert next_run.endswith(":00:00 UTC") or next_run.endswith(":30:00 UTC")


def test_settings_offers_the_presets(settings_page: Page) -> None:
    assert len(re.findall(r'<option value="[^"]+"', settings_page.text)) == 9


def test_a_chosen_schedule_is_stored_and_read_by_the_dag(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule
    from airflow_failnotify.dags.notification_dag import current_schedule

    page = admin.post(URL, {"schedule": "*/5 * * * *"})
    assert page.status == 302
    assert fn_store.get_setting(schedule.SETTING_KEY) == "*/5 * * * *"
    assert tuple(current_schedule()) == ("*/5 * * * *", "settings view")


def test_after_a_change_the_page_names_its_source_and_flashes_it(admin: Client) -> None:
    admin.post(URL, {"schedule": "*/5 * * * *"})
    page = admin.get(URL)
    assert source(page) == ["settings view"] and "Every 5 minutes" in page.text


def test_a_schedule_not_in_the_list_is_refused_and_changes_nothing(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule

    admin.post(URL, {"schedule": "*/5 * * * *"})
    page = admin.post(URL, {"schedule": "* * * * *"})
    assert page.status == 422 and "error-schedule" in page.text
    assert fn_store.get_setting(schedule.SETTING_KEY) == "*/5 * * * *"


def test_clearing_the_schedule_brings_the_default_back(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule
    from airflow_failnotify.dags.notification_dag import current_schedule

    admin.post(URL, {"schedule": "*/5 * * * *"})
    page = admin.post(URL, {"schedule": ""})
    assert page.status == 302 and fn_store.get_setting(schedule.SETTING_KEY) is None
    assert current_schedule()[0] == "*/30 * * * *"


def selected_option(page: Page) -> list[tuple[str, str]]:
    return re.findall(r'<option value="([^"]*)" selected>([^<]*)</option>', page.text)


def test_a_stored_custom_schedule_is_shown_selected(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule

    fn_store.set_setting(schedule.SETTING_KEY, "* * * * *")  # stored by hand or an older version
    page = admin.get(URL)
    assert selected_option(page) == [("* * * * *", "Custom schedule (stored): * * * * *")]
    effective = re.findall(r'id="failnotify-effective">([^<]*)<code>([^<]*)</code>', page.text)
    assert effective == [
        ("Custom schedule ", "* * * * *")
    ]  # the expression once, not "Custom: * * * * * * ..."


def test_saving_a_stored_schedule_untouched_changes_nothing(admin: Client, fn_store: Any) -> None:
    from airflow_failnotify.core import schedule

    fn_store.set_setting(schedule.SETTING_KEY, "* * * * *")
    ((value, _label),) = selected_option(admin.get(URL))
    page = admin.post(URL, {"schedule": value})
    assert page.status == 302
    assert fn_store.get_setting(schedule.SETTING_KEY) == "* * * * *"
    assert fn_store.list_audit()[1] == 0  # nothing changed, nothing recorded
    assert "Nothing changed" in admin.get(URL).text


def test_a_preset_round_trips_and_is_recorded(admin: Client, fn_store: Any) -> None:
    admin.post(URL, {"schedule": "0 * * * *"})
    page = admin.get(URL)
    assert selected_option(page) == [("0 * * * *", "Every hour")]
    admin.post(URL, {"schedule": "0 * * * *"})  # again, untouched
    entries, total = fn_store.list_audit()
    assert total == 1 and entries[0].actor == "admin" and entries[0].action == "setting"
    assert [(c.field, c.before, c.after) for c in entries[0].changes] == [
        ("notification_schedule", None, "0 * * * *")
    ]


def test_only_one_option_says_default(settings_page: Page) -> None:
    options = re.findall(
        r"<option [^>]*>([^<]*)</option>", settings_page.between('id="schedule"', "</select>")
    )
    assert sum("(default)" in o for o in options) == 1
