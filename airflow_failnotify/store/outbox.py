"""The outbox: durable notifications, claimed with a lease, marked sent, failed or closed.

Persistence only: whether a failure fails a notification or keeps it pending is the retry
policy's decision (:mod:`airflow_failnotify.core.retry`); this module records it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, distinct, func, or_, select, update

from airflow_failnotify.core.model import Direction, NotificationKind, OutboxState
from airflow_failnotify.store import tables as t
from airflow_failnotify.store.codecs import payload_to_draft
from airflow_failnotify.store.records import OutboxItem
from airflow_failnotify.store.session import StoreBase, utcnow

#: The claim token of a storm digest's rows carries this: when the pass sending a digest dies, its rows
#: are claimed again as that digest (the same mail, once more) and not one by one under the cap.
DIGEST_CLAIM = "#digest-"


class OutboxStore(StoreBase):
    def _item(self, row: Any) -> OutboxItem:
        draft, settings, dag_id = payload_to_draft(row.payload)
        return OutboxItem(
            id=row.id,
            kind=NotificationKind(row.kind),
            integration=row.integration,
            direction=Direction(row.direction),
            dedupe_key=row.dedupe_key,
            state=OutboxState(row.state),
            smtp_conn_id=row.smtp_conn_id,
            immediate=bool(row.immediate),
            attempts=row.attempts,
            message_id=row.message_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            draft=draft,
            settings=settings,
            dag_id=dag_id,
            last_error=row.last_error,
            sent_at=row.sent_at,
            claim_token=row.claimed_by,
            sent_message_id=row.sent_message_id,
            hold_until=row.hold_until,
        )

    def claim(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: int,
        now: datetime | None = None,
        ids: Sequence[int] | None = None,
        after_id: int = 0,
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due notifications, oldest first, for ``lease_seconds``.

        Due = pending, or sending whose lease expired (its pass died). On PostgreSQL rows are
        locked with SKIP LOCKED so concurrent passes take disjoint sets; on SQLite the
        transaction's BEGIN IMMEDIATE serialises claimers.
        """
        now = now or utcnow()
        query = (
            select(t.outbox.c.id)
            .where(
                or_(
                    and_(
                        t.outbox.c.state == OutboxState.PENDING.value,
                        or_(t.outbox.c.hold_until.is_(None), t.outbox.c.hold_until <= now),
                    ),
                    and_(_expired(now), or_(t.outbox.c.claimed_by.is_(None),
                                            t.outbox.c.claimed_by.not_like(f"%{DIGEST_CLAIM}%"))),
                )
            )
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        if ids is not None:
            query = query.where(t.outbox.c.id.in_(list(ids)))
        if after_id:
            query = query.where(t.outbox.c.id > after_id)
        return self._claim(query, worker, lease_seconds=lease_seconds, now=now)

    def claim_storm_held(
        self, worker: str, *, lease_seconds: int, now: datetime | None = None, every: bool = False
    ) -> list[OutboxItem]:
        """Claim every row the storm cap held whose window has ended (``every``: all held rows), oldest
        first, under one token (all of one recipient set go out in one digest); and the rows of a digest
        whose pass died (claimed for a digest, lease expired)."""
        now = now or utcnow()
        held = t.outbox.c.state == OutboxState.STORM_HELD.value
        if not every:
            held = and_(held, t.outbox.c.hold_until <= now)
        died = and_(_expired(now), t.outbox.c.claimed_by.like(f"%{DIGEST_CLAIM}%"))
        query = select(t.outbox.c.id).where(or_(held, died)).order_by(t.outbox.c.id)
        return self._claim(query, worker, lease_seconds=lease_seconds, now=now, digest=True)

    def _claim(
        self, query: Any, worker: str, *, lease_seconds: int, now: datetime, digest: bool = False
    ) -> list[OutboxItem]:
        """Claim the rows ``query`` selects (their ids) under a new token for ``lease_seconds``."""
        # The token names this claim (not just the worker): a later claim of the same rows differs.
        token = f"{worker}{DIGEST_CLAIM if digest else '#'}{uuid.uuid4().hex[:12]}"
        with self._begin() as conn:
            if self.is_postgres:
                query = query.with_for_update(skip_locked=True)
            claimed = list(conn.execute(query).scalars())
            if not claimed:
                return []
            conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(claimed))
                .values(
                    state=OutboxState.SENDING.value,
                    claimed_by=token,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            )
            rows = conn.execute(
                select(t.outbox).where(t.outbox.c.id.in_(claimed)).order_by(t.outbox.c.id)
            ).all()
        return [self._item(row) for row in rows]

    def _held(self, ids: Sequence[int], claim_token: str) -> Any:
        """Rows of ``ids`` still claimed under ``claim_token`` (fencing: a pass marks only what it holds)."""
        return and_(
            t.outbox.c.id.in_(list(ids)),
            t.outbox.c.state == OutboxState.SENDING.value,
            t.outbox.c.claimed_by == claim_token,
        )

    def renew(
        self, outbox_ids: Sequence[int], claim_token: str, *, lease_seconds: int, now: datetime | None = None
    ) -> set[int]:
        """Extend the lease of the rows still held under ``claim_token``; returns their ids."""
        if not outbox_ids:
            return set()
        now = now or utcnow()
        with self._begin() as conn:
            held = set(
                conn.execute(select(t.outbox.c.id).where(self._held(outbox_ids, claim_token))).scalars()
            )
            if held:
                conn.execute(
                    update(t.outbox)
                    .where(self._held(sorted(held), claim_token))
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
                )
        return held

    def mark_sent(
        self,
        outbox_id: int,
        claim_token: str,
        *,
        now: datetime | None = None,
        note: str | None = None,
        message_id: str | None = None,
    ) -> bool:
        """Durable "sent" mark, one row, right after the server accepted the message; only by its holder."""
        now = now or utcnow()
        with self._begin() as conn:
            changed = conn.execute(
                update(t.outbox)
                .where(self._held([outbox_id], claim_token))
                .values(
                    state=OutboxState.SENT.value,
                    sent_at=now,
                    updated_at=now,
                    attempts=t.outbox.c.attempts + 1,
                    last_error=note,
                    lease_expires_at=None,
                    hold_until=None,
                    sent_message_id=message_id,
                )
            ).rowcount
        return bool(changed)

    def mark_attempt_failed(
        self,
        outbox_id: int,
        reason: str,
        *,
        claim_token: str,
        attempts: int,
        state: OutboxState,
        now: datetime | None = None,
    ) -> OutboxState | None:
        """Record a failed attempt as the policy decided: ``state`` (pending or failed) and ``attempts``.

        None when the row is not held under ``claim_token`` any more (nothing is written).
        """
        now = now or utcnow()
        with self._begin() as conn:
            changed = conn.execute(
                update(t.outbox)
                .where(self._held([outbox_id], claim_token))
                .values(
                    state=state.value,
                    attempts=attempts,
                    last_error=reason,
                    updated_at=now,
                    lease_expires_at=None,
                    claimed_by=None,
                )
            ).rowcount
        return state if changed else None

    def release(
        self,
        outbox_ids: Sequence[int],
        claim_token: str,
        *,
        reason: str | None = None,
        now: datetime | None = None,
        hold_until: datetime | None = None,
        state: OutboxState = OutboxState.PENDING,
    ) -> None:
        """Give claimed notifications back untried (their server failed earlier in this pass, or
        noise control holds them until ``hold_until``: pending, or ``storm_held`` by the storm cap)."""
        if not outbox_ids:
            return
        values: dict[str, Any] = {
            "state": state.value,
            "lease_expires_at": None,
            "claimed_by": None,
            "updated_at": now or utcnow(),
            "hold_until": hold_until,
        }
        if reason is not None:
            values["last_error"] = reason
        with self._begin() as conn:
            conn.execute(update(t.outbox).where(self._held(outbox_ids, claim_token)).values(**values))

    def sent_since(self, integration: str, direction: Direction, since: datetime) -> list[OutboxItem]:
        """The rows of one integration-direction sent at or after ``since`` (newest first)."""
        with self._connect() as conn:
            rows = conn.execute(
                select(t.outbox)
                .where(
                    t.outbox.c.integration == integration,
                    t.outbox.c.direction == direction.value,
                    t.outbox.c.state == OutboxState.SENT.value,
                    t.outbox.c.sent_at >= since,
                )
                .order_by(t.outbox.c.sent_at.desc())
            ).all()
        return [self._item(row) for row in rows]

    def mails_sent_since(self, senders: Sequence[tuple[str, str]], since: datetime) -> int:
        """Distinct mails (the Message-IDs their rows record) sent at or after ``since`` by these
        (integration, direction) pairs: what the storm cap counts for one recipient set."""
        if not senders:
            return 0
        carrier = func.coalesce(t.outbox.c.sent_message_id, t.outbox.c.message_id)
        pairs = [and_(t.outbox.c.integration == i, t.outbox.c.direction == d) for i, d in senders]
        with self._connect() as conn:
            count = conn.execute(
                select(func.count(distinct(carrier))).where(
                    t.outbox.c.state == OutboxState.SENT.value, t.outbox.c.sent_at >= since, or_(*pairs)
                )
            ).scalar_one()
        return int(count)

    def requeue(self, outbox_id: int) -> bool:
        """A person retries a failed notification (never a sent one)."""
        with self._begin() as conn:
            changed = conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id, t.outbox.c.state == OutboxState.FAILED.value)
                .values(state=OutboxState.PENDING.value, attempts=0, updated_at=utcnow())
            ).rowcount
        return bool(changed)

    def get_outbox_item(self, outbox_id: int) -> OutboxItem | None:
        with self._connect() as conn:
            row = conn.execute(select(t.outbox).where(t.outbox.c.id == outbox_id)).first()
        return None if row is None else self._item(row)

    def list_outbox(
        self,
        *,
        state: OutboxState | None = None,
        integration: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[OutboxItem], int]:
        conditions = []
        if state is not None:
            conditions.append(t.outbox.c.state == state.value)
        if integration:
            conditions.append(t.outbox.c.integration == integration)
        with self._connect() as conn:
            total = conn.execute(select(func.count()).select_from(t.outbox).where(*conditions)).scalar_one()
            rows = conn.execute(
                select(t.outbox).where(*conditions).order_by(t.outbox.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [self._item(row) for row in rows], int(total)

    def outbox_counts(self) -> dict[str, int]:
        with self._connect() as conn:
            rows = conn.execute(select(t.outbox.c.state, func.count()).group_by(t.outbox.c.state)).all()
        counts = {state.value: 0 for state in OutboxState}
        counts.update({row[0]: int(row[1]) for row in rows})
        return counts


def _expired(now: datetime) -> Any:
    """Rows a pass claimed whose lease ran out: that pass died (or froze) while sending them."""
    return and_(t.outbox.c.state == OutboxState.SENDING.value, t.outbox.c.lease_expires_at < now)
