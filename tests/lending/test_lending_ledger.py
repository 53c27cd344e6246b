"""The double-entry ledger: balanced entries, outstanding balances, reconciliation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit.db import Database
from fundline.kit.errors import Conflict
from fundline.lending import ledger, servicing
from fundline.models import FinancingInvoice, FinancingOffer, JournalEntry, Posting
from tests.support.factories import Tenant
from tests.support.lending import make_draft, make_offer, plans_of, walk

T = TypeVar("T")


async def unbalanced_entries(session: AsyncSession) -> list[Any]:
    rows = await session.execute(
        select(Posting.entry_id, func.sum(Posting.amount))
        .group_by(Posting.entry_id)
        .having(func.sum(Posting.amount) != 0)
    )
    return list(rows)


async def receivable_postings(session: AsyncSession, fi_id: uuid.UUID) -> list[int]:
    return list(
        await session.scalars(
            select(Posting.amount).where(
                Posting.financing_invoice_id == fi_id,
                Posting.account == ledger.FINANCED_RECEIVABLE,
            )
        )
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([("cash", 100), ("fee_income", -99)], "unbalanced fee entry: postings sum to 1"),
        ([("cash", 100), ("bank", -100)], "unknown account 'bank'"),
        ([("cash", 0)], "must be a non-zero int"),
        ([("cash", 1.5), ("fee_income", -1.5)], "must be a non-zero int"),
        ([], "needs postings"),
    ],
)
async def test_post_refuses_a_bad_entry(
    db: Database, tenant: Tenant, lines: list[tuple[str, Any]], message: str
) -> None:
    async with db.session() as session, session.begin():
        with pytest.raises(ledger.LedgerError, match=message):
            await ledger.post(
                session,
                entity_id=uuid.UUID(tenant.entity_id),
                financing_invoice_id=None,
                kind="fee",
                currency="USD",
                memo="bad",
                lines=lines,
            )
        with pytest.raises(ledger.LedgerError, match="unknown journal entry kind"):
            await ledger.post(
                session,
                entity_id=uuid.UUID(tenant.entity_id),
                financing_invoice_id=None,
                kind="gift",
                currency="USD",
                memo="bad",
                lines=[("cash", 1), ("fee_income", -1)],
            )
        assert await session.scalar(select(func.count()).select_from(JournalEntry)) == 0


async def test_a_life_of_an_invoice_in_the_ledger(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]  # 3 % fee
        fi = await walk(session, await make_draft(session, offer), "FUNDED", plan=plan)
        assert await ledger.balances(session) == {
            (ledger.FINANCED_RECEIVABLE, "USD"): 100_000,
            (ledger.CASH, "USD"): -97_000,
            (ledger.FEE_INCOME, "USD"): -3_000,
        }
        await servicing.record_repayment(session, fi, 60_000, cause="payer")
        await servicing.mark_late(session, fi, cause="late")
        await servicing.write_off(session, fi, cause="gone")
        balances = await ledger.balances(session, entity_id=offer.entity_id)
        assert balances == {
            (ledger.FINANCED_RECEIVABLE, "USD"): 0,
            (ledger.CASH, "USD"): -37_000,
            (ledger.FEE_INCOME, "USD"): -3_000,
            (ledger.CREDIT_LOSSES, "USD"): 40_000,
        }
        assert sum(balances.values()) == 0
        assert await ledger.balances(session, entity_id=uuid.uuid4()) == {}
        kinds = list(
            await session.scalars(
                select(JournalEntry.kind)
                .where(JournalEntry.financing_invoice_id == fi.id)
                .order_by(JournalEntry.created_at, JournalEntry.kind)
            )
        )
        assert sorted(kinds) == ["disbursement", "fee", "repayment", "write_off"]
        assert await unbalanced_entries(session) == []
        assert await ledger.outstanding(session, fi.id) == 0
        assert await ledger.reconcile(session) == []


async def test_an_unfunded_invoice_owes_nothing(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        draft = await make_draft(session, offer)
        assert await ledger.outstanding(session, draft.id) == 0
        assert ledger.expected_outstanding(draft) == 0


# --- reconciliation finds what was planted --------------------------------------------------------


async def _funded(db: Database, tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plans = await plans_of(session, offer)
        fi = await walk(session, await make_draft(session, offer), "FUNDED", plan=plans[0])
        await walk(session, await make_draft(session, offer), "NEW", plan=plans[0])
        assert await ledger.reconcile(session) == []
        return fi.id, offer.id


async def test_reconcile_finds_an_unbalanced_entry(db: Database, tenant: Tenant) -> None:
    await _funded(db, tenant)
    async with db.session() as session, session.begin():
        entry_id = await session.scalar(
            select(JournalEntry.id).where(JournalEntry.kind == "fee").limit(1)
        )
        assert entry_id is not None
        session.add(Posting(entry_id=entry_id, account="cash", amount=-7, currency="USD"))
        await session.flush()
        differences = await ledger.reconcile(session)
    assert differences == [
        {"kind": "unbalanced_entry", "entry_id": str(entry_id), "difference": -7}
    ]


async def test_reconcile_finds_an_invoice_out_of_step(db: Database, tenant: Tenant) -> None:
    fi_id, _ = await _funded(db, tenant)
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingInvoice).where(FinancingInvoice.id == fi_id).values(repaid_amount=500)
        )
        differences = await ledger.reconcile(session)
    assert differences == [
        {
            "kind": "outstanding_mismatch",
            "financing_invoice_id": str(fi_id),
            "status": "FUNDED",
            "ledger": 100_000,
            "expected": 99_500,
        },
        {
            "kind": "offer_outstanding_mismatch",
            "offer_id": differences[1]["offer_id"],
            "stored": 100_000,
            "expected": 99_500,
        },
    ]


async def test_reconcile_finds_offer_counters_out_of_step(db: Database, tenant: Tenant) -> None:
    _, offer_id = await _funded(db, tenant)
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingOffer)
            .where(FinancingOffer.id == offer_id)
            .values(reserved_amount=1, outstanding_amount=2)
        )
        differences = await ledger.reconcile(session)
    assert differences == [
        {
            "kind": "offer_outstanding_mismatch",
            "offer_id": str(offer_id),
            "stored": 2,
            "expected": 100_000,
        },
        {
            "kind": "offer_reserved_mismatch",
            "offer_id": str(offer_id),
            "stored": 1,
            "expected": 100_000,
        },
    ]


async def test_reconcile_finds_postings_on_an_unfunded_invoice(
    db: Database, tenant: Tenant
) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        draft = await make_draft(session, offer)
        await ledger.post(
            session,
            entity_id=offer.entity_id,
            financing_invoice_id=draft.id,
            kind="disbursement",
            currency="USD",
            memo="never funded",
            lines=[(ledger.FINANCED_RECEIVABLE, 500), (ledger.CASH, -500)],
        )
        differences = await ledger.reconcile(session)
    assert differences == [
        {
            "kind": "outstanding_mismatch",
            "financing_invoice_id": str(draft.id),
            "status": None,
            "ledger": 500,
            "expected": 0,
        }
    ]


# --- random sequences --------------------------------------------------------------------------

# A step: which operation (among the legal ones, or now and then an illegal one) and, for a
# repayment, the share of what is owed, in basis points.
steps_strategy = st.lists(st.tuples(st.integers(0, 99), st.integers(1, 10_000)), max_size=10)
ALLOWED = {
    "fund": {"NEW"},
    "reject": {"NEW"},
    "late": {"FUNDED"},
    "default": {"LATE"},
    "write_off": {"LATE", "DEFAULTED"},
    "repay": {"FUNDED", "LATE"},
}


def _pick(choice: int, status: str, written_off: bool) -> tuple[str, bool]:
    """The operation to try and whether it is legal in ``status``."""
    legal = sorted(
        name
        for name, allowed in ALLOWED.items()
        if status in allowed and not (name == "write_off" and written_off)
    )
    illegal = sorted(set(ALLOWED) - set(legal))
    if legal and choice >= 15:
        return legal[choice % len(legal)], True
    return illegal[choice % len(illegal)], False


async def _play(
    db: Database,
    tenant: Tenant,
    plan_index: int,
    total: int,
    steps: list[tuple[int, int]],
) -> None:
    """Apply ``steps`` to one confirmed invoice, checking the ledger after each; roll back."""
    async with db.session() as session:
        offer = await make_offer(session, tenant, total_amount=10**12)
        plan = (await plans_of(session, offer))[plan_index]
        fi = await walk(
            session, await make_draft(session, offer, total_amount=total), "NEW", plan=plan
        )
        repayment = fi.repayment_amount or 0
        status, repaid, written_off = "NEW", 0, False
        for choice, share in steps:
            name, legal = _pick(choice, status, written_off)
            owed = repayment - repaid
            amount = max(1, owed * share // 10_000)
            try:
                if name == "fund":
                    fi = await servicing.fund(session, fi, cause="random")
                elif name == "reject":
                    fi = await servicing.reject(session, fi, cause="random")
                elif name == "late":
                    fi = await servicing.mark_late(session, fi, cause="random")
                elif name == "default":
                    fi = await servicing.mark_defaulted(session, fi, cause="random")
                elif name == "write_off":
                    fi = await servicing.write_off(session, fi, cause="random")
                else:
                    fi = await servicing.record_repayment(session, fi, amount, cause="random")
            except Conflict:
                assert not legal, (name, status)
                continue
            assert legal, (name, status)
            if name == "repay":
                repaid += amount
            written_off = written_off or name == "write_off"
            status = fi.status

            funded = fi.funded_at is not None
            expected = 0 if not funded or written_off or status == "PAID" else repayment - repaid
            assert await ledger.outstanding(session, fi.id) == expected
            assert sum(await receivable_postings(session, fi.id)) == expected
            assert await unbalanced_entries(session) == []
            stored = await session.get(FinancingOffer, offer.id)
            assert stored is not None
            assert stored.outstanding_amount == expected
            assert stored.reserved_amount == (repayment if status == "NEW" else 0)
            assert await ledger.reconcile(session) == []
        await session.rollback()


async def test_random_sequences_keep_the_ledger_consistent(db: Database, tenant: Tenant) -> None:
    # Hypothesis drives synchronous tests, so it runs in a worker thread and hands each example
    # to this test's event loop, which owns the database connections.
    loop = asyncio.get_running_loop()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, 2), st.integers(100, 10**10), steps_strategy)
    def scenario(plan_index: int, total: int, steps: list[tuple[int, int]]) -> None:
        run(_play(db, tenant, plan_index, total, steps))

    await asyncio.to_thread(scenario)
