"""The confirmation form when the world moves under it: invoices that change while the form is
on screen, a limit that several invoices overrun together, a refusal after a first write."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fundline.kit.errors import Conflict
from fundline.lending import servicing
from fundline.models import FinancingInvoice
from tests.support.connect_pages import Html, financing_invoice, invoices_session, view
from tests.support.factories import Tenant, create_issued_invoice, onboard


def row(invoice: dict[str, Any], amount: str, *, include: bool = True) -> dict[str, str]:
    """What the browser posts for one shown invoice (a checked box, when there are several)."""
    fields = {f"invoices.{invoice['id']}.amount": amount}
    if include:
        fields[f"invoices.{invoice['id']}.include"] = "1"
    return fields


async def three(client: httpx.AsyncClient, tenant: Tenant) -> tuple[Any, ...]:
    await onboard(client, tenant)
    invoices = [await create_issued_invoice(client, tenant, amount=200_000) for _ in range(3)]
    return (*invoices, await invoices_session(client, tenant, *invoices))


async def test_a_form_shown_before_an_invoice_left_confirms_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    a, b, c, headers = await three(client, tenant)
    await view(client, "invoices", headers)  # the form is on screen with A, B and C
    paid = await client.post(f"/v1/receivables/{a['id']}/mark_as_paid", headers=tenant.headers)
    assert paid.status_code == 200, paid.text

    # The user finances B only: the form still names A (its row was shown), so it is refused
    # as a whole rather than read by position (which would have financed C).
    posted = {
        **row(a, "2,000.00", include=False),
        **row(b, "1,500.00"),
        **row(c, "2,000.00", include=False),
    }
    body = await view(client, "invoices/confirm", headers, posted)
    assert body["events"] == []
    page = Html(body["html"])
    assert "Your invoices changed while this page was open: check them again." in page.text
    assert f"Invoice {a['document_id']}" not in page.text  # the fresh form has B and C only
    for invoice in (b, c):
        assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"

    # From the fresh form, B is what gets financed.
    posted = {**row(b, "1,500.00"), **row(c, "2,000.00", include=False)}
    body = await view(client, "invoices/confirm", headers, posted)
    [event] = [e for e in body["events"] if e["eventType"] == "USER_CONFIRMED_INVOICE"]
    assert event["data"]["invoice"]["platformInvoiceId"] == b["id"]
    assert event["data"]["invoice"]["amountRequestedForFinancingCents"] == 150_000
    assert (await financing_invoice(client, tenant, c["id"]))["status"] == "DRAFT"


async def test_invoices_that_overrun_the_limit_together_are_refused_before_any_write(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)  # a 50,000.00 limit under the sandbox policy
    one = await create_issued_invoice(client, tenant, amount=3_000_000)
    two = await create_issued_invoice(client, tenant, amount=3_000_000)
    headers = await invoices_session(client, tenant, one, two)
    body = await view(
        client, "invoices/confirm", headers, {**row(one, "30,000.00"), **row(two, "30,000.00")}
    )
    assert "This is more than your available credit of $50,000.00." in Html(body["html"]).text
    assert body["events"] == []
    for invoice in (one, two):
        assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"


async def test_a_refusal_after_a_first_write_answers_the_form_again(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lending rules refuse the second invoice after the first was written: the savepoint
    goes, and the form comes back from fresh rows (not a 500 on what the rollback expired)."""
    await onboard(client, tenant)
    one = await create_issued_invoice(client, tenant, amount=100_000)
    two = await create_issued_invoice(client, tenant, amount=100_000)
    headers = await invoices_session(client, tenant, one, two)
    real = servicing.confirm_invoices
    calls = 0

    async def second_refused(session: Any, chosen: Any, **kwargs: Any) -> list[FinancingInvoice]:
        # The invoices are confirmed together: the first is written, then the second refused.
        nonlocal calls
        calls += 1
        await real(session, chosen[:1], **kwargs)
        raise Conflict("The lender refused this one")

    monkeypatch.setattr(servicing, "confirm_invoices", second_refused)
    body = await view(
        client, "invoices/confirm", headers, {**row(one, "500.00"), **row(two, "500.00")}
    )
    assert calls == 1
    page = Html(body["html"])
    assert "The lender refused this one" in page.text
    assert "Confirm financing" in page.texts["button"]
    assert body["events"] == []
    for invoice in (one, two):
        assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"


async def test_a_blank_amount_is_asked_for_not_taken_as_the_maximum(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    headers = await invoices_session(client, tenant, invoice)
    body = await view(client, "invoices/confirm", headers, row(invoice, "  ", include=False))
    assert "Enter an amount such as $1,234.56." in Html(body["html"]).text
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"
    # The currency's own code and symbol are understood.
    for typed in ("$700.00", "700.00 USD", "700"):
        quote = await view(client, "invoices/quote", headers, row(invoice, typed, include=False))
        assert "repay $700.00" in Html(quote["html"]).text
