"""The package as Airflow sees it: provider info valid against Airflow's schema, listed by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from airflow_failnotify.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_provider_info_is_valid_against_airflows_schema() -> None:
    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    conn = info["connection-types"][0]
    assert conn["connection-type"] == "failnotify_smtp"
    assert conn["conn-fields"]["client_secret"]["schema"]["format"] == "password"
    options = info["config"]["failnotify"]["options"]
    assert {"sql_alchemy_conn", "notification_schedule", "max_attempts"} <= set(options)
    for name, option in options.items():
        assert option["description"] and "default" in option and "example" in option, name


def test_provider_info_points_at_importable_classes() -> None:
    import importlib

    info = get_provider_info()
    dotted = [
        info["connection-types"][0]["hook-class-name"],
        *info["notifications"],
        info["plugins"][0]["plugin-class"],
    ]
    for path in dotted:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)


@pytest.mark.airflow
def test_airflow_lists_the_provider_and_the_plugin(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    providers = subprocess.run(
        [AIRFLOW, "providers", "list", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert providers.returncode == 0, providers.stderr
    assert "airflow-failnotify" in providers.stdout
    hooks = subprocess.run(
        [AIRFLOW, "providers", "hooks", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "failnotify_smtp" in hooks.stdout
    plugins = subprocess.run(
        [AIRFLOW, "plugins", "--output", "json"], env=env, capture_output=True, text=True, timeout=180
    )
    assert plugins.returncode == 0, plugins.stderr
    assert '"failnotify"' in plugins.stdout


def test_task_processes_do_not_pay_for_the_views() -> None:
    """Airflow imports the plugin in every task process; the views (Flask-AppBuilder) load only on use."""
    code = (
        "import sys, airflow_failnotify.plugins.plugin as p\n"
        "assert 'flask_appbuilder' not in sys.modules, 'views imported at plugin import'\n"
        "assert p.FailnotifyPlugin.listeners, 'listener registered'\n"
        "views = p.FailnotifyPlugin().appbuilder_views\n"
        "assert {v['view'].__class__.__name__ for v in views} >= {'IntegrationsView', 'ConfigureView'}\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
