"""``FinancingInvoice.next_due_date``: the due date of the earliest instalment not paid in full,
kept as instalments are written and paid (the console's late lists sort by it)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fundline.kit.db import Database
from fundline.lending import servicing
from fundline.lending.policy import PlanPolicy
from fundline.models import Instalment
from tests.support.factories import Tenant
from tests.support.lending import make_draft, make_offer, plans_of, walk

THREE_PARTS = PlanPolicy("MULTIPLE_DURATION", 8000, 300, 90, instalments=3)


async def test_it_follows_each_instalment_paid(db: Database, tenant: Tenant) -> None:
    async with db.session() as session, session.begin():
        offer = await make_offer(session, tenant, total_amount=5_000_000, plans=(THREE_PARTS,))
        fi = await make_draft(session, offer, total_amount=300_000, ttl=timedelta(hours=1))
        fi = await walk(session, fi, "FUNDED", plan=(await plans_of(session, offer))[0])
        parts = list(
            await session.scalars(
                select(Instalment)
                .where(Instalment.financing_invoice_id == fi.id)
                .order_by(Instalment.sequence)
            )
        )
        assert len(parts) == 3
        assert fi.next_due_date == parts[0].due_date
        fi = await servicing.record_repayment(session, fi, parts[0].amount - 1, cause="test")
        assert fi.next_due_date == parts[0].due_date  # one minor unit still owed on the first
        fi = await servicing.record_repayment(session, fi, 1, cause="test")
        assert fi.next_due_date == parts[1].due_date
        fi = await servicing.record_repayment(session, fi, parts[1].amount, cause="test")
        assert fi.next_due_date == parts[2].due_date
        owed = (fi.repayment_amount or 0) - fi.repaid_amount
        fi = await servicing.record_repayment(session, fi, owed, cause="test")
        assert (fi.status, fi.next_due_date) == ("PAID", None)
