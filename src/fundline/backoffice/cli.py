"""``fundline lender …``: the lender API's operations, run directly on the database.

Each command is one transaction through the same service functions as ``/lender/v1``; output
is a table, or JSON with ``--json``. Errors print one line and exit 1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.backoffice.schemas import (
    FinancingInvoiceDetail,
    FinancingInvoiceListParams,
    FinancingInvoiceView,
    FinancingOfferListParams,
    FinancingOfferListResponse,
    FinancingOfferView,
    LedgerListParams,
    LedgerListResponse,
    LenderFinancingInvoiceList,
)
from fundline.cli_support import JsonOption, run, settings_or_exit
from fundline.config import Settings
from fundline.financing.schemas import FinancingInvoiceType
from fundline.kit.money import to_major
from fundline.kit.pagination import Paginator
from fundline.models.financing import WCInvoiceStatus, WCOfferStatus

PageT = TypeVar("PageT", LenderFinancingInvoiceList, FinancingOfferListResponse, LedgerListResponse)

app = typer.Typer(
    help="Operate the built-in lender: review, fund, record repayments, read the ledger.",
    no_args_is_help=True,
)

InvoiceId = Annotated[uuid.UUID, typer.Argument(help="The financing invoice's id.")]
OfferId = Annotated[uuid.UUID, typer.Argument(help="The financing offer's id.")]
EntityFilter = Annotated[uuid.UUID | None, typer.Option(help="Only this entity's.")]
Limit = Annotated[int, typer.Option(min=1, max=100, help="Rows per page (1-100).")]
PageToken = Annotated[
    str | None, typer.Option(help="A next/prev token printed by a previous call.")
]

OPERATOR = "cli"


def emit_json(model: BaseModel) -> None:
    typer.echo(json.dumps(model.model_dump(mode="json"), indent=2))


def money(amount: int | None, currency: str) -> str:
    return "" if amount is None else f"{to_major(amount, currency)} {currency}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _invoice_table(invoices: list[FinancingInvoiceView], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "entity", "type", "status", "document", "requested", "owed", "repay by"):
        table.add_column(column, overflow="fold")
    for fi in invoices:
        table.add_row(
            str(fi.id),
            str(fi.entity_id),
            fi.type,
            fi.status + (" (approved)" if fi.approved else ""),
            fi.document_id,
            money(fi.requested_amount, fi.currency),
            money(fi.outstanding_amount, fi.currency),
            _text(fi.repayment_date),
        )
    return table


def print_detail(detail: FinancingInvoiceDetail, as_json: bool) -> None:
    if as_json:
        emit_json(detail)
        return
    console = Console()
    fields = Table(title=f"Financing invoice {detail.id}", show_header=False)
    fields.add_column("field")
    fields.add_column("value", overflow="fold")
    for name, value in detail.model_dump(exclude={"instalments", "history"}).items():
        fields.add_row(name, _text(value))
    console.print(fields)
    instalments = Table(title="Instalments")
    for column in ("#", "due", "amount", "fee", "principal", "paid"):
        instalments.add_column(column)
    for i in detail.instalments:
        instalments.add_row(
            str(i.sequence),
            _text(i.due_date),
            *(money(v, detail.currency) for v in (i.amount, i.fee_amount, i.principal_amount)),
            money(i.paid_amount, detail.currency),
        )
    console.print(instalments)
    history = Table(title="History")
    for column in ("at", "from", "to", "cause"):
        history.add_column(column, overflow="fold")
    for change in detail.history:
        history.add_row(_text(change.at), change.from_status or "", change.to_status, change.cause)
    console.print(history)


def print_page(
    purpose: str,
    fetch: Callable[[AsyncSession, Paginator], Awaitable[PageT]],
    table: Callable[[PageT], Table],
    as_json: bool,
) -> None:
    """Fetch one page of a list (``purpose`` signs its tokens) and print it, then the tokens of
    the pages before and after it (on stderr)."""
    from fundline.kit.security import Signer

    settings = settings_or_exit()
    paginator = Paginator(Signer(settings.signing_key), purpose)
    page = run(settings, lambda session: fetch(session, paginator))
    if as_json:
        emit_json(page)
        return
    Console().print(table(page))
    for label, token in (
        ("next", page.next_pagination_token),
        ("prev", page.prev_pagination_token),
    ):
        if token:
            typer.echo(f"{label} page: --page-token {token}", err=True)


@app.command("list")
def list_invoices(
    status: Annotated[
        list[WCInvoiceStatus] | None,
        typer.Option(help="Only these statuses (repeat the option for several)."),
    ] = None,
    entity_id: EntityFilter = None,
    partner_id: Annotated[uuid.UUID | None, typer.Option(help="Only this partner's.")] = None,
    invoice_type: Annotated[
        FinancingInvoiceType | None, typer.Option("--type", help="receivable or payable.")
    ] = None,
    limit: Limit = 100,
    page_token: PageToken = None,
    as_json: JsonOption = False,
) -> None:
    """List financing invoices of every entity, oldest first."""
    from fundline.backoffice import service

    params = FinancingInvoiceListParams(
        status__in=status or None,
        entity_id=entity_id,
        partner_id=partner_id,
        type=invoice_type,
        limit=limit,
        pagination_token=page_token,
    )
    print_page(
        "lender_financing_invoices",
        lambda s, paginator: service.list_financing_invoices(s, paginator, params),
        lambda page: _invoice_table(page.data, "Financing invoices"),
        as_json,
    )


def _act(
    financing_invoice_id: uuid.UUID,
    action: Callable[[AsyncSession, Settings], Awaitable[Any]],
    as_json: bool,
) -> None:
    """Run an action on one invoice, then print the invoice as it now is."""
    from fundline.backoffice import service

    settings = settings_or_exit()

    async def work(session: AsyncSession) -> FinancingInvoiceDetail:
        await action(session, settings)
        fi = await service.get_financing_invoice(session, financing_invoice_id)
        return await service.describe_detail(session, fi)

    print_detail(run(settings, work), as_json)


async def _nothing(session: AsyncSession, settings: Settings) -> None:
    return None


@app.command("show")
def show(financing_invoice_id: InvoiceId, as_json: JsonOption = False) -> None:
    """Show a financing invoice with its instalments and status history."""
    _act(financing_invoice_id, _nothing, as_json)


@app.command("approve")
def approve(financing_invoice_id: InvoiceId, as_json: JsonOption = False) -> None:
    """Approve a NEW invoice: funded at once if the policy auto-funds, else marked approved."""
    from fundline.backoffice import service
    from fundline.lending.policy import load_policy

    async def action(session: AsyncSession, settings: Settings) -> Any:
        policy = load_policy(settings)
        return await service.approve(
            session, financing_invoice_id, policy=policy, operator=OPERATOR
        )

    _act(financing_invoice_id, action, as_json)


@app.command("reject")
def reject(financing_invoice_id: InvoiceId, as_json: JsonOption = False) -> None:
    """Reject a NEW invoice; its reservation on the offer is released."""
    from fundline.backoffice import service

    async def action(session: AsyncSession, settings: Settings) -> Any:
        return await service.reject(session, financing_invoice_id, operator=OPERATOR)

    _act(financing_invoice_id, action, as_json)


@app.command("fund")
def fund(financing_invoice_id: InvoiceId, as_json: JsonOption = False) -> None:
    """Disburse a NEW invoice (FUNDED): schedule fixed, ledger entries posted."""
    from fundline.backoffice import service

    async def action(session: AsyncSession, settings: Settings) -> Any:
        return await service.fund(session, financing_invoice_id, operator=OPERATOR)

    _act(financing_invoice_id, action, as_json)


@app.command("repay")
def repay(
    financing_invoice_id: InvoiceId,
    amount: Annotated[
        int, typer.Option(min=1, help="Minor units received (cents for USD).", show_default=False)
    ],
    as_json: JsonOption = False,
) -> None:
    """Record a repayment of a FUNDED or LATE invoice; repaid in full it becomes PAID."""
    from fundline.backoffice import service

    async def action(session: AsyncSession, settings: Settings) -> Any:
        return await service.record_repayment(
            session, financing_invoice_id, amount, operator=OPERATOR
        )

    _act(financing_invoice_id, action, as_json)


@app.command("write-off")
def write_off(financing_invoice_id: InvoiceId, as_json: JsonOption = False) -> None:
    """Write off what a LATE or DEFAULTED invoice still owes, as a credit loss."""
    from fundline.backoffice import service

    async def action(session: AsyncSession, settings: Settings) -> Any:
        return await service.write_off(session, financing_invoice_id, operator=OPERATOR)

    _act(financing_invoice_id, action, as_json)


def _offer_table(offers: list[FinancingOfferView], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "entity", "status", "limit", "available", "expires"):
        table.add_column(column, overflow="fold")
    for offer in offers:
        table.add_row(
            str(offer.id),
            str(offer.entity_id),
            offer.status,
            money(offer.total_amount, offer.currency),
            money(offer.available_amount, offer.currency),
            _text(offer.expires_at),
        )
    return table


@app.command("offers")
def list_offers(
    status: Annotated[
        list[WCOfferStatus] | None,
        typer.Option(help="Only these statuses (repeat the option for several)."),
    ] = None,
    entity_id: EntityFilter = None,
    limit: Limit = 100,
    page_token: PageToken = None,
    as_json: JsonOption = False,
) -> None:
    """List the credit offers of every entity, oldest first."""
    from fundline.backoffice import service

    params = FinancingOfferListParams(
        status__in=status or None, entity_id=entity_id, limit=limit, pagination_token=page_token
    )
    print_page(
        "lender_financing_offers",
        lambda s, paginator: service.list_offers(s, paginator, params),
        lambda page: _offer_table(page.data, "Financing offers"),
        as_json,
    )


def _act_on_offer(
    offer_id: uuid.UUID,
    action: Callable[[AsyncSession], Awaitable[Any]],
    as_json: bool,
) -> None:
    """Run an action on one offer, then print the offer as it now is."""
    from fundline.backoffice import service

    async def work(session: AsyncSession) -> FinancingOfferView:
        await action(session)
        return FinancingOfferView.model_validate(await service.get_offer(session, offer_id))

    offer = run(settings_or_exit(), work)
    if as_json:
        emit_json(offer)
    else:
        Console().print(_offer_table([offer], f"Financing offer {offer.id}"))


@app.command("issue-offer")
def issue_offer(offer_id: OfferId, as_json: JsonOption = False) -> None:
    """Issue an ACCEPTED offer (CURRENT): its business can then request financing."""
    from fundline.backoffice import service

    _act_on_offer(
        offer_id,
        lambda session: service.issue_offer(session, offer_id, operator=OPERATOR),
        as_json,
    )


@app.command("close-offer")
def close_offer(offer_id: OfferId, as_json: JsonOption = False) -> None:
    """Withdraw an offer (CLOSED) once none of its invoices is NEW, FUNDED or LATE."""
    from fundline.backoffice import service

    _act_on_offer(
        offer_id,
        lambda session: service.close_offer(session, offer_id, operator=OPERATOR),
        as_json,
    )


@app.command("ledger")
def ledger(
    financing_invoice_id: Annotated[
        uuid.UUID | None, typer.Option(help="Only this financing invoice's entries.")
    ] = None,
    entity_id: EntityFilter = None,
    limit: Limit = 100,
    page_token: PageToken = None,
    as_json: JsonOption = False,
) -> None:
    """Journal entries with their postings, oldest first."""
    from fundline.backoffice import service

    params = LedgerListParams(
        financing_invoice_id=financing_invoice_id,
        entity_id=entity_id,
        limit=limit,
        pagination_token=page_token,
    )
    print_page(
        "lender_ledger",
        lambda s, paginator: service.list_ledger(s, paginator, params),
        _ledger_table,
        as_json,
    )


def _ledger_table(page: LedgerListResponse) -> Table:
    table = Table(title="Ledger")
    for column in ("at", "kind", "financing invoice", "memo", "account", "amount"):
        table.add_column(column, overflow="fold")
    for entry in page.data:
        for n, posting in enumerate(entry.postings):
            head = (
                (_text(entry.created_at), entry.kind, _text(entry.financing_invoice_id), entry.memo)
                if n == 0
                else ("", "", "", "")
            )
            table.add_row(*head, posting.account, money(posting.amount, posting.currency))
    return table


@app.command("reconcile")
def reconcile(as_json: JsonOption = False) -> None:
    """Compare the ledger with the financing invoices; exits 1 when anything disagrees."""
    from fundline.backoffice import service

    settings = settings_or_exit()
    report = run(settings, service.reconciliation)
    if as_json:
        emit_json(report)
    else:
        console = Console()
        totals = Table(title="Account totals")
        for column in ("currency", "account", "balance"):
            totals.add_column(column)
        for total in report.totals:
            totals.add_row(total.currency, total.account, money(total.amount, total.currency))
        console.print(totals)
        for difference in report.differences:
            console.print(f"difference: {json.dumps(difference, default=str)}")
        for currency in report.unbalanced_currencies:
            console.print(f"unbalanced: postings in {currency} do not sum to zero")
        console.print("clean" if report.clean else "NOT clean")
    if not report.clean:
        raise typer.Exit(1)
