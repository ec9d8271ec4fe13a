"""The suite as ``make test`` runs it: two pytest sessions at once, one per core.

The tests that start a whole Airflow, or bound how long real processes take, run in the foreground
session at normal priority. Every other test runs at the same time in a second session, niced, so it
takes only the CPU the first leaves idle: an Airflow stack spends most of its time waiting for its
scheduler, and the rest of the suite is CPU-bound. Measured on 2 cores: the whole suite in one session
took 17m34s; side by side, 10m47s (foreground 10m43s, background 7m10s, the Celery short case included).
On a host about 2x slower (2026-12-02, afternoon): 18m24s (foreground 18m15s, background 16m); later
that day, with a few more tests: 19m55s (foreground 19m45s, background 18m22s).

Both sessions must pass. The foreground session prints as it goes; the background one writes to
``test-artifacts/pytest-background.log``, printed once the foreground session is done.

Usage: ``python -m devtools.run_suite [pytest options]`` (what ``make test`` passes), or with
``--serial`` first: the whole suite in one session, with the options after it (e.g. ``-k``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG = REPO_ROOT / "test-artifacts" / "pytest-background.log"

#: The foreground session: the longest running-Airflow cases (the critical path) and the tests whose
#: assertions bound real time. Everything else, smaller Airflow stacks included, is the background's.
FOREGROUND = (
    "tests/e2e",
    "tests/reliability",
    "tests/triggers",
    "tests/listeners/test_watchdog_process.py",
)
NICENESS = 10
NO_TESTS_COLLECTED = 5


def _pytest(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


def _explain(rc: int, what: str) -> int:
    """pytest's exit code, with "no tests collected" made a failure: a run of nothing is a defect."""
    if rc == NO_TESTS_COLLECTED:
        print(f"ERROR: pytest collected no tests for {what} (exit code 5)", file=sys.stderr)
        return 1
    return rc


def run_serial(options: list[str]) -> int:
    return _explain(subprocess.call(_pytest([*options, "tests"]), cwd=REPO_ROOT), "tests")


def run_split(options: list[str]) -> int:
    """The two sessions side by side; returns 0 only when both passed."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    ignored = [f"--ignore={path}" for path in FOREGROUND]
    with LOG.open("w", encoding="utf-8") as log:
        background = subprocess.Popen(
            ["nice", "-n", str(NICENESS), *_pytest([*options, *ignored, "tests"])],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            foreground_rc = _explain(
                subprocess.call(_pytest([*options, *FOREGROUND]), cwd=REPO_ROOT), "the foreground session"
            )
            background_rc = _explain(background.wait(), "the background session")
        finally:
            if background.poll() is None:  # interrupted: do not leave the second session running
                os.killpg(background.pid, signal.SIGTERM)
                background.wait()
    print(f"\n===== background session ({', '.join(['tests', *ignored])}) =====", flush=True)
    sys.stdout.write(LOG.read_text(encoding="utf-8", errors="replace"))
    print(f"\n===== suite: foreground exit {foreground_rc}, background exit {background_rc} =====")
    return foreground_rc or background_rc


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--serial":
        return run_serial(argv[1:])
    return run_split(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
