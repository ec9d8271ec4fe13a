"""``make demo``: the whole product on the embedded default (SQLite), with a local mail server.

    python -m devtools.demo            # interactive: Ctrl-C stops everything
    python -m devtools.demo --once     # headless: wait for one mail of each kind

What it does, from a clean ``.demo/`` (deleted and recreated at every start, so runs are reproducible):

1. ``.demo/airflow`` is ``$AIRFLOW_HOME``: Airflow's metadata DB and the failnotify store on SQLite,
   LocalExecutor with parallelism 4, the SimpleAuthManager with a known login (admin / admin), the
   repository's ``dags/`` folder (the Post Failure Notification DAG and ``dags/examples/``).
2. In this process: the dev SMTP server (checks credentials; one console line per message, an ``.eml``
   file per message under ``.demo/mail/``) and the OAuth 2.0 token endpoint; two ``failnotify_smtp``
   connections, ``demo_mail_basic`` (Basic Auth) and ``demo_mail_oauth`` (OAuth 2.0 + XOAUTH2).
3. ``failnotify db migrate``, ``failnotify config import examples/demo.yaml`` and a one-minute
   notification schedule (the store setting the Settings view changes).
4. Airflow as separate processes, each in its own process group, all on 127.0.0.1 with no log server:
   ``api-server``, ``scheduler --skip-serve-logs``, ``dag-processor``, ``triggerer --skip-serve-logs``;
   their output goes to ``.demo/logs/``. The DAGs are unpaused at creation and get a first scheduled
   run at once; the always-failing one is triggered once more (its threshold is 2 consecutive failed
   runs), so every kind of mail arrives within about two minutes. Then they run every 2 minutes.

Stopping (Ctrl-C, SIGTERM, or the end of ``--once``) sends SIGTERM to every process group it started,
waits, then SIGKILLs what is left. Nothing is stopped by name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from types import FrameType
from typing import Any

from airflow_failnotify.constants import NOTIFICATION_DAG_ID
from devtools.smtp_server import DevSmtpServer, ReceivedMessage
from devtools.token_server import TokenServer

HOST = "127.0.0.1"
MARKER = ".failnotify-demo"
UI_USER = "admin"
UI_PASSWORD = "admin"  # noqa: S105 - a demo login on 127.0.0.1, printed on purpose
SMTP_USER = "demo-robot@failnotify.demo"
SMTP_PASSWORD = "demo-smtp-password"  # noqa: S105 - the local dev SMTP server's demo credentials
OAUTH_CLIENT_ID = "failnotify-demo-client"
OAUTH_CLIENT_SECRET = "demo-client-secret"  # noqa: S105
OAUTH_SCOPE = "https://mail.failnotify.demo/.default"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
NOTIFICATION_SCHEDULE = "* * * * *"

#: (kind, text in the subject that tells it), in the order a summary lists them.
KINDS: tuple[tuple[str, str], ...] = (
    ("not accessible", "Not accessible"),
    ("job failed", "Job failed"),
    ("consecutive job failures", "consecutive job failures"),
    ("no activity", "No activity for"),
    ("entity failures", "entity failure"),
)
#: DAG runs triggered once at start (the always-failing one twice: its threshold is 2).
TRIGGERS: tuple[tuple[str, int], ...] = (
    ("demo_sync_crm_to_erp", 1),
    ("demo_sync_erp_to_crm", 1),
    ("demo_export_to_warehouse", 2),
)
EXAMPLE_DAGS = (*(dag_id for dag_id, _ in TRIGGERS), "demo_quiet_inventory", NOTIFICATION_DAG_ID)
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("api-server", ("api-server", "--host", HOST, "--port", "{port}", "--workers", "1")),
    ("scheduler", ("scheduler", "--skip-serve-logs")),
    ("dag-processor", ("dag-processor",)),
    ("triggerer", ("triggerer", "--skip-serve-logs")),
)


class DemoError(Exception):
    """Something the demo could not do; the message says what and where to look."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


# ---------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pick_port(wanted: int | None, preferred: int) -> int:
    """``wanted`` (must be free), 0 = any free port, None = ``preferred`` when free, else any."""
    if wanted:
        if not port_is_free(wanted):
            raise DemoError(f"port {wanted} on {HOST} is in use; pick another or pass 0 for a free one")
        return wanted
    if wanted is None and port_is_free(preferred):
        return preferred
    return free_port()


def default_repo() -> Path:
    """The clone holding ``dags/examples`` and ``examples/demo.yaml``: the one around this file, or cwd.

    ``devtools/`` is not installed with the package, so the demo always runs from a clone.
    """
    for candidate in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (candidate / "examples" / "demo.yaml").is_file() and (candidate / "dags" / "examples").is_dir():
            return candidate
    raise DemoError(
        "run the demo from the airflow-failnotify checkout (examples/demo.yaml not found), or pass --repo"
    )


def fmt_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def tail(path: Path, chars: int = 2500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def kinds_of(subject: str) -> list[str]:
    """Every kind a subject names: a combined mail (noise control) names several."""
    return [kind for kind, marker in KINDS if marker in subject]


def demo_running_in(home: Path) -> int | None:
    """The pid of a demo still running in ``home`` (from its marker file), if any."""
    try:
        pid = int((home / MARKER).read_text(encoding="utf-8").strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and b"devtools.demo" in cmdline else None


@dataclass
class Landed:
    kind: str
    subject: str
    path: Path
    after: float


def scan_mail_dir(mail_dir: Path, started_wall: float, seen: dict[str, Landed]) -> None:
    """Add the first message of each kind found in ``mail_dir`` (``.eml`` files) to ``seen``."""
    parser = BytesParser(policy=policy.default)
    for path in sorted(mail_dir.glob("*.eml")):
        try:
            with path.open("rb") as handle:
                headers = parser.parse(handle, headersonly=True)
            landed_at = path.stat().st_mtime
        except OSError:
            continue
        subject = " ".join(str(headers.get("Subject", "")).split())
        for kind in kinds_of(subject):
            if kind not in seen:
                seen[kind] = Landed(kind, subject, path, max(0.0, landed_at - started_wall))


# ---------------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------------


@dataclass
class Demo:
    repo: Path
    home: Path
    port: int
    smtp_port: int
    once: bool
    timeout: float
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    smtp: DevSmtpServer | None = None
    tokens: TokenServer | None = None
    _print_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- paths and environment --------------------------------------------------------------------
    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def say(self, text: str) -> None:
        with self._print_lock:
            print(f"[{fmt_duration(time.monotonic() - self.started):>6}] {text}", flush=True)

    def connections(self) -> dict[str, dict[str, Any]]:
        assert self.smtp is not None and self.tokens is not None
        common = {
            "security": "none",
            "from_email": SMTP_USER,
            "to_email": "demo-inbox@example.com",
            "timeout": 20,
        }
        return {
            "demo_mail_basic": {
                "conn_type": "failnotify_smtp",
                "host": HOST,
                "port": self.smtp.port,
                "login": SMTP_USER,
                "password": SMTP_PASSWORD,
                "description": "Demo mail server (Basic Auth), the demo's local SMTP server",
                "extra": {**common, "auth_type": "basic"},
            },
            "demo_mail_oauth": {
                "conn_type": "failnotify_smtp",
                "host": HOST,
                "port": self.smtp.port,
                "description": "Demo mail server (OAuth 2.0 + XOAUTH2), the demo's local SMTP server",
                "extra": {
                    **common,
                    "auth_type": "oauth2",
                    "token_url": self.tokens.url,
                    "client_id": OAUTH_CLIENT_ID,
                    "client_secret": OAUTH_CLIENT_SECRET,
                    "scope": OAUTH_SCOPE,
                },
            },
        }

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and k != "AIRFLOW_CONFIG"
        }
        home = self.airflow_home
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.repo / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__API__HOST": HOST,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__SECRET_KEY": self.secret("api-secret-key"),
                "AIRFLOW__API_AUTH__JWT_SECRET": self.secret("jwt-secret"),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__FAILNOTIFY__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'failnotify.db'}",
                "AIRFLOW__FAILNOTIFY__SPOOL_DIR": str(home / "failnotify-spool"),
                "AIRFLOW__FAILNOTIFY__IMMEDIATE_POLL_SECONDS": "2",
                "PYTHONWARNINGS": "ignore",
            }
        )
        return env

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    _secrets: dict[str, str] = field(default_factory=dict)

    def secret(self, name: str) -> str:
        return self._secrets.setdefault(name, secrets.token_urlsafe(48))

    # --- set-up -------------------------------------------------------------------------------------
    def fresh_home(self) -> None:
        """Delete and recreate the demo directory (only one the demo made, or an empty one)."""
        if self.home.exists():
            if not (self.home / MARKER).exists() and any(self.home.iterdir()):
                raise DemoError(
                    f"{self.home} exists and is not a demo directory (no {MARKER} in it); "
                    "refusing to delete it: pass another --home"
                )
            running = demo_running_in(self.home)
            if running is not None:
                raise DemoError(
                    f"a demo (pid {running}) is running in {self.home}; stop it first (Ctrl-C there, or "
                    f"kill -INT {running}), or pass another --home"
                )
            shutil.rmtree(self.home)
        for path in (self.airflow_home / "plugins", self.mail_dir, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        (self.home / MARKER).write_text(str(os.getpid()), encoding="utf-8")  # who runs in it
        (self.home / "README").write_text(
            "made by devtools.demo; deleted at its next start\n", encoding="utf-8"
        )
        self.passwords_file.write_text(json.dumps({UI_USER: UI_PASSWORD}), encoding="utf-8")

    def start_mail(self) -> None:
        self.tokens = TokenServer(
            {OAUTH_CLIENT_ID: OAUTH_CLIENT_SECRET}, scopes={OAUTH_SCOPE}, host=HOST
        ).start()
        self.smtp = DevSmtpServer(
            HOST,
            self.smtp_port,
            users={SMTP_USER: SMTP_PASSWORD},
            tokens=self.tokens,
            security="none",
            mail_dir=self.mail_dir,
            require_auth=True,
            on_message=self._show_message,
        ).start()

    def _show_message(self, record: ReceivedMessage) -> None:
        to = record.message.get("To") or ", ".join(record.rcpt_tos)
        name = record.path.name if record.path else "-"
        via = record.auth_mechanism or "no auth"
        self.say(f"MAIL {name} ({via})  To: {to}  Subject: {' '.join(record.subject.split())}")

    def run_step(
        self, name: str, args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> None:
        """One set-up command; its output goes to logs/setup.log; a failure raises with the output."""
        result = subprocess.run(
            args,
            env=dict(env or self.env()),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with (self.log_dir / "setup.log").open("a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise DemoError(
                f"{name} failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
            )

    def airflow_bin(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def setup_databases(self) -> None:
        """Airflow's DB, the store, the registrations and the schedule; the connections."""
        py = sys.executable
        conn_file = self.airflow_home / "demo-connections.json"
        conn_file.write_text(
            json.dumps(
                {
                    conn_id: {**conn, "extra": json.dumps(conn["extra"])}
                    for conn_id, conn in self.connections().items()
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        conn_file.chmod(0o600)
        # The config import checks that the connections resolve: give it them as AIRFLOW_CONN_*.
        import_env = {
            **self.env(),
            **{f"AIRFLOW_CONN_{cid.upper()}": json.dumps(conn) for cid, conn in self.connections().items()},
        }

        def store_steps() -> None:
            self.run_step("failnotify db migrate", [py, "-m", "airflow_failnotify", "db", "migrate"])
            self.run_step(
                "failnotify config import",
                [
                    py,
                    "-m",
                    "airflow_failnotify",
                    "config",
                    "import",
                    str(self.repo / "examples" / "demo.yaml"),
                ],
                env=import_env,
            )
            self.run_step(
                "notification schedule",
                [
                    py,
                    "-c",
                    (
                        "from airflow_failnotify.store import get_store; "
                        f"get_store().set_setting('notification_schedule', {NOTIFICATION_SCHEDULE!r})"
                    ),
                ],
            )

        errors: list[BaseException] = []

        def guarded() -> None:
            try:
                store_steps()
            except BaseException as err:  # reported by the main thread
                errors.append(err)

        worker = threading.Thread(target=guarded, name="demo-store-setup", daemon=True)
        worker.start()
        self.run_step("airflow db migrate", [self.airflow_bin(), "db", "migrate"])
        self.say("Airflow metadata DB migrated (SQLite)")
        worker.join()
        if errors:
            raise errors[0]
        self.say(
            f"failnotify store migrated; examples/demo.yaml imported; notification schedule "
            f"'{NOTIFICATION_SCHEDULE}'"
        )
        self.run_step(
            "airflow connections import", [self.airflow_bin(), "connections", "import", str(conn_file)]
        )
        self.say("connections demo_mail_basic (Basic Auth) and demo_mail_oauth (OAuth 2.0) created")

    # --- Airflow processes --------------------------------------------------------------------------
    def start_components(self) -> None:
        env = self.env()
        for name, args in COMPONENTS:
            argv = [self.airflow_bin(), *(a.format(port=self.port) for a in args)]
            with (self.log_dir / f"{name}.log").open("wb") as log_file:
                # Own process group (stopped by its id). Our SIGINT handler is a Python function, so the
                # child gets the default SIGINT action after exec, even if the demo runs as a background job.
                self.processes[name] = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=self.airflow_home,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        self.say(
            "started "
            + ", ".join(f"{n} (pid {p.pid})" for n, p in self.processes.items())
            + f"; logs in {self.log_dir}/"
        )

    def check_components(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DemoError(
                    f"airflow {name} exited with {process.returncode}; its log "
                    f"({self.log_dir / (name + '.log')}) ends with:\n{tail(self.log_dir / (name + '.log'))}"
                )

    def stop_components(self, grace: float = 20.0) -> None:
        """Stop every process group started here: SIGTERM, a grace period, then SIGKILL.

        The api-server goes last: running tasks report their end through its execution API, so the
        scheduler (which waits for its tasks) and the others are stopped first.
        """
        if not self.processes:
            return
        self.say("stopping " + ", ".join(self.processes) + " ...")
        first = [(n, p) for n, p in self.processes.items() if n != "api-server"]
        last = [(n, p) for n, p in self.processes.items() if n == "api-server"]
        killed: list[str] = []
        for wave, wait in ((first, grace), (last, 10.0)):
            for _name, process in wave:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + wait
            for _name, process in wave:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
            for name, process in wave:
                # The leader may be gone while others of its group (task workers) are not: kill the group.
                if process.poll() is None:
                    killed.append(name)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        self.processes.clear()
        self.say(
            "stopped" + (f" (killed after the grace period: {', '.join(killed)})" if killed else " cleanly")
        )

    # --- the REST API -------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 10
    ) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers, method=method)
        # On SQLite the api-server answers 500 when the scheduler holds the metadata DB's write lock
        # ("database is locked"), and late on a loaded machine; both pass, so a few retries make the
        # demo robust on small machines.
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=timeout) as response:
                    payload = response.read()
                return json.loads(payload) if payload else None
            except urllib.error.HTTPError as err:
                if err.code < 500 or attempt == 4:
                    raise
            except (TimeoutError, ConnectionError):  # a busy machine: the api-server answers late
                # A POST may have been done (a second dag run); the others are safe to repeat.
                if attempt == 4 or (method == "POST" and path != "/auth/token"):
                    raise
            time.sleep(1 + attempt)
        return None  # pragma: no cover - the loop returns or raises

    def wait_until(self, what: str, probe: Any, timeout: float, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.check_components()
            try:
                value = probe()
            except (urllib.error.URLError, OSError, ValueError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise DemoError(f"{what} not within {timeout:.0f} s; see the logs in {self.log_dir}/")
            time.sleep(interval)

    def wait_for_airflow(self) -> str:
        self.wait_until(
            "the api-server answering",
            lambda: self.request("GET", "/api/v2/monitor/health", timeout=3) is not None,
            180,
        )
        token: str = self.wait_until(
            "a login token",
            lambda: self.request("POST", "/auth/token", {"username": UI_USER, "password": UI_PASSWORD})[
                "access_token"
            ],
            60,
        )
        self.say(f"api-server up at {self.base_url}")

        def parsed() -> bool:
            dags = self.request("GET", "/api/v2/dags?limit=100", token=token)["dags"]
            return set(EXAMPLE_DAGS) <= {d["dag_id"] for d in dags}

        self.wait_until("the example DAGs parsed by the dag-processor", parsed, 180)
        self.say("example DAGs and the notification DAG parsed (unpaused at creation)")
        return token

    def trigger_examples(self, token: str) -> None:
        """Make sure each example has its first runs now rather than at its next tick.

        Unpaused at creation, a DAG usually gets a scheduled run at once; trigger only what is missing
        (the always-failing DAG needs two failed runs for its threshold).
        """
        triggered = []
        for dag_id, wanted in TRIGGERS:
            self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token=token)
            have = int(
                self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=1", token=token)["total_entries"]
            )
            for _ in range(max(0, wanted - have)):
                self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}, token=token)
                triggered.append(dag_id)
        self.say(
            "first runs under way"
            + (f" (triggered: {', '.join(triggered)})" if triggered else "")
            + "; then they run every 2 minutes"
        )

    # --- output -------------------------------------------------------------------------------------
    def banner(self) -> None:
        assert self.smtp is not None and self.tokens is not None
        lines = [
            "",
            "failnotify demo is running"
            + (" (headless: waiting for one mail of each kind)" if self.once else ""),
            f"  Airflow UI       {self.base_url}/   login {UI_USER} / {UI_PASSWORD}",
            f"  failnotify views Plugins > Failure Notification: {self.base_url}/plugin/failnotify",
            f"                   (the views alone: {self.base_url}/pluginsv2/failnotify/)",
            f"  mail             SMTP {self.smtp.address}, credentials checked (Basic Auth and XOAUTH2)",
            f"                   OAuth 2.0 token endpoint {self.tokens.url}",
            f"                   every message: one line here and an .eml file in {self.mail_dir}/",
            f"  AIRFLOW_HOME     {self.airflow_home}   (component logs: {self.log_dir}/)",
            "  integrations     demo_sync_crm_to_erp <-> demo_sync_erp_to_crm, demo_export_to_warehouse,"
            " demo_quiet_inventory",
            "",
        ]
        if not self.once:
            lines.insert(-1, "  Ctrl-C stops every process the demo started.")
        with self._print_lock:
            print("\n".join(lines), flush=True)

    def wait_for_every_kind(self) -> dict[str, Landed]:
        seen: dict[str, Landed] = {}
        deadline = self.started + self.timeout
        while True:
            scan_mail_dir(self.mail_dir, self.started_wall, seen)
            if len(seen) == len(KINDS):
                return seen
            self.check_components()
            if time.monotonic() > deadline:
                missing = [kind for kind, _ in KINDS if kind not in seen]
                raise DemoError(
                    f"within {fmt_duration(self.timeout)} no mail arrived for: {', '.join(missing)} "
                    f"(subjects containing {', '.join(repr(m) for k, m in KINDS if k in missing)}); "
                    f"arrived: {', '.join(seen) or 'nothing'}. Look at {self.log_dir}/ and the "
                    f"notification DAG's task logs under {self.airflow_home / 'logs'}/"
                )
            time.sleep(1.0)

    def summary(self, seen: dict[str, Landed]) -> None:
        width = max(len(kind) for kind, _ in KINDS)
        lines = [
            "",
            f"failnotify demo: one notification of each kind arrived in "
            f"{fmt_duration(time.monotonic() - self.started)}",
        ]
        for kind, _marker in KINDS:
            landed = seen[kind]
            lines.append(
                f"  {kind:<{width}}  {fmt_duration(landed.after):>6}  {landed.subject}  ({landed.path.name})"
            )
        lines.append(f"  all messages: {self.mail_dir}/")
        with self._print_lock:
            print("\n".join(lines), flush=True)

    # --- the whole run ------------------------------------------------------------------------------
    def run(self) -> int:
        self.say(f"setting up a fresh demo in {self.home}")
        self.fresh_home()
        self.start_mail()
        self.setup_databases()
        self.start_components()
        token = self.wait_for_airflow()
        self.trigger_examples(token)
        self.banner()
        if self.once:
            self.summary(self.wait_for_every_kind())
            return 0
        while True:
            self.check_components()
            time.sleep(1.0)

    def close(self) -> None:
        self.stop_components()
        for server in (self.smtp, self.tokens):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted`, also when started as a background job.

    A background job starts with SIGINT ignored; setting a Python handler here also means that the
    Airflow processes (exec'd children) start with the default SIGINT action, not "ignored".
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="Run airflow-failnotify with Airflow, example integrations and a local mail server.",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="headless: exit 0 when one notification of each kind has arrived, 1 if not in time",
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="demo directory, deleted and recreated at start (default: <repo>/.demo)",
    )
    parser.add_argument("--repo", type=Path, default=None, help="the checkout (default: this one)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="Airflow UI/API port on 127.0.0.1 (default 8080 when free; 0 = any free port)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=None,
        help="dev SMTP server port (default 2525 when free; 0 = any free port)",
    )
    parser.add_argument(
        "--timeout", type=float, default=480, help="--once: seconds to wait for every kind (default 480)"
    )
    args = parser.parse_args(argv)

    demo: Demo | None = None
    with handle_signals():
        try:
            repo = (args.repo or default_repo()).resolve()
            demo = Demo(
                repo=repo,
                home=(args.home or repo / ".demo").resolve(),
                port=pick_port(args.port, 8080),
                smtp_port=pick_port(args.smtp_port, 2525),
                once=args.once,
                timeout=args.timeout,
            )
            return demo.run()
        except Interrupted as why:
            print(f"\n{why}: stopping", flush=True)
            return 0 if not args.once else 130
        except DemoError as err:
            print(f"\nfailnotify demo FAILED: {err}", file=sys.stderr, flush=True)
            return 1
        finally:
            if demo is not None:
                # A second Ctrl-C while stopping must not leave processes behind: ignore it.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                demo.close()


if __name__ == "__main__":
    sys.exit(main())
