"""``make demo DEMO_ONCE=1``: the headless demo gets one notification of each kind, then exits 0.

Runs ``python -m devtools.demo --once`` as a user would (a real api-server,
scheduler, dag-processor and triggerer, the dev SMTP server and token endpoint), in a demo directory
under tmp (not the developer's ``.demo/``) and on free ports.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from devtools.demo import KINDS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 300  # the demo's own bound for --once; it usually needs about 2 minutes

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(DEMO_TIMEOUT + 120)]


def run_demo(home: Path) -> tuple[int, str, float]:
    """The demo in its own process group; on overrun SIGTERM (it stops what it started), then SIGKILL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.demo",
            "--once",
            "--home",
            str(home),
            "--port",
            "0",
            "--smtp-port",
            "0",
            "--timeout",
            str(DEMO_TIMEOUT),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=DEMO_TIMEOUT + 60)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        output += "\n[test] the demo overran its own timeout and was stopped"
    return process.returncode, output, time.monotonic() - started


def test_demo_once_gets_every_kind_of_notification(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    code, output, seconds = run_demo(home)
    print(output)  # shown by pytest when the test fails
    assert code == 0, f"the demo exited {code} after {seconds:.0f} s:\n{output[-6000:]}"

    summary = output[output.index("one notification of each kind arrived") :]
    for kind, marker in KINDS:
        line = next((ln for ln in summary.splitlines() if ln.strip().startswith(kind)), None)
        assert line is not None and marker in line, f"summary lacks {kind!r}:\n{summary}"

    # The mails really are in the mail directory, and both connections (Basic Auth and OAuth 2.0) sent.
    parser = BytesParser(policy=policy.default)
    subjects = [
        str(parser.parsebytes(p.read_bytes())["Subject"]) for p in sorted((home / "mail").glob("*.eml"))
    ]
    for _kind, marker in KINDS:
        assert any(marker in subject for subject in subjects), (marker, subjects)
    mechanisms = set(re.findall(r"MAIL \d+\.eml \((\w+)\)", output))
    assert "XOAUTH2" in mechanisms and mechanisms & {"PLAIN", "LOGIN"}, mechanisms

    # Everything it started was stopped.
    assert re.search(r"stopped (cleanly|\(killed)", output), output[-3000:]
