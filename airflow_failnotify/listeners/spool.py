"""The local spool: events the store could not take (down, locked, not migrated) wait here.

One JSON line per event (or activity) in ``<spool_dir>/spool-<host>-<pid>-<token>.jsonl``, one file
per process, each line flushed and fsync'd before the listener returns. The next successful store
write on the same machine replays every spooled file and deletes it. Replaying twice is harmless:
recording is idempotent (``EventRecord.capture_key``), and activity keeps the latest time.

Lines spooled by a task process on the ingest API path (``<spool_dir>/ingest``) also carry that task's
``identity`` (its task instance id and nonce, :mod:`airflow_failnotify.listeners.identity`): a later
replay through the API proves them with the identity of the task that captured them, not its own.

Concurrency (several processes on one machine):

* A writer appends under an exclusive ``flock`` of the file and, once it holds the lock, checks that
  the path still names the inode it opened; if a replayer has claimed the file meanwhile it starts a
  new file. The lock is polled for a short bounded time; if the file stays busy the writer simply
  uses a fresh file name, so a writer never waits on a replay.
* A replayer takes the same lock without waiting, renames the file to ``*.replaying`` (so no writer
  appends to it any more) and keeps the lock while it records and deletes it, so two replayers never
  work on the same file. A ``*.replaying`` file left by a replayer that died is picked up again by the
  next replay (its lock is free once that process is gone).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from airflow_failnotify.core.capture import EventRecord

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
CLAIMED_SUFFIX = ".replaying"
BAD_SUFFIX = ".bad"
WRITE_LOCK_WAIT = 0.2  # seconds a writer polls for the lock before it uses a fresh file
REPLAY_BATCH = 500  # records per store transaction while replaying

_process_lock = threading.Lock()
_file_name: str | None = None
_file_pid: int | None = None


@dataclass(frozen=True)
class SpooledActivity:
    """A run or task of ``dag_id`` started or finished at ``at`` while the store was unreachable."""

    dag_id: str
    at: datetime


def spool_dir() -> Path:
    from airflow_failnotify import settings

    return settings.spool_dir()


def _own_file_name(fresh: bool = False) -> str:
    """This process's spool file name; a forked child gets its own."""
    global _file_name, _file_pid
    pid = os.getpid()
    if fresh or _file_name is None or _file_pid != pid:
        host = socket.gethostname().replace(os.sep, "_") or "host"
        _file_name = f"spool-{host}-{pid}-{secrets.token_hex(4)}{SUFFIX}"
        _file_pid = pid
    return _file_name


def _encode(item: EventRecord | SpooledActivity, identity: Mapping[str, Any] | None = None) -> str:
    if isinstance(item, EventRecord):
        data: dict[str, Any] = {"event": item.to_json()}
    else:
        data = {"activity": {"dag_id": item.dag_id, "at": item.at.isoformat()}}
    if identity is not None:
        data["identity"] = dict(identity)
    return json.dumps(data, separators=(",", ":"), default=str) + "\n"


def _decode(line: str) -> tuple[EventRecord | SpooledActivity, str | None]:
    """The item of one line and its identity (as canonical JSON text, to group by), if any."""
    data = json.loads(line)
    identity = data.get("identity")
    key = None if identity is None else json.dumps(identity, sort_keys=True)
    if "event" in data:
        return EventRecord.from_json(data["event"]), key
    activity = data["activity"]
    return SpooledActivity(dag_id=activity["dag_id"], at=datetime.fromisoformat(activity["at"])), key


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def spool(
    items: Iterable[EventRecord | SpooledActivity],
    directory: Path | None = None,
    *,
    identity: Mapping[str, Any] | None = None,
) -> Path:
    """Append ``items`` (with ``identity`` on each line, if given) to this process's spool file, durably
    (fsync). Returns the file written.

    Raises OSError when the spool directory cannot be written (the caller logs it).
    """
    payload = "".join(_encode(item, identity) for item in items).encode("utf-8")
    directory = spool_dir() if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    with _process_lock:
        fresh = False
        for _attempt in range(5):
            path = directory / _own_file_name(fresh)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                deadline = time.monotonic() + WRITE_LOCK_WAIT
                locked = _try_lock(fd)
                while not locked and time.monotonic() < deadline:
                    time.sleep(0.01)
                    locked = _try_lock(fd)
                if not locked or not _same_file(fd, path):
                    fresh = True  # a replayer holds or has claimed the file: start a new one
                    continue
                view = memoryview(payload)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                return path
            finally:
                os.close(fd)  # also releases the lock
        raise OSError(f"could not get a spool file in {directory} that no replay holds")


def has_spooled(directory: Path | None = None) -> bool:
    """Cheap check (one directory listing) used after every successful store write."""
    directory = spool_dir() if directory is None else directory
    try:
        with os.scandir(directory) as entries:
            return any(e.name.endswith((SUFFIX, CLAIMED_SUFFIX)) for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


@contextmanager
def _claimed(path: Path) -> Iterator[IO[str] | None]:
    """Lock ``path`` without waiting and rename it out of the writers' way; None if someone holds it."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below, after the unlink
    except FileNotFoundError:
        yield None
        return
    try:
        if not _try_lock(handle.fileno()) or not _same_file(handle.fileno(), path):
            yield None
            return
        if not path.name.endswith(CLAIMED_SUFFIX):
            claimed = path.with_name(path.name + CLAIMED_SUFFIX)
            os.rename(path, claimed)
            path = claimed
        yield handle
        path.unlink(missing_ok=True)
    finally:
        handle.close()


def _spooled_files(directory: Path) -> list[Path]:
    """Spool files, oldest first (a task's own report replays before a later reconciliation)."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith((SUFFIX, CLAIMED_SUFFIX)):
                    try:
                        found.append((entry.stat().st_mtime, entry.name))
                    except FileNotFoundError:
                        continue
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [directory / name for _mtime, name in sorted(found)]


@dataclass
class _Group:
    """The items of one spool file that share an identity (None: spooled by a store-path process)."""

    identity: dict[str, Any] | None
    events: list[EventRecord] = field(default_factory=list)
    activity: dict[str, datetime] = field(default_factory=dict)


def _read(handle: IO[str], name: str) -> list[_Group]:
    groups: dict[str | None, _Group] = {}
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            item, key = _decode(line)
        except (ValueError, KeyError, TypeError) as err:
            # A line cut short by a crash mid-write: nothing to recover from it.
            log.warning("failnotify: skipping unreadable line %d of spool file %s: %s", number, name, err)
            continue
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(None if key is None else json.loads(key))
        if isinstance(item, EventRecord):
            group.events.append(item)
        else:
            previous = group.activity.get(item.dag_id)
            group.activity[item.dag_id] = item.at if previous is None else max(previous, item.at)
    return list(groups.values())


Identified = Callable[[Mapping[str, Any], list[EventRecord], dict[str, datetime]], Any]


def _record_group(
    group: _Group,
    record_events: Callable[[list[EventRecord]], Any],
    record_activity: Callable[[str, datetime], Any],
    identified: Identified | None,
) -> None:
    if group.identity is not None and identified is not None:
        identified(group.identity, group.events, group.activity)
        return
    for start in range(0, len(group.events), REPLAY_BATCH):
        record_events(group.events[start : start + REPLAY_BATCH])
    for dag_id, at in group.activity.items():
        record_activity(dag_id, at)


def replay(
    record_events: Callable[[list[EventRecord]], Any],
    record_activity: Callable[[str, datetime], Any],
    directory: Path | None = None,
    *,
    deadline: float | None = None,
    transient: Callable[[BaseException], bool] = lambda err: True,
    identified: Identified | None = None,
) -> int:
    """Record every spooled item through the two callables, deleting each file once it is recorded.

    Items spooled with an identity go to ``identified(identity, events, activity)`` when it is given
    (the ingest API path), else through the two callables like the others (a process with store
    rights replays them directly).

    When a callable raises a ``transient`` error (the store went away again) the replay stops and the
    file stays (as ``*.replaying``) for the next one; any other error sets the file aside as
    ``*.bad`` (kept for a person, never replayed again) so one bad file cannot block the others.
    ``deadline`` (a ``time.monotonic()`` value) stops before starting another file.
    Returns the number of items replayed.
    """
    directory = spool_dir() if directory is None else directory
    total = 0
    for path in _spooled_files(directory):
        if deadline is not None and time.monotonic() > deadline:
            break
        name = path.name
        with _claimed(path) as handle:
            if handle is None:
                continue
            groups = _read(handle, name)
            events = sum(len(group.events) for group in groups)
            activity = sum(len(group.activity) for group in groups)
            try:
                for group in groups:
                    _record_group(group, record_events, record_activity, identified)
            except Exception as err:
                if transient(err):
                    raise
                bad = directory / (name.removesuffix(CLAIMED_SUFFIX) + BAD_SUFFIX)
                claimed = directory / (name if name.endswith(CLAIMED_SUFFIX) else name + CLAIMED_SUFFIX)
                os.replace(claimed, bad)
                log.warning(
                    "failnotify: spool file set aside as %s, it cannot be recorded: %s: %s",
                    bad,
                    type(err).__name__,
                    str(err)[:300],
                )
                continue
            total += events + activity
        log.info("failnotify: replayed spool file %s (%d events, %d activity)", name, events, activity)
    return total
