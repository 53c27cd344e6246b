"""What the reliability tests check in the database after a load (and after each crash), read
straight from the rows, not through the API:

- every acknowledged write is there (``load.Ack``), and, once every flow has resolved its lost
  writes, each flow's outcome is exactly what the rows say (``load.Outcome``);
- nothing is half-written: each financing invoice's status history is one unbroken chain ending
  at its status, with one outbox event per history row; a confirmed one has all its amounts, a
  funded one its instalments (summing to the totals, their payments to what was repaid) and
  exactly its disbursement, fee and repayment entries; issued invoices are numbered without a
  gap or a repeat, as far as the entity's counter; one receivable per idempotency key;
- every journal entry balances (two or more postings summing to zero, in its currency, on its
  invoice), and each currency's postings sum to zero;
- each offer: its stored reserved and outstanding amounts are what its invoices' rows reserve
  (``NEW``: the requested amount) and owe (funded and not closed: repayment less repaid), never
  more than its limit, and the ``available_amount`` the lender API shows is the limit less both.

Each check adds to ``rows`` (what was looked at) and, when it fails, to ``failures``.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from fundline.kit.idempotency import IdempotencyKey
from fundline.models import (
    ConnectSession,
    ConnectToken,
    Event,
    FinancingInvoice,
    FinancingOffer,
    FinancingStatusChange,
    Instalment,
    JournalEntry,
    Posting,
    Receivable,
)
from fundline.models.receivable import ReceivableCounter
from tests.support.load import Ack, Outcome

FUNDED_STATUSES = {"FUNDED", "LATE", "PAID", "DEFAULTED"}
CONFIRMED_STATUSES = {"NEW", *FUNDED_STATUSES, "REJECTED"}
LIVE = {"DRAFT", "NEW", "FUNDED", "LATE"}
# How far each acknowledged step may have gone since: the statuses it allows.
AFTER_CONFIRMED = {"NEW", "FUNDED", "PAID"}
AFTER_FUNDED = {"FUNDED", "PAID"}


@dataclass
class Audit:
    rows: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)

    def line(self) -> str:
        looked = ", ".join(f"{name} {n}" for name, n in sorted(self.rows.items()))
        return f"rows checked: {looked}; failures: {len(self.failures)}"


@dataclass
class Rows:
    receivables: dict[uuid.UUID, Receivable]
    counters: dict[uuid.UUID, int]
    invoices: list[FinancingInvoice]
    history: dict[uuid.UUID, list[FinancingStatusChange]]
    instalments: dict[uuid.UUID, list[Instalment]]
    entries: list[JournalEntry]
    postings: dict[uuid.UUID, list[Posting]]
    events: dict[uuid.UUID, list[Event]]
    offers: list[FinancingOffer]
    token_hashes: set[str]
    session_hashes: set[str]
    keys: list[IdempotencyKey]


async def load_rows(database_url: str, entity_ids: Iterable[str]) -> Rows:
    """Every row of the test's entities that the checks read (one short read transaction)."""
    entities = [uuid.UUID(e) for e in entity_ids]
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session:
            return await _read(session, entities)
    finally:
        await engine.dispose()


async def _read(session: AsyncSession, entities: list[uuid.UUID]) -> Rows:
    async def all_of(stmt: Any) -> list[Any]:
        return list(await session.scalars(stmt))

    invoices = await all_of(
        select(FinancingInvoice).where(FinancingInvoice.entity_id.in_(entities))
    )
    fi_ids = [fi.id for fi in invoices]
    history: dict[uuid.UUID, list[FinancingStatusChange]] = defaultdict(list)
    for change in await all_of(select(FinancingStatusChange).order_by(FinancingStatusChange.at)):
        history[change.financing_invoice_id].append(change)
    instalments: dict[uuid.UUID, list[Instalment]] = defaultdict(list)
    for instalment in await all_of(select(Instalment).order_by(Instalment.sequence)):
        instalments[instalment.financing_invoice_id].append(instalment)
    entries = await all_of(select(JournalEntry).where(JournalEntry.entity_id.in_(entities)))
    postings: dict[uuid.UUID, list[Posting]] = defaultdict(list)
    for posting in await all_of(select(Posting)):
        postings[posting.entry_id].append(posting)
    events: dict[uuid.UUID, list[Event]] = defaultdict(list)
    for event in await all_of(select(Event).where(Event.entity_id.in_(entities))):
        events[event.object_id].append(event)
    counters = {
        c.entity_id: c.last_number
        for c in await all_of(
            select(ReceivableCounter).where(ReceivableCounter.entity_id.in_(entities))
        )
    }
    receivables = {
        r.id: r for r in await all_of(select(Receivable).where(Receivable.entity_id.in_(entities)))
    }
    return Rows(
        receivables=receivables,
        counters=counters,
        invoices=invoices,
        history={k: v for k, v in history.items() if k in set(fi_ids)},
        instalments=instalments,
        entries=entries,
        postings=postings,
        events=events,
        offers=await all_of(select(FinancingOffer).where(FinancingOffer.entity_id.in_(entities))),
        token_hashes=set(await all_of(select(ConnectToken.token_hash))),
        session_hashes=set(await all_of(select(ConnectSession.token_hash))),
        keys=await all_of(select(IdempotencyKey)),
    )


# --- the checks -------------------------------------------------------------------------------


def check_all(
    rows: Rows,
    *,
    acks: Sequence[Ack],
    offers_shown: Sequence[dict[str, Any]],
    outcomes: Sequence[Outcome] | None = None,
) -> Audit:
    """Every check; ``outcomes`` only once every flow has finished (the exact comparison)."""
    audit = Audit()
    check_receivables(audit, rows)
    check_financing_invoices(audit, rows)
    check_journal(audit, rows)
    check_offers(audit, rows, offers_shown)
    check_acks(audit, rows, acks)
    if outcomes is not None:
        check_outcomes(audit, rows, outcomes)
    return audit


def check_receivables(audit: Audit, rows: Rows) -> None:
    numbers: dict[uuid.UUID, list[str]] = defaultdict(list)
    keys: Counter[str] = Counter()
    for r in rows.receivables.values():
        audit.rows["receivables"] += 1
        if r.status != "draft":
            numbers[r.entity_id].append(r.document_id or "")
        audit.check(
            (r.status == "paid") == (r.amount_paid == r.total_amount and r.paid_at is not None),
            f"receivable {r.id}: {r.status} with {r.amount_paid} of {r.total_amount} paid",
        )
        created = [e for e in rows.events.get(r.id, []) if e.action == "receivable.created"]
        audit.check(len(created) == 1, f"receivable {r.id}: {len(created)} created events")
        if r.status != "draft":
            audit.check(
                any((e.object or {}).get("status") == r.status for e in rows.events.get(r.id, [])),
                f"receivable {r.id}: no event of its move to {r.status}",
            )
        memo = (r.details or {}).get("memo")
        if memo:
            keys[memo] += 1
    for entity_id, issued in numbers.items():
        last = rows.counters.get(entity_id, 0)
        expected = [f"INV-{n:05d}" for n in range(1, last + 1)]
        audit.check(
            sorted(issued) == expected,
            f"entity {entity_id}: issued numbers {sorted(issued)[-5:]}… (of {len(issued)}) "
            f"against the counter at {last}",
        )
    repeated = {memo: n for memo, n in keys.items() if n > 1}
    audit.check(not repeated, f"receivables created twice for one key: {repeated}")


def _chain(changes: list[FinancingStatusChange]) -> list[str] | None:
    """The statuses the history walks through, from its first row, or None if it is broken."""
    moves = [c for c in changes if c.from_status != c.to_status]
    starts = [c for c in moves if c.from_status is None]
    if len(starts) != 1:
        return None
    path = [str(starts[0].to_status)]
    rest = [c for c in moves if c.from_status is not None]
    while rest:
        step = [c for c in rest if c.from_status == path[-1]]
        if len(step) != 1:
            return None
        path.append(str(step[0].to_status))
        rest.remove(step[0])
    notes = {str(c.to_status) for c in changes if c.from_status == c.to_status}
    return path if notes <= set(path) else None


def check_financing_invoices(audit: Audit, rows: Rows) -> None:
    for fi in rows.invoices:
        audit.rows["financing_invoices"] += 1
        name = f"financing invoice {fi.id} ({fi.status})"
        changes = rows.history.get(fi.id, [])
        audit.rows["status_history"] += len(changes)
        chain = _chain(changes)
        audit.check(
            chain is not None and chain[0] == "DRAFT" and chain[-1] == fi.status,
            f"{name}: history {[(c.from_status, c.to_status) for c in changes]}",
        )
        events = [e for e in rows.events.get(fi.id, []) if e.object_type == "financing_invoice"]
        audit.rows["events"] += len(events)
        audit.check(
            len(events) == len(changes),
            f"{name}: {len(events)} events for {len(changes)} history rows",
        )
        live = fi.status in LIVE
        audit.check(
            (fi.live_invoice_id == fi.invoice_id) if live else fi.live_invoice_id is None,
            f"{name}: live_invoice_id {fi.live_invoice_id}",
        )
        if fi.status in CONFIRMED_STATUSES:
            amounts = (fi.requested_amount, fi.fee_amount, fi.principal_amount)
            audit.check(
                None not in amounts
                and fi.confirmed_at is not None
                and fi.pricing_plan_id is not None
                and fi.repayment_amount == fi.requested_amount
                and (fi.principal_amount or 0) + (fi.fee_amount or 0) == fi.repayment_amount,
                f"{name}: confirmed with amounts {amounts} / {fi.repayment_amount}",
            )
        entries = [e for e in rows.entries if e.financing_invoice_id == fi.id]
        kinds = Counter(e.kind for e in entries)
        instalments = rows.instalments.get(fi.id, [])
        audit.rows["instalments"] += len(instalments)
        funded = fi.funded_at is not None
        audit.check(
            funded == (fi.status in FUNDED_STATUSES),
            f"{name}: funded_at {fi.funded_at}",
        )
        if not funded:
            audit.check(
                not instalments and not entries and fi.repaid_amount == 0,
                f"{name}: unfunded with {len(instalments)} instalments, {dict(kinds)} entries",
            )
            continue
        audit.check(
            sum(i.amount for i in instalments) == fi.repayment_amount
            and sum(i.fee_amount for i in instalments) == fi.fee_amount
            and sum(i.principal_amount for i in instalments) == fi.principal_amount
            and sum(i.paid_amount for i in instalments) == fi.repaid_amount
            and all(0 <= i.paid_amount <= i.amount for i in instalments),
            f"{name}: instalments {[(i.amount, i.paid_amount) for i in instalments]} against "
            f"{fi.repayment_amount} due, {fi.repaid_amount} repaid",
        )
        audit.check(
            kinds["disbursement"] == (1 if fi.principal_amount else 0)
            and kinds["fee"] == (1 if fi.fee_amount else 0)
            and kinds["write_off"] == 0,
            f"{name}: entries {dict(kinds)}",
        )
        repaid_in_ledger = -sum(
            p.amount
            for e in entries
            if e.kind == "repayment"
            for p in rows.postings.get(e.id, [])
            if p.account == "financed_receivable"
        )
        audit.check(
            repaid_in_ledger == fi.repaid_amount,
            f"{name}: repaid {fi.repaid_amount}, the ledger's repayments {repaid_in_ledger}",
        )
        if fi.status == "PAID":
            audit.check(
                fi.repaid_amount == fi.repayment_amount and fi.closed_at is not None,
                f"{name}: PAID with {fi.repaid_amount} of {fi.repayment_amount}",
            )


def check_journal(audit: Audit, rows: Rows) -> None:
    per_currency: Counter[str] = Counter()
    for entry in rows.entries:
        audit.rows["journal_entries"] += 1
        postings = rows.postings.get(entry.id, [])
        audit.rows["postings"] += len(postings)
        total = sum(p.amount for p in postings)
        audit.check(
            len(postings) >= 2
            and total == 0
            and all(p.currency == entry.currency for p in postings)
            and all(p.financing_invoice_id == entry.financing_invoice_id for p in postings),
            f"journal entry {entry.id} ({entry.kind}): {len(postings)} postings summing to {total}",
        )
        for p in postings:
            per_currency[p.currency] += p.amount
    unbalanced = {c: s for c, s in per_currency.items() if s}
    audit.check(not unbalanced, f"currencies whose postings do not sum to zero: {unbalanced}")


def check_offers(audit: Audit, rows: Rows, shown: Sequence[dict[str, Any]]) -> None:
    reserved: Counter[uuid.UUID] = Counter()
    owed: Counter[uuid.UUID] = Counter()
    for fi in rows.invoices:
        if fi.status == "NEW":
            reserved[fi.offer_id] += fi.requested_amount or 0
        if fi.funded_at is not None and fi.closed_at is None:
            owed[fi.offer_id] += (fi.repayment_amount or 0) - fi.repaid_amount
    available = {uuid.UUID(str(o["id"])): int(o["available_amount"]) for o in shown}
    for offer in rows.offers:
        audit.rows["offers"] += 1
        left = offer.total_amount - reserved[offer.id] - owed[offer.id]
        audit.check(
            (offer.reserved_amount, offer.outstanding_amount)
            == (reserved[offer.id], owed[offer.id]),
            f"offer {offer.id}: stores reserved {offer.reserved_amount}, outstanding "
            f"{offer.outstanding_amount}; its invoices reserve {reserved[offer.id]}, owe "
            f"{owed[offer.id]}",
        )
        audit.check(left >= 0, f"offer {offer.id}: overspent, {left} left of {offer.total_amount}")
        audit.check(
            available.get(offer.id) == left,
            f"offer {offer.id}: available_amount shown {available.get(offer.id)}, "
            f"limit less reserved and owed {left}",
        )


def check_acks(audit: Audit, rows: Rows, acks: Sequence[Ack]) -> None:
    by_id = {str(each.id): each for each in rows.invoices}
    by_invoice: dict[str, list[FinancingInvoice]] = defaultdict(list)
    for each in rows.invoices:
        by_invoice[str(each.invoice_id)].append(each)
    receivables = {str(k): r for k, r in rows.receivables.items()}
    repaid: Counter[str] = Counter()
    for ack in acks:
        audit.rows["acknowledged_writes"] += 1
        d = ack.data
        if ack.kind == "receivable.created":
            r = receivables.get(d["id"])
            audit.check(
                r is not None and (r.details or {}).get("memo") == d["key"],
                f"acknowledged receivable {d['id']} ({d['key']}) missing",
            )
        elif ack.kind == "receivable.issued":
            r = receivables.get(d["id"])
            audit.check(
                r is not None and r.status in ("issued", "paid"),
                f"acknowledged issue of {d['id']}: {r.status if r else 'missing'}",
            )
        elif ack.kind == "receivable.paid":
            r, fi = receivables.get(d["id"]), by_id.get(d["fi"])
            audit.check(
                r is not None and r.status == "paid" and fi is not None and fi.status == "PAID",
                f"acknowledged payment of {d['id']}: {r.status if r else None}, "
                f"{fi.status if fi else None}",
            )
        elif ack.kind == "financing.requested":
            audit.check(
                d["session_token"] in rows.token_hashes and bool(by_invoice.get(d["invoice_id"])),
                f"acknowledged financing request of {d['invoice_id']} missing",
            )
        elif ack.kind == "connect.session":
            audit.check(d["token"] in rows.session_hashes, "an acknowledged session is missing")
        elif ack.kind == "financing.confirmed":
            fi = by_id.get(d["fi"])
            audit.check(
                fi is not None
                and fi.status in AFTER_CONFIRMED
                and fi.requested_amount == d["requested"],
                f"acknowledged confirmation of {d['fi']}: {fi.status if fi else 'missing'}",
            )
        elif ack.kind == "financing.funded":
            fi = by_id.get(d["fi"])
            audit.check(
                fi is not None and fi.status in AFTER_FUNDED and fi.funded_at is not None,
                f"acknowledged funding of {d['fi']}: {fi.status if fi else 'missing'}",
            )
        elif ack.kind == "financing.repaid":
            repaid[d["fi"]] += d["amount"]
        else:
            audit.check(False, f"unknown acknowledgement {ack.kind}")
    for fi_id, amount in repaid.items():
        found = by_id.get(fi_id)
        audit.check(
            found is not None and found.repaid_amount >= amount,
            f"{fi_id}: {amount} of repayments acknowledged, "
            f"{found.repaid_amount if found else 'missing'} recorded",
        )


def check_outcomes(audit: Audit, rows: Rows, outcomes: Sequence[Outcome]) -> None:
    """Each finished flow against the rows: its invoice's one financing in the status, with the
    amounts, the flow ended with; the receivable paid only when the flow marked it paid."""
    by_invoice: dict[str, list[FinancingInvoice]] = defaultdict(list)
    for fi in rows.invoices:
        by_invoice[str(fi.invoice_id)].append(fi)
    for outcome in outcomes:
        audit.rows["flows"] += 1
        found = by_invoice.get(outcome.receivable_id, [])
        got = [(str(fi.status), fi.requested_amount or 0, fi.repaid_amount) for fi in found]
        want = [(outcome.status, outcome.requested_amount, outcome.repaid_amount)]
        audit.check(got == want, f"flow {outcome.key}: rows {got}, the flow ended with {want}")
        if outcome.financing_invoice_id:
            audit.check(
                [str(fi.id) for fi in found] == [outcome.financing_invoice_id],
                f"flow {outcome.key}: financing {outcome.financing_invoice_id} not its row",
            )
        r = rows.receivables.get(uuid.UUID(outcome.receivable_id))
        audit.check(
            r is not None and r.status == ("paid" if outcome.receivable_paid else "issued"),
            f"flow {outcome.key}: receivable {r.status if r else 'missing'}",
        )


def claims_left(rows: Rows) -> int:
    """Idempotency keys claimed by a request that never finished (a kill cut it)."""
    return sum(1 for k in rows.keys if k.response_status is None)
