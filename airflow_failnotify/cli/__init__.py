"""The ``failnotify`` command. One module per group of sub-commands, each with ``register()``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from airflow_failnotify.exceptions import ConfigurationError, StoreNotReadyError, StoreUnavailableError

# Exit codes: 0 done, 1 the command ran and reports a failure (e.g. a test mail refused),
# 2 it could not run (bad arguments, store missing or unreachable, bad configuration).
# `failnotify health` maps its status onto the same codes: 0 ok, 1 warn, 2 bad.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2

_MODULES = ("db", "config", "audit", "silence", "mail", "run", "dag", "health", "watchdog")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="failnotify",
        description="Email notification of failing, quiet and erroring Airflow integrations.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _MODULES:
        try:
            module = importlib.import_module(f"airflow_failnotify.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"airflow_failnotify.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


_SECRET_MASKER_LOGGERS = (
    "airflow.sdk._shared.secrets_masker.secrets_masker",
    "airflow._shared.secrets_masker.secrets_masker",
)


class _NoShortSecretNotice(logging.Filter):
    """Drop Airflow's "Skipping masking for a secret as it's too short" notice.

    Airflow's Connection.extra_dejson gives every extra value to its secret masker, which warns (once
    per process) about any value shorter than ``[logging] min_length_masked_secret``, secret or not:
    a ``failnotify_smtp`` connection's ``"security": "none"`` is enough. Nothing in it is for the
    operator to act on, and our own secrets are never that short in a real deployment; the notice is
    dropped from the command's output only (task logs keep Airflow's behaviour).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Skipping masking for a secret" not in str(record.msg)


def _logs_to_stderr(verbose: bool) -> None:
    """Keep standard output for results (``--json``): Airflow's logging writes to stdout."""
    import airflow.settings  # noqa: F401 - configures Airflow's logging, which we then redirect

    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("airflow_failnotify").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in _SECRET_MASKER_LOGGERS:
        logging.getLogger(name).addFilter(_NoShortSecretNotice())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _logs_to_stderr(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (StoreNotReadyError, StoreUnavailableError, ConfigurationError) as err:
        print(f"failnotify: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
