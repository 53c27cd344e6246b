"""``/lender/reconciliation``: the ledger against the invoices and offers it books.

The report is the lender API's (``backoffice.service.reconciliation``, the ``reconcile`` of
``lending/ledger.py``); this page adds, for each difference, what it concerns (the financing
invoice, or the offer's business) with a link, read in one query per kind of object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.backoffice import service
from fundline.backoffice.schemas import AccountTotal
from fundline.console import snapshots
from fundline.console.names import business_name
from fundline.console.pages import PREFIX, ConsoleDep
from fundline.kit.routing import TransactionalRoute
from fundline.lending import ledger
from fundline.models import (
    Entity,
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    JournalEntry,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)

# The differences the page lists; a ledger with more has a bigger problem than a long page.
MAX_DIFFERENCES = 500

KINDS = {
    "unbalanced_entry": "Journal entry whose postings do not sum to zero",
    "outstanding_mismatch": "Invoice's receivable postings against what it owes",
    "offer_outstanding_mismatch": "Offer's outstanding amount against its invoices",
    "offer_reserved_mismatch": "Offer's reserved amount against its NEW invoices",
}


@dataclass(frozen=True)
class Difference:
    kind: str
    description: str
    concerns: str  # what it is about, as a link's text
    href: str | None
    currency: str | None
    recorded: int  # what the ledger or the offer holds
    expected: int  # what the invoices say it should hold
    note: str = ""

    @property
    def difference(self) -> int:
        return self.recorded - self.expected


@dataclass(frozen=True)
class Balances:
    """The account totals as a table: an account per row, a currency per column."""

    accounts: list[str]
    currencies: list[str]
    amounts: dict[tuple[str, str], int]  # (account, currency)
    unbalanced: list[str]

    @classmethod
    def of(cls, totals: list[AccountTotal], unbalanced: list[str]) -> Balances:
        found = {total.account for total in totals}
        accounts = [a for a in ledger.ACCOUNTS if a in found] + sorted(found - set(ledger.ACCOUNTS))
        return cls(
            accounts,
            sorted({total.currency for total in totals}),
            {(total.account, total.currency): total.amount for total in totals},
            unbalanced,
        )


@dataclass(frozen=True)
class Report:
    clean: bool
    balances: Balances
    unbalanced: list[str]
    differences: list[Difference]
    count: int


async def report(session: AsyncSession, _key: str = "") -> Report:
    """The lender API's reconciliation, with each difference described (at most
    ``MAX_DIFFERENCES`` of them)."""
    found = await service.reconciliation(session)
    return Report(
        clean=found.clean,
        balances=Balances.of(found.totals, found.unbalanced_currencies),
        unbalanced=found.unbalanced_currencies,
        differences=await _describe(session, found.differences[:MAX_DIFFERENCES]),
        count=len(found.differences),
    )


# Over 1M financing invoices the report takes seconds of the database's time (a pass over
# every posting): it is made again at most every five minutes.
REPORT_MAX_AGE = 300.0


def kept_reports(app: FastAPI) -> snapshots.Snapshots[Report]:
    return snapshots.for_app(
        app,
        "reconciliation_snapshots",
        lambda: snapshots.Snapshots(report, max_age=REPORT_MAX_AGE),
    )


@router.get("/reconciliation")
async def reconciliation_page(console: ConsoleDep) -> HTMLResponse:
    """Whether the ledger agrees with the invoices and offers, each account's balance per
    currency, and every difference found. Over a large book the report is kept and computed
    again in the background (``console/snapshots.py``); the page says when it was made."""
    app = console.request.app
    kept = await kept_reports(app).get(app.state.db, console.session, "all")
    found = kept.value
    return console.render(
        "reconciliation.html",
        clean=found.clean,
        balances=found.balances,
        unbalanced=found.unbalanced,
        differences=found.differences,
        count=found.count,
        limit=MAX_DIFFERENCES,
        kept=kept,
    )


async def _describe(session: AsyncSession, found: list[dict[str, Any]]) -> list[Difference]:
    """Each difference with the invoice or offer it concerns and its currency."""
    entry_ids = {uuid.UUID(d["entry_id"]) for d in found if d["kind"] == "unbalanced_entry"}
    entries = {
        entry_id: (fi_id, currency)
        for entry_id, fi_id, currency in await session.execute(
            select(JournalEntry.id, JournalEntry.financing_invoice_id, JournalEntry.currency).where(
                JournalEntry.id.in_(entry_ids)
            )
        )
    }
    invoice_ids = {
        uuid.UUID(d["financing_invoice_id"]) for d in found if "financing_invoice_id" in d
    }
    invoice_ids |= {fi_id for fi_id, _ in entries.values() if fi_id is not None}
    invoices = {
        fi_id: (document_id, currency)
        for fi_id, document_id, currency in await session.execute(
            select(
                FinancingInvoice.id, FinancingInvoice.document_id, FinancingInvoice.currency
            ).where(FinancingInvoice.id.in_(invoice_ids))
        )
    }
    offer_ids = {uuid.UUID(d["offer_id"]) for d in found if "offer_id" in d}
    offers = {
        offer_id: (business_id, currency, name)
        for offer_id, business_id, currency, name in await session.execute(
            select(
                FinancingOffer.id,
                FinancingOffer.business_id,
                FinancingOffer.currency,
                business_name(),
            )
            .join(FinancingBusiness, FinancingBusiness.id == FinancingOffer.business_id)
            .join(Entity, Entity.id == FinancingOffer.entity_id)
            .where(FinancingOffer.id.in_(offer_ids))
        )
    }

    def invoice(fi_id: uuid.UUID | None) -> tuple[str, str | None, str | None]:
        if fi_id is None or fi_id not in invoices:
            return "no financing invoice", None, None
        document_id, currency = invoices[fi_id]
        return f"Financing invoice {document_id}", f"{PREFIX}/invoices/{fi_id}", currency

    described = []
    for d in found:
        kind, description = d["kind"], KINDS.get(d["kind"], d["kind"])
        if kind == "unbalanced_entry":
            entry_id = uuid.UUID(d["entry_id"])
            fi_id, entry_currency = entries.get(entry_id, (None, None))
            concerns, href, _ = invoice(fi_id)
            described.append(
                Difference(
                    kind,
                    description,
                    concerns,
                    href,
                    entry_currency,
                    int(d["difference"]),
                    0,
                    note=f"entry {str(entry_id)[:8]}",
                )
            )
        elif kind == "outstanding_mismatch":
            concerns, href, currency = invoice(uuid.UUID(d["financing_invoice_id"]))
            status = d["status"] or "never funded"
            described.append(
                Difference(
                    kind,
                    description,
                    concerns,
                    href,
                    currency,
                    int(d["ledger"]),
                    int(d["expected"]),
                    note=f"status {status}",
                )
            )
        elif "offer_id" in d:
            offer_id = uuid.UUID(d["offer_id"])
            business_id, currency, name = offers.get(offer_id, (None, None, None))
            short = str(offer_id)[:8]
            described.append(
                Difference(
                    kind,
                    description,
                    f"Offer {short} of {name or 'an unknown business'}",
                    None if business_id is None else f"{PREFIX}/businesses/{business_id}",
                    currency,
                    int(d["stored"]),
                    int(d["expected"]),
                )
            )
        else:  # a kind this page does not know yet: shown, never hidden
            described.append(Difference(kind, description, "", None, None, 0, 0, note=str(d)))
    return described
