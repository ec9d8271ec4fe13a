"""A registered DAG's presence as Airflow's metadata database tells it (lookups/airflow_health.py and
lookups/dags.py), read by the real lookups in a process whose Airflow uses a migrated copy of the
metadata database: rows written through Airflow's own models.

The case that matters: a DAG file deleted while the dag-processor parsed it. Airflow fails to write the
DAG, sets ``has_import_errors`` on it and marks it stale; the import error row goes with the file. Seen on
a running Airflow (tests/e2e/test_watchdog_running.py, a loaded host): the DAG is missing, not broken.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.airflow_env import AirflowEnv

pytestmark = [pytest.mark.airflow]

SCRIPT = r'''
import json
from datetime import datetime, timezone

from airflow.models.dag import DagModel
from airflow.models.dagbundle import DagBundleModel
from airflow.models.errors import ParseImportError
from airflow.utils.session import create_session

from airflow_failnotify.lookups.airflow_health import dag_presence
from airflow_failnotify.lookups.dags import dag_status_from_metadata_db

BUNDLE = "dags-folder"
# dag_id: (is_stale, has_import_errors, an import error row for its file)
CASES = {
    "fine": (False, False, False),
    "broken": (True, True, True),  # a file that fails to import: stale, with its error row
    "deleted_while_parsed": (True, True, False),  # Airflow's leftover flag, no error row
    "deleted": (True, False, False),
}
with create_session() as session:
    session.add(DagBundleModel(name=BUNDLE))
    session.flush()
    for dag_id, (stale, flagged, error_row) in CASES.items():
        session.add(DagModel(dag_id=dag_id, bundle_name=BUNDLE, fileloc=f"/dags/{dag_id}.py",
                             relative_fileloc=f"{dag_id}.py", is_paused=False, is_stale=stale,
                             has_import_errors=flagged))
        if error_row:
            session.add(ParseImportError(filename=f"{dag_id}.py", bundle_name=BUNDLE,
                                         timestamp=datetime.now(timezone.utc), stacktrace="SyntaxError"))
names = [*CASES, "never_parsed"]
print(json.dumps({
    "presence": {k: v.value for k, v in dag_presence(names).items()},
    "status": {k: v.presence.value for k, v in dag_status_from_metadata_db(names).items()},
}))
'''


def test_a_dag_deleted_while_it_was_parsed_is_missing_not_broken(airflow_env: AirflowEnv) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=airflow_env.env(), cwd=airflow_env.home,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {"fine": "active", "broken": "broken", "deleted_while_parsed": "missing", "deleted": "missing",
                "never_parsed": "missing"}
    assert found["presence"] == expected
    assert found["status"] == expected  # what the pass's DAG-status lookup says, the same
