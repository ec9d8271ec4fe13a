"""Error signatures: what folds identical errors in the mail and the PDF (issue 18)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_failnotify.core.model import Direction, EventKind, FailureEvent
from airflow_failnotify.core.signatures import error_type, group_by_signature, signature_of

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def failure(i: int, message: str, entity: str | None = None, minutes: int = 0) -> FailureEvent:
    return FailureEvent(
        id=i, kind=EventKind.ENTITY_FAILED, integration="sync", direction=Direction.FORWARD, dag_id="sync",
        run_id=f"run_{i}", occurred_at=T0 + timedelta(minutes=minutes), entity=entity, error_message=message,
    )


def test_the_type_is_the_prefix_of_a_captured_message() -> None:
    assert error_type("ValueError: bad") == "ValueError"
    assert error_type("requests.exceptions.HTTPError: 403") == "requests.exceptions.HTTPError"
    assert error_type("KeyboardInterrupt") == "KeyboardInterrupt"
    assert error_type("the ERP said no") == ""


def test_what_varies_between_failures_is_not_part_of_the_signature() -> None:
    uuid_one, uuid_two = "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "6fa459ea-ee8a-3ca4-894e-db77e160355e"
    one = failure(1, f"ValueError: ERP refused INV-7001: amount 12.50 at 0x7f3a uuid {uuid_one}", "INV-7001")
    two = failure(2, f"ValueError: ERP refused INV-9: amount 3.00 at 0x1 uuid {uuid_two}", "INV-9")
    expected = "ValueError: ERP refused <entity>: amount <n>.<n> at <hex> uuid <uuid>"
    assert signature_of(one) == signature_of(two) == expected


def test_another_type_or_another_text_is_another_signature() -> None:
    base = failure(1, "ValueError: field 'vat_id' is empty")
    assert signature_of(base) != signature_of(failure(2, "TypeError: field 'vat_id' is empty"))
    assert signature_of(base) != signature_of(failure(3, "ValueError: field 'name' is empty"))
    assert signature_of(failure(4, "ValueError:  field   'vat_id' is empty")) == signature_of(base)


def test_groups_keep_every_failure_in_order_of_their_first_failure() -> None:
    events = [
        failure(1, "TimeoutError: no answer in 30 s", "B", minutes=5),
        failure(2, "ValueError: bad row 1", "A", minutes=1),
        failure(3, "ValueError: bad row 2", "C", minutes=9),
        failure(4, "ValueError: bad row 3", "A", minutes=7),  # the same entity failing again
    ]
    groups = group_by_signature(events)
    assert [g.signature for g in groups] == ["ValueError: bad row <n>", "TimeoutError: no answer in <n> s"]
    folded = groups[0]
    assert folded.count == 3 and [e.id for e in folded.events] == [2, 4, 3]
    assert folded.labels() == ["A", "C"]
    assert (folded.first_at, folded.last_at) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=9))
    assert sum(g.count for g in groups) == len(events)
