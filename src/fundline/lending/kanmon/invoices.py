"""A Kanmon invoice into Fundline's record: the row Fundline sent it as (or one of its own for a
confirmation seen after its request lapsed), its status, figures and schedule as Kanmon gives
them, each change with its history and event."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.financing import record
from fundline.kit import clock
from fundline.lending import locks
from fundline.lending.kanmon import mapping
from fundline.models import (
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    Instalment,
    Payable,
    Receivable,
)
from fundline.models.financing import FinancingRequestStatus, WCInvoiceStatus

log = structlog.get_logger("fundline.kanmon")


async def apply(
    session: AsyncSession,
    business: FinancingBusiness,
    facts: mapping.KanmonInvoice,
    invoice: dict[str, Any],
) -> bool | None:
    """One Kanmon invoice into the record; whether it changed anything. ``None`` when it is
    no invoice of this entity's that Fundline could show (logged)."""
    fi = await _record_of(session, business, facts)
    if fi is None:
        fi = await _adopt(session, business, facts, invoice)
        if fi is None:
            log.info("kanmon_invoice_unmatched", invoice=facts.ref)
            return None
    before = _figures(fi)
    fi.lender_ref = facts.ref
    fi.lender_status = facts.lender_status
    if facts.product_ref is not None:
        offer_id = await _offer_of_product(session, business, facts.product_ref)
        if offer_id is not None:
            fi.offer_id = offer_id
    fi.requested_amount = facts.requested_amount
    fi.fee_amount = facts.fee_amount
    fi.principal_amount = facts.principal_amount
    fi.repayment_amount = facts.repayment_amount
    fi.advance_rate_percentage = facts.advance_rate_percentage
    fi.fee_percentage = facts.fee_percentage
    fi.repayment_date = facts.schedule[0].due_date if facts.schedule else None
    schedule_changed = await _replace_schedule(session, fi, facts)
    now = clock.now()
    if fi.status == WCInvoiceStatus.DRAFT and facts.status != WCInvoiceStatus.DRAFT:
        fi.confirmed_at = now
        request = await session.get(FinancingRequest, fi.request_id)
        if request is not None and request.status == FinancingRequestStatus.OPEN:
            request.status = FinancingRequestStatus.CONFIRMED
    if facts.status == WCInvoiceStatus.FUNDED and fi.funded_at is None:
        fi.funded_at = now
    if facts.status in (WCInvoiceStatus.PAID, WCInvoiceStatus.REJECTED, WCInvoiceStatus.DEFAULTED):
        fi.closed_at = fi.closed_at or now
    if facts.status != fi.status:
        await record.move(session, fi, facts.status, cause=f"Kanmon: {facts.lender_status}")
        return True
    if schedule_changed or _figures(fi) != before:
        await record.note(session, fi, cause=f"Kanmon: {facts.lender_status}")
        return True
    return False


def _figures(fi: FinancingInvoice) -> tuple[Any, ...]:
    return (
        fi.status,
        fi.lender_status,
        fi.offer_id,
        fi.requested_amount,
        fi.fee_amount,
        fi.principal_amount,
        fi.repayment_amount,
        fi.repayment_date,
    )


async def _record_of(
    session: AsyncSession, business: FinancingBusiness, facts: mapping.KanmonInvoice
) -> FinancingInvoice | None:
    """The record's row of a Kanmon invoice: the one synced from it before, else the draft
    Fundline sent it as (the invoice's live financing, still ``DRAFT``)."""
    fi = await locks.row(
        session,
        select(FinancingInvoice).where(
            FinancingInvoice.entity_id == business.entity_id,
            FinancingInvoice.lender_ref == facts.ref,
        ),
    )
    if fi is not None or facts.invoice_id is None:
        return fi
    return await locks.row(
        session,
        select(FinancingInvoice).where(
            FinancingInvoice.entity_id == business.entity_id,
            FinancingInvoice.live_invoice_id == facts.invoice_id,
            FinancingInvoice.status == WCInvoiceStatus.DRAFT,
        ),
    )


async def _offer_of_product(
    session: AsyncSession, business: FinancingBusiness, product_ref: str
) -> uuid.UUID | None:
    return await session.scalar(
        select(FinancingOffer.id).where(
            FinancingOffer.entity_id == business.entity_id,
            FinancingOffer.lender_product_ref == product_ref,
        )
    )


async def _adopt(
    session: AsyncSession,
    business: FinancingBusiness,
    facts: mapping.KanmonInvoice,
    invoice: dict[str, Any],
) -> FinancingInvoice | None:
    """A Kanmon invoice of one of the entity's documents that the record has no row for (its
    draft was released: the request lapsed before the sync saw the confirmation). It gets a
    row of its own, under a request marked confirmed, so the partner sees the financing."""
    if facts.invoice_id is None or facts.product_ref is None:
        return None
    kind = await _document_type(session, business.entity_id, facts.invoice_id)
    offer_id = await _offer_of_product(session, business, facts.product_ref)
    if kind is None or offer_id is None:
        return None
    if await session.scalar(
        select(FinancingInvoice.id).where(FinancingInvoice.live_invoice_id == facts.invoice_id)
    ):
        return None  # another live financing holds the document (a newer request)
    now = clock.now()
    request = FinancingRequest(
        entity_id=business.entity_id,
        partner_id=business.partner_id,
        status=FinancingRequestStatus.CONFIRMED,
        created_at=now,
        expires_at=now,
    )
    session.add(request)
    await session.flush()
    party = "payor" if kind == "receivable" else "payee"
    fi = FinancingInvoice(
        partner_id=business.partner_id,
        entity_id=business.entity_id,
        request_id=request.id,
        offer_id=offer_id,
        invoice_id=facts.invoice_id,
        live_invoice_id=facts.invoice_id,
        type=kind,
        status=WCInvoiceStatus.DRAFT,
        document_id=str(invoice.get("platformInvoiceNumber") or facts.invoice_id)[:100],
        issue_date=mapping.day(invoice.get("invoiceIssuedDate") or now.date(), "issued date"),
        due_date=mapping.day(invoice.get("invoiceDueDate") or now.date(), "due date"),
        total_amount=facts.total_amount,
        currency="USD",
        payer_type=str(invoice.get(f"{party}Type") or "BUSINESS"),
        payer_business_name=invoice.get(f"{party}BusinessName"),
        payer_first_name=invoice.get(f"{party}FirstName"),
        payer_last_name=invoice.get(f"{party}LastName"),
    )
    session.add(fi)
    await session.flush()
    await record.created(session, fi, cause="Kanmon: financed in Kanmon")
    return fi


async def _document_type(
    session: AsyncSession, entity_id: uuid.UUID, invoice_id: uuid.UUID
) -> str | None:
    if await session.scalar(
        select(Receivable.id).where(Receivable.entity_id == entity_id, Receivable.id == invoice_id)
    ):
        return "receivable"
    if await session.scalar(
        select(Payable.id).where(Payable.entity_id == entity_id, Payable.id == invoice_id)
    ):
        return "payable"
    return None


async def _replace_schedule(
    session: AsyncSession, fi: FinancingInvoice, facts: mapping.KanmonInvoice
) -> bool:
    """The instalments become Kanmon's schedule; whether they changed. Kanmon reports no
    paid amounts per instalment: a paid invoice's are all paid, the others' none."""
    paid = facts.status == WCInvoiceStatus.PAID
    wanted = [
        (n, item.due_date, item.amount, item.fee_amount, item.principal_amount, paid)
        for n, item in enumerate(facts.schedule, start=1)
    ]
    rows = list(
        await session.scalars(
            select(Instalment)
            .where(Instalment.financing_invoice_id == fi.id)
            .order_by(Instalment.sequence)
        )
    )
    held = [
        (
            r.sequence,
            r.due_date,
            r.amount,
            r.fee_amount,
            r.principal_amount,
            r.paid_amount == r.amount,
        )
        for r in rows
    ]
    fi.repaid_amount = (fi.repayment_amount or 0) if paid else 0
    fi.next_due_date = None if paid or not wanted else wanted[0][1]
    if held == wanted:
        return False
    await session.execute(delete(Instalment).where(Instalment.financing_invoice_id == fi.id))
    for sequence, due, amount, fee, principal, settled in wanted:
        session.add(
            Instalment(
                financing_invoice_id=fi.id,
                sequence=sequence,
                due_date=due,
                amount=amount,
                fee_amount=fee,
                principal_amount=principal,
                paid_amount=amount if settled else 0,
            )
        )
    await session.flush()
    return True
