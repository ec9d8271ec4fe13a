"""``failnotify test-email CONN_ID [--to A,B]``: send a real test email through a connection."""

from __future__ import annotations

import argparse
import sys

from airflow_failnotify.exceptions import MailDeliveryError

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and the mail was not sent
EXIT_CANNOT_RUN = 2  # the connection is missing or invalid, or there is no recipient


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test-email",
        help="send a test email through a failnotify_smtp connection",
        description="Send a real test email through a failnotify_smtp connection and say what happened. "
        "Exit 0 when sent, 1 when the server or token endpoint refused or failed, 2 when the "
        "connection is missing or invalid.",
    )
    parser.add_argument("conn_id", metavar="CONN_ID", help="the failnotify_smtp connection id")
    parser.add_argument(
        "--to",
        default=None,
        metavar="A,B",
        help="comma separated recipients (default: the connection's to_email)",
    )
    parser.set_defaults(func=run_test_email)


def run_test_email(args: argparse.Namespace) -> int:
    """Send the test email; print what happened; return the exit code."""
    from airflow_failnotify.core.addresses import is_connection_address, parse_connection_recipients
    from airflow_failnotify.hooks.smtp import FailnotifySmtpHook
    from airflow_failnotify.service.test_email import send_test_email

    conn_id: str = args.conn_id
    try:
        settings = FailnotifySmtpHook(failnotify_smtp_conn_id=conn_id).settings
    except MailDeliveryError as err:
        print(f"failnotify: test email not sent: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN

    to = parse_connection_recipients(args.to) if args.to else list(settings.to_emails)
    if not to:
        print(
            "failnotify: test email not sent: no recipient; "
            f"pass --to or set to_email on connection {conn_id!r}",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    bad = [addr for addr in to if not is_connection_address(addr)]
    if bad:
        print(f"failnotify: test email not sent: not an email address: {', '.join(bad)}", file=sys.stderr)
        return EXIT_CANNOT_RUN

    outcome = send_test_email(conn_id, to)
    if isinstance(outcome.error, MailDeliveryError):
        kind = "temporary" if outcome.error.temporary else "permanent"
        print(f"failnotify: test email not sent ({kind} failure): {outcome.error}", file=sys.stderr)
        return EXIT_FAILED
    if outcome.error is not None:  # not a delivery failure: a bug, shown as one
        raise outcome.error
    refused = outcome.refused
    accepted = [addr for addr in to if addr not in refused]
    print(
        f"test email sent through {conn_id} ({settings.address}, security {settings.security}, "
        f"auth {settings.auth_type}) from {settings.from_email} to {', '.join(accepted)}"
    )
    if refused:
        details = ", ".join(
            f"{addr} ({code} {reply.decode('utf-8', 'replace').strip()})"
            for addr, (code, reply) in refused.items()
        )
        print(f"failnotify: the server refused some recipients: {details}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``test-email`` alone (``python -m airflow_failnotify.cli.mail CONN_ID``)."""
    parser = argparse.ArgumentParser(prog="failnotify")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["test-email", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
