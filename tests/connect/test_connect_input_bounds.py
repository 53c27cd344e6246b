"""Inputs at the edges of the Connect API and its pages: what looks like a number or an EIN but
is not, an amount too large to be money, a plan that was never offered, a malformed body."""

from __future__ import annotations

import httpx
import pytest

from fundline.kit import money
from tests.support.connect_pages import (
    connect_token,
    financing_invoice,
    invoices_session,
    onboarding_session,
    view,
)
from tests.support.factories import Tenant, create_issued_invoice, onboard

LOCAL = "http://localhost:5173"


@pytest.mark.parametrize("text", ["1e10000000", "1e31", "-1e-40", "9" * 31])
def test_an_amount_beyond_any_money_is_refused_before_arithmetic(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        money.from_major(text, "USD")


def test_the_largest_amounts_still_convert() -> None:
    assert money.from_major("9" * 20, "USD") == int("9" * 20) * 100
    assert money.from_major("0.01", "USD") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ein": "12-3456789\n"}, "ein"),  # a trailing newline once passed `$`
        ({"ein": "١٢-٣٤٥٦٧٨٩"}, "ein"),  # Arabic-Indic digits
        ({"bank_account": {"routing_number": "٠٢١٠٠٠٠٢١"}}, "routing_number"),
        ({"bank_account": {"account_number": "١٢٣٤٥"}}, "account_number"),
    ],
)
async def test_digits_mean_ascii_digits(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object], field: str
) -> None:
    headers = await onboarding_session(client, tenant)
    response = await client.put("/connect/v1/business", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field
    saved = (await client.get("/connect/v1/business", headers=headers)).json()
    assert saved["ein"] is None
    assert saved["bank_account"]["routing_number"] is None


async def test_a_huge_amount_in_the_quote_is_a_message(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    headers = await invoices_session(client, tenant, invoice)
    for path in ("invoices/quote", "invoices/confirm"):
        body = await view(client, path, headers, {f"invoices.{invoice['id']}.amount": "1e10000000"})
        assert "Enter an amount such as $1,234.56." in body["html"]
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"


async def test_a_plan_never_offered_is_refused_not_replaced(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await onboard(client, tenant)
    invoice = await create_issued_invoice(client, tenant)
    headers = await invoices_session(client, tenant, invoice)
    fields = {
        f"invoices.{invoice['id']}.pricing_plan_id": "not-a-plan",
        f"invoices.{invoice['id']}.amount": "500.00",
    }
    body = await view(client, "invoices/confirm", headers, fields)
    assert "Choose one of the plans offered." in body["html"]
    assert body["events"] == []
    assert (await financing_invoice(client, tenant, invoice["id"]))["status"] == "DRAFT"


@pytest.mark.parametrize("payload", [b"{}", b"not json", b'{"token": 5}', b""])
async def test_a_malformed_embed_check_is_422_and_still_readable(
    client: httpx.AsyncClient, tenant: Tenant, payload: bytes
) -> None:
    await connect_token(client, tenant)
    response = await client.post(
        "/connect/v1/embeds",
        content=payload,
        headers={"origin": LOCAL, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["access-control-allow-origin"] == LOCAL
    assert response.json()["detail"][0]["loc"] == ["body", "token"]
