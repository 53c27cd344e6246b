"""The servicing state machines, limits, the clock's tick, underwriting and the policy file."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.app import create_app
from fundline.config import Mode, Settings
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.kit.errors import Conflict, NotFound, Unprocessable
from fundline.lending import documents, ledger, servicing
from fundline.lending.policy import PolicyError, load_policy
from fundline.lending.underwriting import underwrite
from fundline.models import (
    Event,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    FinancingStatusChange,
    Instalment,
    JournalEntry,
    Receivable,
)
from tests.support.apps import make_settings
from tests.support.factories import (
    Tenant,
    create_entity,
    create_issued_invoice,
    create_payable,
)
from tests.support.lending import (
    AUTO,
    GOOD_POLICY,
    LIMIT,
    MANUAL,
    STATUSES,
    make_draft,
    make_offer,
    plans_of,
    sandbox_policy,
    walk,
)

Step = Callable[[AsyncSession, FinancingInvoice], Awaitable[Any]]


async def reload(db: Database, fi_id: uuid.UUID) -> FinancingInvoice:
    async with db.session() as session:
        fi = await session.get(FinancingInvoice, fi_id)
        assert fi is not None
        return fi


async def offer_of(db: Database, offer_id: uuid.UUID) -> FinancingOffer:
    async with db.session() as session:
        offer = await session.get(FinancingOffer, offer_id)
        assert offer is not None
        return offer


async def events_of(db: Database, object_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async with db.session() as session:
        rows = await session.scalars(
            select(Event).where(Event.object_id == object_id).order_by(Event.created_at, Event.id)
        )
        return [(e.action, e.object or {}) for e in rows]


async def history_of(db: Database, fi_id: uuid.UUID) -> list[tuple[str | None, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(FinancingStatusChange.from_status, FinancingStatusChange.to_status)
            .where(FinancingStatusChange.financing_invoice_id == fi_id)
            .order_by(FinancingStatusChange.at, FinancingStatusChange.id)
        )
        return [(before, after) for before, after in rows]


async def setup(
    db: Database, tenant: Tenant, status: str, *, plan_index: int = 0, **offer: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    """A financing invoice in ``status``, committed; returns (invoice id, offer id)."""
    async with db.session() as session, session.begin():
        line = await make_offer(session, tenant, **offer)
        plan = (await plans_of(session, line))[plan_index]
        fi = await walk(session, await make_draft(session, line), status, plan=plan)
        return fi.id, line.id


# --- offers ----------------------------------------------------------------------------------


async def test_accept_offer_under_auto_review_issues_it(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status="NEW")
        offer = await servicing.accept_offer(session, offer, policy=AUTO)
        assert offer.status == "CURRENT"
        assert offer.accepted_at is not None
        assert offer.issued_at is not None
    changes = [
        d for action, d in await events_of(db, offer.id) if action.endswith("status_changed")
    ]
    assert [(c["previous_status"], c["status"]) for c in changes] == [
        ("NEW", "ACCEPTED"),
        ("ACCEPTED", "CURRENT"),
    ]


async def test_accept_offer_under_manual_review_waits_for_the_operator(
    db: Database, tenant: Tenant
) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status="NEW")
        offer = await servicing.accept_offer(session, offer, policy=MANUAL)
        assert offer.status == "ACCEPTED"
        assert offer.issued_at is None
        offer = await servicing.issue_offer(session, offer)
        assert offer.status == "CURRENT"


@pytest.mark.parametrize(
    "status", ["ACCEPTED", "CURRENT", "LATE", "EXPIRED", "CLOSED", "DEFAULTED"]
)
async def test_accept_offer_only_when_new(db: Database, tenant: Tenant, status: str) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status=status)
        with pytest.raises(Conflict, match=f"Financing offer is {status};") as caught:
            await servicing.accept_offer(session, offer, policy=AUTO)
        assert caught.value.status_code == 409


async def test_an_expired_offer_cannot_be_accepted(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status="NEW", expires_in=timedelta(days=1))
    clock.set_offset(timedelta(days=2))
    async with db.session() as session, session.begin():
        with pytest.raises(Conflict, match="Financing offer is NEW but expired"):
            await servicing.accept_offer(session, offer, policy=AUTO)


@pytest.mark.parametrize("status", ["NEW", "CURRENT", "LATE", "EXPIRED", "CLOSED", "DEFAULTED"])
async def test_issue_offer_only_when_accepted(db: Database, tenant: Tenant, status: str) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status=status)
        with pytest.raises(Conflict, match=f"Financing offer is {status};"):
            await servicing.issue_offer(session, offer)


async def test_close_offer_releases_drafts(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        draft = await make_draft(session, offer)
        offer = await servicing.close_offer(session, offer, cause="operator: line withdrawn")
        assert offer.status == "CLOSED"
    assert await reload_or_none(db, draft.id) is None
    async with db.session() as session, session.begin():
        with pytest.raises(Conflict, match="Financing offer is CLOSED;"):
            await servicing.close_offer(session, offer, cause="again")


async def reload_or_none(db: Database, fi_id: uuid.UUID) -> FinancingInvoice | None:
    async with db.session() as session:
        return await session.get(FinancingInvoice, fi_id)


@pytest.mark.parametrize("status", ["NEW", "FUNDED", "LATE"])
async def test_close_offer_refused_while_invoices_are_live(
    db: Database, tenant: Tenant, status: str
) -> None:
    _, offer_id = await setup(db, tenant, status)
    async with db.session() as session, session.begin():
        offer = await session.get(FinancingOffer, offer_id)
        assert offer is not None
        with pytest.raises(Conflict, match=f"with invoices still {status}"):
            await servicing.close_offer(session, offer, cause="operator")


# --- confirming --------------------------------------------------------------------------------


async def test_confirm_under_manual_review_reserves_and_waits(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]  # 100 % advance, 3 % fee
        fi = await make_draft(session, offer, total_amount=100_000)
        fi = await servicing.confirm_invoice(
            session, fi, plan=plan, requested_amount=None, policy=MANUAL
        )
        assert fi.status == "NEW"
        assert (fi.requested_amount, fi.fee_amount, fi.principal_amount) == (100_000, 3_000, 97_000)
        assert fi.repayment_amount == 100_000
        assert (fi.advance_rate_percentage, fi.fee_percentage) == (10_000, 300)
        assert fi.pricing_plan_id == plan.id
        assert fi.confirmed_at is not None
        assert fi.funded_at is None
        request = await session.get(FinancingRequest, fi.request_id)
        assert request is not None
        assert request.status == "confirmed"
    offer = await offer_of(db, offer.id)
    assert (offer.reserved_amount, offer.outstanding_amount) == (100_000, 0)
    assert offer.available_amount == LIMIT - 100_000
    assert await history_of(db, fi.id) == [("DRAFT", "NEW")]
    assert ("financing_invoice.status_changed", "NEW") in [
        (a, d["status"]) for a, d in await events_of(db, fi.id)
    ]
    assert any(a == "financing_offer.updated" for a, _ in await events_of(db, offer.id))


async def test_confirm_under_auto_review_funds_at_once(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]
        fi = await make_draft(session, offer, total_amount=100_000)
        fi = await servicing.confirm_invoice(
            session, fi, plan=plan, requested_amount=60_000, policy=AUTO
        )
        assert fi.status == "FUNDED"
        assert fi.funded_at is not None
        assert fi.repayment_date == clock.today() + timedelta(days=30)
        assert await ledger.outstanding(session, fi.id) == 60_000
    offer = await offer_of(db, offer.id)
    assert (offer.reserved_amount, offer.outstanding_amount) == (0, 60_000)
    history = await history_of(db, fi.id)
    assert history == [("DRAFT", "NEW"), ("NEW", "NEW"), ("NEW", "FUNDED")]


async def test_auto_review_without_auto_fund_approves_only(db: Database, tenant: Tenant) -> None:
    policy = sandbox_policy(auto_fund=False)
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]
        fi = await make_draft(session, offer)
        fi = await servicing.confirm_invoice(
            session, fi, plan=plan, requested_amount=None, policy=policy
        )
        assert fi.status == "NEW"
    async with db.session() as session:
        note = await session.scalar(
            select(FinancingStatusChange.cause).where(
                FinancingStatusChange.financing_invoice_id == fi.id,
                FinancingStatusChange.to_status == "NEW",
                FinancingStatusChange.from_status == "NEW",
            )
        )
    assert note == "approved: approved by the auto-review policy"


async def test_approve_with_auto_fund_funds(db: Database, tenant: Tenant) -> None:
    fi_id, _ = await setup(db, tenant, "NEW")
    fi = await reload(db, fi_id)
    async with db.session() as session, session.begin():
        fi = await servicing.approve(session, fi, cause="operator", policy=AUTO)
        assert fi.status == "FUNDED"
    async with db.session() as session, session.begin():
        with pytest.raises(Conflict, match="Financing invoice is FUNDED;"):
            await servicing.approve(session, fi, cause="operator", policy=AUTO)


@pytest.mark.parametrize("requested", [0, -5, 100_001])
async def test_confirm_refuses_an_amount_out_of_range(
    db: Database, tenant: Tenant, requested: int
) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]
        fi = await make_draft(session, offer, total_amount=100_000)
        with pytest.raises(Unprocessable, match="between 1 and 100000") as caught:
            await servicing.confirm_invoice(
                session, fi, plan=plan, requested_amount=requested, policy=MANUAL
            )
        assert caught.value.loc == ("body", "requested_amount")


async def test_confirm_refuses_more_than_available(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, total_amount=150_000)
        plan = (await plans_of(session, offer))[0]
        first = await make_draft(session, offer, total_amount=100_000)
        second = await make_draft(session, offer, total_amount=100_000)
        await servicing.confirm_invoice(
            session, first, plan=plan, requested_amount=None, policy=MANUAL
        )
    async with db.session() as session, session.begin():
        with pytest.raises(Conflict, match="more than the 50000 available") as caught:
            await servicing.confirm_invoice(
                session, second, plan=plan, requested_amount=None, policy=MANUAL
            )
        assert caught.value.status_code == 409
    async with db.session() as session, session.begin():
        # What is available can still be taken.
        fi = await servicing.confirm_invoice(
            session, second, plan=plan, requested_amount=50_000, policy=MANUAL
        )
        assert fi.status == "NEW"
    offer = await offer_of(db, offer.id)
    assert (offer.reserved_amount, offer.available_amount) == (150_000, 0)


@pytest.mark.parametrize("status", ["NEW", "ACCEPTED", "LATE", "EXPIRED", "CLOSED", "DEFAULTED"])
async def test_confirm_needs_a_current_offer(db: Database, tenant: Tenant, status: str) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status=status)
        plan = (await plans_of(session, offer))[0]
        fi = await make_draft(session, offer)
        with pytest.raises(Conflict, match=f"Financing offer is {status};"):
            await servicing.confirm_invoice(
                session, fi, plan=plan, requested_amount=None, policy=MANUAL
            )


async def test_confirm_refuses_another_offers_plan(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        other = await make_offer(session, tenant)
        foreign_plan = (await plans_of(session, other))[0]
        fi = await make_draft(session, offer)
        with pytest.raises(Unprocessable, match="not a plan of this invoice's offer"):
            await servicing.confirm_invoice(
                session, fi, plan=foreign_plan, requested_amount=None, policy=MANUAL
            )


# --- every illegal transition --------------------------------------------------------------------


async def _repay_one(session: AsyncSession, fi: FinancingInvoice) -> Any:
    return await servicing.record_repayment(session, fi, 1, cause="test")


STEPS: dict[str, tuple[Step, frozenset[str]]] = {
    "confirm": (lambda s, fi: _confirm_any(s, fi), frozenset({"DRAFT"})),
    "approve": (
        lambda s, fi: servicing.approve(s, fi, cause="test", policy=MANUAL),
        frozenset({"NEW"}),
    ),
    "fund": (lambda s, fi: servicing.fund(s, fi, cause="test"), frozenset({"NEW"})),
    "reject": (lambda s, fi: servicing.reject(s, fi, cause="test"), frozenset({"NEW"})),
    "repay": (_repay_one, frozenset({"FUNDED", "LATE"})),
    "late": (lambda s, fi: servicing.mark_late(s, fi, cause="test"), frozenset({"FUNDED"})),
    "default": (lambda s, fi: servicing.mark_defaulted(s, fi, cause="test"), frozenset({"LATE"})),
    "write_off": (
        lambda s, fi: servicing.write_off(s, fi, cause="test"),
        frozenset({"LATE", "DEFAULTED"}),
    ),
    "release": (lambda s, fi: servicing.release_draft(s, fi, cause="test"), frozenset({"DRAFT"})),
}


async def _confirm_any(session: AsyncSession, fi: FinancingInvoice) -> Any:
    offer = await session.get(FinancingOffer, fi.offer_id)
    assert offer is not None
    plan = (await plans_of(session, offer))[0]
    return await servicing.confirm_invoice(
        session, fi, plan=plan, requested_amount=None, policy=MANUAL
    )


@pytest.mark.parametrize("step", list(STEPS))
async def test_every_illegal_transition_is_a_409_naming_the_status(
    db: Database, tenant: Tenant, step: str
) -> None:
    action, allowed = STEPS[step]
    # One offer per invoice: a late or defaulted invoice changes its offer's status.
    invoices = {status: (await setup(db, tenant, status))[0] for status in STATUSES}
    for status, fi_id in invoices.items():
        fi = await reload(db, fi_id)
        async with db.session() as session, session.begin():
            if status in allowed:
                await action(session, fi)
                continue
            with pytest.raises(Conflict) as caught:
                await action(session, fi)
            assert caught.value.status_code == 409
            assert f"Financing invoice is {status};" in caught.value.message, step
        assert (await reload(db, fi_id)).status == status


async def test_a_missing_invoice_is_not_found(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        ghost = await make_draft(session, offer)
    async with db.session() as session, session.begin():
        await servicing.release_draft(session, ghost, cause="test")
    async with db.session() as session, session.begin():
        with pytest.raises(NotFound, match="Financing invoice not found"):
            await servicing.fund(session, ghost, cause="test")


# --- funding, repaying, late, default, write-off -------------------------------------------------


@pytest.mark.parametrize(
    ("plan_index", "expected_offsets"),
    [(0, [30]), (1, [30, 60, 90]), (2, [45 + 5])],
    ids=["FIXED_DURATION", "MULTIPLE_DURATION", "FIXED_DATE"],
)
async def test_fund_fixes_the_schedule_and_books_the_ledger(
    db: Database, tenant: Tenant, plan_index: int, expected_offsets: list[int]
) -> None:
    fi_id, offer_id = await setup(db, tenant, "FUNDED", plan_index=plan_index)
    fi = await reload(db, fi_id)
    today = clock.today()
    async with db.session() as session:
        instalments = list(
            await session.scalars(
                select(Instalment)
                .where(Instalment.financing_invoice_id == fi_id)
                .order_by(Instalment.sequence)
            )
        )
        assert await ledger.outstanding(session, fi_id) == fi.repayment_amount
        kinds = list(
            await session.scalars(
                select(JournalEntry.kind)
                .where(JournalEntry.financing_invoice_id == fi_id)
                .order_by(JournalEntry.kind)
            )
        )
    assert [i.due_date for i in instalments] == [
        today + timedelta(days=d) for d in expected_offsets
    ]
    assert fi.repayment_date == instalments[0].due_date
    assert sum(i.amount for i in instalments) == fi.repayment_amount
    assert sum(i.fee_amount for i in instalments) == fi.fee_amount
    assert kinds == ["disbursement", "fee"]
    offer = await offer_of(db, offer_id)
    assert (offer.reserved_amount, offer.outstanding_amount) == (0, fi.repayment_amount)


async def test_reject_releases_the_reservation(db: Database, tenant: Tenant) -> None:
    fi_id, offer_id = await setup(db, tenant, "NEW")
    assert (await offer_of(db, offer_id)).reserved_amount == 100_000
    fi = await reload(db, fi_id)
    async with db.session() as session, session.begin():
        fi = await servicing.reject(session, fi, cause="operator: no")
        assert fi.status == "REJECTED"
        assert fi.live_invoice_id is None
        assert fi.closed_at is not None
    offer = await offer_of(db, offer_id)
    assert (offer.reserved_amount, offer.available_amount) == (0, LIMIT)
    assert await history_of(db, fi_id) == [("DRAFT", "NEW"), ("NEW", "REJECTED")]


async def test_limit_arithmetic_through_a_portfolio(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, total_amount=500_000)
        plan = (await plans_of(session, offer))[0]
        a, b, c = [await make_draft(session, offer, total_amount=100_000) for _ in range(3)]
        for fi in (a, b, c):
            await servicing.confirm_invoice(
                session, fi, plan=plan, requested_amount=80_000, policy=MANUAL
            )
    expected = {"reserved": 240_000, "outstanding": 0}

    async def check() -> None:
        o = await offer_of(db, offer.id)
        assert (o.reserved_amount, o.outstanding_amount) == (
            expected["reserved"],
            expected["outstanding"],
        )
        assert o.available_amount == 500_000 - expected["reserved"] - expected["outstanding"]

    await check()
    async with db.session() as session, session.begin():
        await servicing.reject(session, a, cause="no")
    expected["reserved"] -= 80_000
    await check()
    async with db.session() as session, session.begin():
        await servicing.fund(session, b, cause="yes")
        await servicing.fund(session, c, cause="yes")
    expected.update(reserved=0, outstanding=160_000)
    await check()
    async with db.session() as session, session.begin():
        await servicing.record_repayment(session, b, 30_000, cause="partial")
    expected["outstanding"] -= 30_000
    await check()
    async with db.session() as session, session.begin():
        fi = await servicing.record_repayment(session, b, 50_000, cause="rest")
        assert fi.status == "PAID"
        assert fi.live_invoice_id is None
    expected["outstanding"] -= 50_000
    await check()
    async with db.session() as session, session.begin():
        await servicing.mark_late(session, c, cause="late")
        await servicing.write_off(session, c, cause="gone")
    expected["outstanding"] = 0
    await check()
    async with db.session() as session:
        assert await ledger.reconcile(session) == []


async def test_partial_then_full_repayment(db: Database, tenant: Tenant) -> None:
    fi_id, offer_id = await setup(db, tenant, "FUNDED", plan_index=1)  # three instalments
    fi = await reload(db, fi_id)
    async with db.session() as session, session.begin():
        fi = await servicing.record_repayment(session, fi, 40_000, cause="payer")
        assert (fi.status, fi.repaid_amount) == ("FUNDED", 40_000)
    async with db.session() as session:
        paid = list(
            await session.scalars(
                select(Instalment.paid_amount)
                .where(Instalment.financing_invoice_id == fi_id)
                .order_by(Instalment.sequence)
            )
        )
    assert paid == [30_000, 10_000, 0]  # oldest first; 90 000 in three instalments
    async with db.session() as session, session.begin():
        with pytest.raises(Unprocessable, match="more than the 50000 still owed"):
            await servicing.record_repayment(session, fi, 50_001, cause="too much")
    async with db.session() as session, session.begin():
        with pytest.raises(Unprocessable, match="positive integer"):
            await servicing.record_repayment(session, fi, 0, cause="nothing")
    async with db.session() as session, session.begin():
        fi = await servicing.record_repayment(session, fi, 50_000, cause="payer")
        assert fi.status == "PAID"
        assert await ledger.outstanding(session, fi_id) == 0
    assert (await offer_of(db, offer_id)).available_amount == LIMIT
    history = await history_of(db, fi_id)
    assert history[-2:] == [("FUNDED", "FUNDED"), ("FUNDED", "PAID")]


async def test_late_invoice_makes_its_offer_late_and_repayment_cures_both(
    db: Database, tenant: Tenant
) -> None:
    fi_id, offer_id = await setup(db, tenant, "LATE")
    assert (await offer_of(db, offer_id)).status == "LATE"
    fi = await reload(db, fi_id)
    async with db.session() as session, session.begin():
        fi = await servicing.record_repayment(session, fi, 100_000, cause="payer")
        assert fi.status == "PAID"
    assert (await offer_of(db, offer_id)).status == "CURRENT"


async def test_a_repayment_bringing_a_late_invoice_up_to_date_makes_it_funded(
    db: Database, tenant: Tenant
) -> None:
    fi_id, offer_id = await setup(db, tenant, "FUNDED", plan_index=1)
    clock.set_offset(timedelta(days=31))  # the first of three instalments is overdue
    async with db.session() as session, session.begin():
        counts = await servicing.tick(session, policy=MANUAL)
        assert counts["invoices_late"] == 1
    fi = await reload(db, fi_id)
    assert fi.status == "LATE"
    async with db.session() as session, session.begin():
        fi = await servicing.record_repayment(session, fi, 20_000, cause="p")
        assert fi.status == "LATE"  # 30 000 was due
        fi = await servicing.record_repayment(session, fi, 10_000, cause="p")
        assert fi.status == "FUNDED"
    assert (await offer_of(db, offer_id)).status == "CURRENT"


async def test_default_makes_the_offer_defaulted_for_good(db: Database, tenant: Tenant) -> None:
    fi_id, offer_id = await setup(db, tenant, "DEFAULTED")
    fi = await reload(db, fi_id)
    assert fi.live_invoice_id is None
    assert (await offer_of(db, offer_id)).status == "DEFAULTED"
    offer = await offer_of(db, offer_id)
    async with db.session() as session, session.begin():
        draft = await make_draft(session, offer)
    async with db.session() as session, session.begin():
        plan = (await plans_of(session, offer))[0]
        with pytest.raises(Conflict, match="Financing offer is DEFAULTED;"):
            await servicing.confirm_invoice(
                session, draft, plan=plan, requested_amount=None, policy=MANUAL
            )


@pytest.mark.parametrize("status", ["LATE", "DEFAULTED"])
async def test_write_off_books_the_rest_as_a_loss(
    db: Database, tenant: Tenant, status: str
) -> None:
    fi_id, offer_id = await setup(db, tenant, status)
    fi = await reload(db, fi_id)
    if status == "LATE":  # something was recovered before the write-off
        async with db.session() as session, session.begin():
            fi = await servicing.record_repayment(session, fi, 1, cause="payer")
    async with db.session() as session, session.begin():
        fi = await servicing.write_off(session, fi, cause="operator: uncollectable")
        assert fi.status == "DEFAULTED"
        assert fi.closed_at is not None
        assert await ledger.outstanding(session, fi_id) == 0
        balances = await ledger.balances(session)
    written_off = 99_999 if status == "LATE" else 100_000
    assert balances[(ledger.CREDIT_LOSSES, "USD")] == written_off
    offer = await offer_of(db, offer_id)
    assert (offer.outstanding_amount, offer.status) == (0, "DEFAULTED")
    async with db.session() as session, session.begin():
        with pytest.raises(Conflict, match="is DEFAULTED and already written off"):
            await servicing.write_off(session, fi, cause="again")
    async with db.session() as session:
        assert await ledger.reconcile(session) == []


async def test_release_draft_frees_the_invoice(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        fi = await make_draft(session, offer)
        session.add(
            FinancingStatusChange(
                financing_invoice_id=fi.id, from_status=None, to_status="DRAFT", cause="requested"
            )
        )
    async with db.session() as session, session.begin():
        await servicing.release_draft(session, fi, cause="expired")
    assert await reload_or_none(db, fi.id) is None
    assert [a for a, _ in await events_of(db, fi.id)] == ["financing_invoice.deleted"]
    async with db.session() as session, session.begin():
        again = await make_draft(session, offer, invoice_id=fi.invoice_id)  # live id free again
        assert again.live_invoice_id == fi.invoice_id


async def test_load_details(db: Database, tenant: Tenant) -> None:
    fi_id, _ = await setup(db, tenant, "PAID", plan_index=1)
    draft_id, _ = await setup(db, tenant, "DRAFT")
    async with db.session() as session:
        fis = list(await session.scalars(select(FinancingInvoice)))
        details = await servicing.load_details(session, fis)
        assert await servicing.load_details(session, []) == {}
    instalments, history = details[fi_id]
    assert [i.sequence for i in instalments] == [1, 2, 3]
    assert [(h.from_status, h.to_status) for h in history] == [
        ("DRAFT", "NEW"),
        ("NEW", "FUNDED"),
        ("FUNDED", "PAID"),
    ]
    assert details[draft_id] == ([], [])


# --- the clock ---------------------------------------------------------------------------------


async def test_tick_expires_offers_not_accepted_in_time(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        stale = await make_offer(session, tenant, status="NEW", expires_in=timedelta(days=3))
        fresh = await make_offer(session, tenant, status="NEW", expires_in=timedelta(days=10))
        current = await make_offer(session, tenant, expires_in=timedelta(days=1))
    clock.set_offset(timedelta(days=5))
    async with db.session() as session, session.begin():
        counts = await servicing.tick(session, policy=AUTO)
    assert counts["offers_expired"] == 1
    assert [(await offer_of(db, o.id)).status for o in (stale, fresh, current)] == [
        "EXPIRED",
        "NEW",
        "CURRENT",
    ]
    async with db.session() as session, session.begin():
        assert (await servicing.tick(session, policy=AUTO))["offers_expired"] == 0


async def test_tick_expires_requests_and_releases_their_drafts(
    db: Database, tenant: Tenant
) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]
        kept = await make_draft(session, offer, ttl=timedelta(minutes=30))
        request = await session.get(FinancingRequest, kept.request_id)
        dropped = await make_draft(session, offer, request=request)
        confirmed = await walk(session, kept, "NEW", plan=plan)  # the request is now confirmed
        lonely = await make_draft(session, offer, ttl=timedelta(minutes=30))
        later = await make_draft(session, offer, ttl=timedelta(hours=2))
    clock.set_offset(timedelta(hours=1))
    async with db.session() as session, session.begin():
        counts = await servicing.tick(session, policy=AUTO)
    assert counts["drafts_released"] == 2
    assert counts["requests_expired"] == 1  # the open one; the confirmed one keeps its status
    assert await reload_or_none(db, dropped.id) is None
    assert await reload_or_none(db, lonely.id) is None
    assert (await reload(db, confirmed.id)).status == "NEW"
    assert (await reload(db, later.id)).status == "DRAFT"
    async with db.session() as session:
        statuses = dict(
            (await session.execute(select(FinancingRequest.id, FinancingRequest.status))).all()
        )
    assert statuses[lonely.request_id] == "expired"
    assert statuses[kept.request_id] == "confirmed"


async def test_tick_marks_late_then_defaulted_on_the_clock(db: Database, tenant: Tenant) -> None:
    policy = sandbox_policy(default_after_days_late=10)
    fi_id, offer_id = await setup(db, tenant, "FUNDED")  # due in 30 days

    async def tick_at(days: int) -> dict[str, int]:
        clock.set_offset(timedelta(days=days))
        async with db.session() as session, session.begin():
            return await servicing.tick(session, policy=policy)

    assert (await tick_at(30))["invoices_late"] == 0  # due today: not late yet
    assert (await reload(db, fi_id)).status == "FUNDED"
    counts = await tick_at(31)
    assert (counts["invoices_late"], counts["invoices_defaulted"]) == (1, 0)
    assert (await reload(db, fi_id)).status == "LATE"
    assert (await offer_of(db, offer_id)).status == "LATE"
    assert (await tick_at(40))["invoices_defaulted"] == 0  # 10 days late: not more than 10
    counts = await tick_at(41)
    assert (counts["invoices_late"], counts["invoices_defaulted"]) == (0, 1)
    assert (await reload(db, fi_id)).status == "DEFAULTED"
    assert (await offer_of(db, offer_id)).status == "DEFAULTED"
    assert await history_of(db, fi_id) == [
        ("DRAFT", "NEW"),
        ("NEW", "FUNDED"),
        ("FUNDED", "LATE"),
        ("LATE", "DEFAULTED"),
    ]


async def test_one_long_clock_jump_goes_straight_to_defaulted(db: Database, tenant: Tenant) -> None:
    fi_id, _ = await setup(db, tenant, "FUNDED")
    clock.set_offset(timedelta(days=365))
    async with db.session() as session, session.begin():
        counts = await servicing.tick(session, policy=AUTO)
    assert (counts["invoices_late"], counts["invoices_defaulted"]) == (1, 1)
    assert (await reload(db, fi_id)).status == "DEFAULTED"


async def test_tick_on_nothing_changes_nothing(db: Database) -> None:
    async with db.session() as session, session.begin():
        counts = await servicing.tick(session, policy=AUTO)
    assert counts == {
        "offers_expired": 0,
        "requests_expired": 0,
        "drafts_released": 0,
        "invoices_late": 0,
        "invoices_defaulted": 0,
    }


# --- documents paid ------------------------------------------------------------------------------


async def test_marking_a_financed_receivable_paid_repays_it(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    invoice = await create_issued_invoice(client, tenant, amount=100_000)
    fi_id, offer_id = await _financing_for(db, tenant, uuid.UUID(invoice["id"]), "receivable")
    response = await client.post(
        f"/v1/receivables/{invoice['id']}/mark_as_paid", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    fi = await reload(db, fi_id)
    assert (fi.status, fi.repaid_amount) == ("PAID", fi.repayment_amount)
    assert (await offer_of(db, offer_id)).available_amount == LIMIT


async def test_marking_a_financed_payable_paid_repays_it(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    payable = await create_payable(client, tenant, amount=100_000)
    fi_id, _ = await _financing_for(db, tenant, uuid.UUID(payable["id"]), "payable")
    response = await client.post(
        f"/v1/payables/{payable['id']}/mark_as_paid", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert (await reload(db, fi_id)).status == "PAID"


async def _financing_for(
    db: Database, tenant: Tenant, invoice_id: uuid.UUID, invoice_type: str, status: str = "FUNDED"
) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant)
        plan = (await plans_of(session, offer))[0]
        draft = await make_draft(session, offer, invoice_id=invoice_id, invoice_type=invoice_type)
        fi = await walk(session, draft, status, plan=plan)
        return fi.id, offer.id


@pytest.mark.parametrize(("status", "after"), [("NEW", "REJECTED"), ("LATE", "PAID")])
async def test_on_document_paid_settles_what_is_live(
    db: Database, tenant: Tenant, status: str, after: str
) -> None:
    invoice_id = uuid.uuid4()
    fi_id, offer_id = await _financing_for(db, tenant, invoice_id, "receivable", status)
    async with db.session() as session, session.begin():
        await documents.paid(session, invoice_type="receivable", invoice_id=invoice_id)
    assert (await reload(db, fi_id)).status == after
    offer = await offer_of(db, offer_id)
    assert (offer.available_amount, offer.status) == (LIMIT, "CURRENT")


async def test_on_document_paid_releases_a_draft_and_ignores_the_rest(
    db: Database, tenant: Tenant
) -> None:
    invoice_id = uuid.uuid4()
    fi_id, _ = await _financing_for(db, tenant, invoice_id, "receivable", "DRAFT")
    paid_id, _ = await _financing_for(db, tenant, uuid.uuid4(), "receivable", "PAID")
    paid = await reload(db, paid_id)
    async with db.session() as session, session.begin():
        # The wrong type, an unknown invoice, a settled one: nothing happens.
        await documents.paid(session, invoice_type="payable", invoice_id=invoice_id)
        await documents.paid(session, invoice_type="receivable", invoice_id=uuid.uuid4())
        await documents.paid(session, invoice_type="receivable", invoice_id=paid.invoice_id)
    assert (await reload(db, fi_id)).status == "DRAFT"
    async with db.session() as session, session.begin():
        await documents.paid(session, invoice_type="receivable", invoice_id=invoice_id)
    assert await reload_or_none(db, fi_id) is None


# --- underwriting ------------------------------------------------------------------------------


async def _business(db: Database, tenant: Tenant, entity_id: str | None = None) -> uuid.UUID:
    async with db.session() as session, session.begin():
        business = FinancingBusiness(
            entity_id=uuid.UUID(entity_id or tenant.entity_id),
            partner_id=tenant.partner_id,
            status="ONBOARDED",
            onboarded_at=clock.now(),
        )
        session.add(business)
        await session.flush()
        return business.id


async def _underwrite(db: Database, business_id: uuid.UUID, **policy: Any) -> FinancingOffer | None:
    async with db.session() as session, session.begin():
        business = await session.get(FinancingBusiness, business_id)
        assert business is not None
        return await underwrite(session, business, policy=sandbox_policy(**policy))


async def test_underwriting_extends_the_floor_with_every_plan(db: Database, tenant: Tenant) -> None:
    business_id = await _business(db, tenant)
    offer = await _underwrite(db, business_id)
    assert offer is not None
    assert (offer.status, offer.currency, offer.total_amount) == ("NEW", "USD", 5_000_000)
    assert offer.available_amount == 5_000_000
    assert timedelta(days=29) < offer.expires_at - clock.now() <= timedelta(days=30)
    async with db.session() as session:
        plans = await plans_of(session, offer)
    assert [(p.repayment_type, p.fee_percentage) for p in plans] == [
        (p.repayment_type, p.fee_percentage) for p in AUTO.plans
    ]
    assert [a for a, _ in await events_of(db, offer.id)] == ["financing_offer.created"]
    again = await _underwrite(db, business_id)  # the live offer, not a second one
    assert again is not None
    assert again.id == offer.id


async def test_underwriting_limit_follows_the_invoicing_history(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for amount in (1_000_000, 3_000_000):
        await create_issued_invoice(client, tenant, amount=amount)
    business_id = await _business(db, tenant)
    offer = await _underwrite(db, business_id, limit_floor=0, limit_share_bp=2_500)
    assert offer is not None
    assert offer.total_amount == 1_000_000  # 25 % of 4 000 000
    async with db.session() as session, session.begin():
        await session.execute(
            update(FinancingOffer).values(status="CLOSED")
        )  # a new line may follow
    capped = await _underwrite(db, business_id, limit_floor=0, limit_cap=700_000)
    assert capped is not None
    assert capped.total_amount == 700_000
    async with db.session() as session, session.begin():
        await session.execute(update(FinancingOffer).values(status="EXPIRED"))
        # Invoices older than the history window do not count.
        await session.execute(
            update(Receivable).values(issue_date=clock.now() - timedelta(days=400))
        )
    floor = await _underwrite(db, business_id, limit_floor=123_400)
    assert floor is not None
    assert floor.total_amount == 123_400


async def test_underwriting_declines_without_history_and_floor(
    db: Database, tenant: Tenant
) -> None:
    business_id = await _business(db, tenant)
    assert await _underwrite(db, business_id, limit_floor=0) is None
    async with db.session() as session:
        business = await session.get(FinancingBusiness, business_id)
        assert business is not None
        assert business.decision_note == "No invoices issued in USD in the last 365 days"
    assert [a for a, _ in await events_of(db, business_id)] == ["financing_business.updated"]


async def test_underwriting_declines_outside_the_us(
    db: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    address = {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
    }
    entity_id = await create_entity(client, tenant.token, address=address)
    business_id = await _business(db, tenant, entity_id)
    assert await _underwrite(db, business_id) is None
    async with db.session() as session:
        business = await session.get(FinancingBusiness, business_id)
        assert business is not None
        assert business.decision_note == (
            "Financing is available to US businesses only; the entity's address is in DE"
        )


async def test_underwriting_declines_after_a_default(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, status="DEFAULTED")
        business_id = offer.business_id
    assert await _underwrite(db, business_id) is None


# --- the policy file ---------------------------------------------------------------------------


def test_default_policies_are_what_each_mode_promises(tmp_path: Path) -> None:
    sandbox = load_policy(Settings(mode=Mode.SANDBOX))
    assert (sandbox.review, sandbox.auto_fund) == ("auto", True)
    assert (sandbox.currency, sandbox.limit_floor) == ("USD", 5_000_000)
    assert {p.repayment_type for p in sandbox.plans} == {
        "FIXED_DURATION",
        "MULTIPLE_DURATION",
        "FIXED_DATE",
    }
    production = load_policy(
        Settings(mode=Mode.PRODUCTION, secret_key="k" * 40, database_url="sqlite+aiosqlite://")
    )
    assert (production.review, production.auto_fund) == ("manual", False)
    assert production.min_days_to_due == 7


def test_the_app_holds_the_policy(app: FastAPI) -> None:
    assert app.state.policy == AUTO


def test_policy_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD_POLICY)
    monkeypatch.setenv("FUNDLINE_POLICY_FILE", str(path))
    policy = load_policy(Settings())
    assert (policy.limit_floor, policy.limit_cap, policy.review) == (100, 1000, "manual")
    assert policy.default_after_days_late == 15
    assert len(policy.plans) == 1
    assert (policy.plans[0].grace_days, policy.plans[0].repayment_duration_days) == (0, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("floor = 100", "floor = 5000"), "limit.floor (5000) is above limit.cap (1000)"),
        (('mode = "manual"', 'mode = "maybe"'), "review.mode must be one of auto, manual"),
        (('currency = "USD"', 'currency = "XXX"'), "currency must be an ISO 4217 code"),
        (("cap = 1000", "cap = 10.5"), "limit.cap must be an integer 1 or more, not 10.5"),
        (("auto_fund = false", "auto_fund = 0"), "review.auto_fund must be true or false"),
        (("history_days = 90\n", ""), "limit.history_days is required"),
        (("[offers]", "[offers]\nvalidty_days = 3"), "unknown key offers.validty_days"),
        (
            ("fee_percentage = 100", "fee_percentage = 10000"),
            "plans[0].fee_percentage must be an integer from 0 to 9999",
        ),
        (
            ('repayment_type = "FIXED_DATE"', 'repayment_type = "FIXED_DURATION"'),
            "plans[0].repayment_duration_days is required",
        ),
        (
            ("fee_percentage = 100", "fee_percentage = 100\nrepayment_duration_days = 30"),
            "plans[0].repayment_duration_days does not apply to a FIXED_DATE plan",
        ),
        (
            (
                'repayment_type = "FIXED_DATE"',
                'repayment_type = "MULTIPLE_DURATION"\nrepayment_duration_days = 3\n'
                "instalments = 4",
            ),
            "plans[0].instalments must be an integer from 2 to 3",
        ),
        (("[[plans]]", "[plans]"), "plans must be an array of tables ([[plans]])"),
        (("currency", "currency = = "), "not valid TOML"),
    ],
)
def test_a_bad_policy_file_fails_loudly_with_the_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "policy.toml"
    old, new = change
    assert old in GOOD_POLICY
    path.write_text(GOOD_POLICY.replace(old, new, 1))
    with pytest.raises(PolicyError) as caught:
        load_policy(Settings(policy_file=path))
    assert str(caught.value).startswith(f"credit policy {path}: ")
    assert message in str(caught.value)


def test_a_policy_without_plans_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("plans = []\n" + GOOD_POLICY[: GOOD_POLICY.index("[[plans]]")])
    with pytest.raises(PolicyError, match="plans: at least one"):
        load_policy(Settings(policy_file=path))


def test_a_missing_policy_file_stops_the_app(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError, match="cannot be read"):
        create_app(make_settings(sqlite_url, policy_file=path))


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.usefixtures("postgres_only")
async def test_concurrent_confirmations_never_reserve_more_than_the_limit(
    db: Database, tenant: Tenant
) -> None:
    limit, each = 1_000_000, 70_000  # room for 14 of 50
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, total_amount=limit)
        plan = (await plans_of(session, offer))[0]
        drafts = [await make_draft(session, offer, total_amount=each) for _ in range(50)]

    async def confirm(fi: FinancingInvoice) -> bool:
        try:
            async with db.session() as session, session.begin():
                await servicing.confirm_invoice(
                    session, fi, plan=plan, requested_amount=None, policy=MANUAL
                )
        except Conflict:
            return False
        return True

    results = await asyncio.gather(*(confirm(fi) for fi in drafts))
    assert sum(results) == limit // each
    stored = await offer_of(db, offer.id)
    assert stored.reserved_amount == (limit // each) * each <= limit
    async with db.session() as session:
        confirmed = await session.scalar(
            select(func.count()).where(
                FinancingInvoice.offer_id == offer.id, FinancingInvoice.status == "NEW"
            )
        )
        assert confirmed == limit // each
        assert await ledger.reconcile(session) == []


@pytest.mark.usefixtures("postgres_only")
async def test_concurrent_funding_of_one_invoice_funds_it_once(
    db: Database, tenant: Tenant
) -> None:
    fi_id, offer_id = await setup(db, tenant, "NEW")
    fi = await reload(db, fi_id)

    async def fund() -> bool:
        try:
            async with db.session() as session, session.begin():
                await servicing.fund(session, fi, cause="race")
        except Conflict:
            return False
        return True

    assert sorted(await asyncio.gather(*(fund() for _ in range(10)))) == [False] * 9 + [True]
    offer = await offer_of(db, offer_id)
    assert (offer.reserved_amount, offer.outstanding_amount) == (0, 100_000)
    async with db.session() as session:
        assert await ledger.reconcile(session) == []
