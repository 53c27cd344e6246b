"""The deliveries table as a work queue: what is due, claiming it, and writing down what each
attempt got.

A delivery is claimable when it is pending and due, nobody's lease on it is running, its
subscription is enabled, and no earlier event of the same object waits for the same
subscription (pending, whether due or being retried): one object's events go out in the order
they happened. Claiming sets ``lease_until``; rows are taken ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so workers never claim a row together, and a killed worker's claims come free
when its lease runs out. Leases run on real time, due times on business time: moving the
sandbox clock a day ahead makes retries due, and frees no claim held for an attempt in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, exists, func, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fundline.kit import clock
from fundline.kit.statements import Connection, Prepared
from fundline.models import Event, WebhookDelivery, WebhookSubscription
from fundline.models.webhook import (
    RESPONSE_MAX_LENGTH,
    WebhookDeliveryStatus,
    WebhookSubscriptionStatus,
)
from fundline.webhooks import outbox, schedule, signing
from fundline.webhooks.sender import Answer

PENDING = WebhookDeliveryStatus.PENDING
# A subscription whose every attempt has failed for this long is disabled.
FAILING_LIMIT = timedelta(days=5)
GONE_REASON = "the receiver answered 410 Gone"
FAILING_REASON = "every attempt failed for 5 days"


class Outcome(StrEnum):
    """What became of an attempt (the ``outcome`` label of the deliveries metric)."""

    SUCCEEDED = "succeeded"
    RETRYING = "retrying"  # failed; another attempt is scheduled
    FAILED = "failed"  # failed, and it was the last attempt
    GONE = "gone"  # 410: the subscription is disabled
    DROPPED = "dropped"  # the delivery was deleted meanwhile (its subscription with it)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds: everything its attempt needs."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    url: str
    secret: str
    body: bytes


_earlier = aliased(WebhookDelivery)
_WAITS_FOR_EARLIER = exists().where(
    _earlier.subscription_id == WebhookDelivery.subscription_id,
    _earlier.object_id == WebhookDelivery.object_id,
    _earlier.status == PENDING,
    tuple_(_earlier.event_created_at, _earlier.event_id)
    < tuple_(WebhookDelivery.event_created_at, WebhookDelivery.event_id),
)


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    busy: Mapping[uuid.UUID, int],
    per_subscription: int,
    real_now: datetime | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries (due at ``now``), oldest due first, at most
    ``per_subscription`` per subscription counting the ``busy`` ones this worker already
    holds, for ``lease`` from ``real_now`` (the real time)."""
    if limit <= 0:
        return []
    real_now = real_now or clock.system_now()
    saturated = [sub for sub, held in busy.items() if held >= per_subscription]
    stmt = (
        select(WebhookDelivery)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= real_now),
            WebhookSubscription.status == WebhookSubscriptionStatus.ENABLED,
            ~_WAITS_FOR_EARLIER,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    if saturated:
        stmt = stmt.where(WebhookDelivery.subscription_id.not_in(saturated))
    if session.get_bind().dialect.name == "postgresql":
        # Read the pending index in order and stop at the limit, whatever the statistics say.
        # When a burst starts they still say next to nothing is pending, and the planner's
        # choice for "a few rows" is to collect every pending row, check each one's order and
        # sort them: a claim that reads the whole backlog (150 ms at 20,000 pending) instead
        # of the rows it takes (under 1 ms). The setting ends with the claim's transaction.
        await session.execute(text("SET LOCAL enable_sort = off"))
    candidates = list(await session.scalars(stmt))
    taken: dict[uuid.UUID, int] = dict(busy)
    chosen: list[WebhookDelivery] = []
    for delivery in candidates:
        if taken.get(delivery.subscription_id, 0) < per_subscription:
            taken[delivery.subscription_id] = taken.get(delivery.subscription_id, 0) + 1
            chosen.append(delivery)
    if not chosen:
        return []
    ids = [delivery.id for delivery in chosen]
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(lease_until=real_now + lease)
        .execution_options(synchronize_session=False)
    )
    events = {
        event.id: event
        for event in await session.scalars(
            select(Event).where(Event.id.in_({d.event_id for d in chosen}))
        )
    }
    rows = await session.execute(
        select(WebhookSubscription.id, WebhookSubscription.secret).where(
            WebhookSubscription.id.in_({d.subscription_id for d in chosen})
        )
    )
    secrets = {row.id: row.secret for row in rows}
    return [
        Claimed(
            id=d.id,
            subscription_id=d.subscription_id,
            event_id=d.event_id,
            url=d.url,
            secret=secrets[d.subscription_id],
            body=signing.payload(events[d.event_id], d.subscription_id),
        )
        for d in chosen
    ]


async def release(session: AsyncSession, ids: Collection[uuid.UUID]) -> None:
    """Give back deliveries this worker holds but will not attempt: claimable again at once."""
    if ids:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(ids)), WebhookDelivery.status == PENDING)
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )


async def record(
    session: AsyncSession,
    claimed: Claimed,
    answer: Answer,
    *,
    now: datetime,
    real_now: datetime,
    jitter: schedule.Jitter = schedule.random_jitter,
) -> Outcome:
    """Write down what an attempt of ``claimed`` got, and what follows from it: the next
    attempt, the end of the delivery, the subscription's failure streak or its disabling.

    The delivery is locked; the subscription is not (many deliveries share it, and the API
    may be changing it): it is written only when its streak starts or ends, and disabled by
    a conditional ``UPDATE`` so that one worker only records the event."""
    delivery = await session.get(WebhookDelivery, claimed.id, with_for_update=True)
    subscription = await session.get(WebhookSubscription, claimed.subscription_id)
    if delivery is None or subscription is None or delivery.status is not PENDING:
        return Outcome.DROPPED  # deleted, or finished by a worker whose lease overlapped
    delivery.requests_made_count += 1
    delivery.lease_until = None
    delivery.last_response_status_code = answer.status_code
    delivery.last_response = (answer.body if answer.status_code else answer.error) or None
    if delivery.last_response is not None:
        # PostgreSQL's text cannot hold NUL: one in a receiver's answer would fail this
        # write-down, and with it every attempt written down with it, round after round.
        kept = delivery.last_response[:RESPONSE_MAX_LENGTH]
        delivery.last_response = kept.replace("\x00", "\ufffd")
    delivery.was_successful = answer.succeeded
    if answer.succeeded:
        delivery.status = WebhookDeliveryStatus.SUCCEEDED
        subscription.failing_since = None
        return Outcome.SUCCEEDED
    if answer.status_code == 410:
        delivery.status = WebhookDeliveryStatus.FAILED
        await _disable(session, subscription, delivery, GONE_REASON)
        return Outcome.GONE
    if subscription.failing_since is None:
        subscription.failing_since = now
    elif now - subscription.failing_since >= FAILING_LIMIT:
        await _disable(session, subscription, delivery, FAILING_REASON)
    retry_after = schedule.parse_retry_after(answer.retry_after, real_now)
    later = schedule.next_attempt_at(
        delivery.requests_made_count, now, retry_after=retry_after, jitter=jitter
    )
    if later is None:
        delivery.status = WebhookDeliveryStatus.FAILED
        return Outcome.FAILED
    delivery.next_attempt_at = later
    return Outcome.RETRYING


async def _disable(
    session: AsyncSession,
    subscription: WebhookSubscription,
    delivery: WebhookDelivery,
    reason: str,
) -> None:
    """Disable ``subscription`` for ``reason``, with the event that says so (recorded for the
    entity of the delivery that settled it: a subscription is the partner's), unless it is
    disabled already."""
    disabled = await session.execute(
        update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription.id,
            WebhookSubscription.status == WebhookSubscriptionStatus.ENABLED,
        )
        .values(status=WebhookSubscriptionStatus.DISABLED, disabled_reason=reason)
        .returning(WebhookSubscription.id)
        .execution_options(synchronize_session=False)
    )
    if disabled.first() is None:
        return
    await outbox.record(
        session,
        partner_id=subscription.partner_id,
        entity_id=delivery.entity_id,
        object_type=outbox.WEBHOOK_SUBSCRIPTION,
        object_id=subscription.id,
        action="disabled",
        data={"url": subscription.url, "object_type": subscription.object_type, "reason": reason},
    )


# Whether a round may find work (read without a transaction, so an idle worker takes no
# write lock on SQLite): events to fan out, or deliveries due.
_WORK_WAITING = Prepared(
    select(
        or_(
            exists().where(Event.dispatched_at.is_(None)),
            exists().where(
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= bindparam("now"),
            ),
        )
    )
)


async def work_waiting(conn: Connection, now: datetime) -> bool:
    rows = await _WORK_WAITING.rows(conn, {"now": now})
    return bool(rows[0][0])


@dataclass(frozen=True, slots=True)
class Depth:
    """The queue as the metrics show it."""

    outbox: int  # events not fanned out yet
    pending: int  # deliveries to send or to retry
    oldest_pending_seconds: float  # how long the oldest event not yet delivered has waited


async def depth(session: AsyncSession, now: datetime) -> Depth:
    undispatched = select(func.count(), func.min(Event.created_at)).where(
        Event.dispatched_at.is_(None)
    )
    pending = select(func.count(), func.min(WebhookDelivery.event_created_at)).where(
        WebhookDelivery.status == PENDING
    )
    outbox_count, outbox_oldest = (await session.execute(undispatched)).one()
    pending_count, pending_oldest = (await session.execute(pending)).one()
    oldest = min((t for t in (outbox_oldest, pending_oldest) if t is not None), default=None)
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Depth(outbox=outbox_count, pending=pending_count, oldest_pending_seconds=age)
