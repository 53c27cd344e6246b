"""The official Monite Python SDK (PyPI ``monite``), unmodified, against a live Fundline server:
token → entity → counterpart → invoice → issue → paid.

The server is ``fundline serve`` in a subprocess on a free port with its own SQLite database;
the partner comes from ``fundline partner create``. Nothing here goes through the test app.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from monite import (
    CounterpartAddress,
    CounterpartCreatePayload_Organization,
    CounterpartOrganizationCreatePayload,
    EntityAddressSchema,
    FinancingPushInvoicesRequestInvoice,
    InlinePaymentTermsRequestPayload,
    InlineTermFinal,
    LineItem,
    LineItemProductCreate,
    Monite,
    OrganizationSchema,
    Price,
    ReceivableFacadeCreateInvoicePayload,
    ReceivableResponse_Invoice,
    UnitRequest,
)
from monite.core.api_error import ApiError

from tests.support.live import FUNDLINE, serving

VERSION = "2024-05-25"


class LiveServer:
    def __init__(self, url: str, client_id: str, client_secret: str) -> None:
        self.url = url
        self.client_id = client_id
        self.client_secret = client_secret


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database = tmp_path_factory.mktemp("sdk") / "fundline.db"
    env = {
        **os.environ,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }
    created = subprocess.run(
        [FUNDLINE, "partner", "create", "--name", "SDK Partner"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    partner = json.loads(created.stdout)
    with serving(env, log=database.parent / "server.log") as url:
        yield LiveServer(url, partner["client_id"], partner["client_secret"])


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """The SDK's HTTP client, closed after the test (the SDK never closes the one it makes)."""
    with httpx.Client(timeout=30) as client:
        yield client


def test_sdk_counterpart_receivable_issue_pay(live_server: LiveServer, http: httpx.Client) -> None:
    base_url = f"{live_server.url}/v1"
    anonymous = Monite(base_url=base_url, monite_version=VERSION, httpx_client=http)
    token = anonymous.access_tokens.create(
        client_id=live_server.client_id,
        client_secret=live_server.client_secret,
        grant_type="client_credentials",
    )
    assert token.token_type == "Bearer"
    partner = Monite(
        base_url=base_url, monite_version=VERSION, token=token.access_token, httpx_client=http
    )

    entity = partner.entities.create(
        type="organization",
        email="owner@sdk-shop.example",
        address=EntityAddressSchema(
            line1="1 Congress Ave", city="Austin", postal_code="78701", state="TX", country="US"
        ),
        organization=OrganizationSchema(legal_name="SDK Shop LLC"),
        tax_id="12-3456789",
    )
    sdk = Monite(
        base_url=base_url,
        monite_version=VERSION,
        token=token.access_token,
        monite_entity_id=entity.id,
        httpx_client=http,
    )

    counterpart = sdk.counterparts.create(
        request=CounterpartCreatePayload_Organization(
            organization=CounterpartOrganizationCreatePayload(
                legal_name="Big Customer Inc",
                is_customer=True,
                is_vendor=False,
                email="ap@big-customer.example",
                address=CounterpartAddress(
                    line1="5 Market St", city="San Francisco", postal_code="94105", country="US"
                ),
            )
        )
    )
    assert counterpart.default_billing_address_id is not None

    created = sdk.receivables.create(
        request=ReceivableFacadeCreateInvoicePayload(
            counterpart_id=counterpart.id,
            counterpart_billing_address_id=counterpart.default_billing_address_id,
            currency="USD",
            line_items=[
                LineItem(
                    quantity=3,
                    product=LineItemProductCreate(
                        name="Design work",
                        price=Price(currency="USD", value=25_000),
                        measure_unit=UnitRequest(name="hour"),
                    ),
                    tax_rate_value=825,
                ),
                LineItem(
                    quantity=1.5,
                    product=LineItemProductCreate(
                        name="Support", price=Price(currency="USD", value=10_000)
                    ),
                    tax_rate_value=0,
                ),
            ],
            payment_terms=InlinePaymentTermsRequestPayload(
                term_final=InlineTermFinal(number_of_days=30),
                name="Net 30",  # Fundline's extension; the SDK model passes extras through
            ),
            memo="Thanks for your business",
        )
    )
    assert isinstance(created, ReceivableResponse_Invoice)
    assert created.status == "draft"
    # 3 * 250.00 + 8.25 % tax (61.875 → 61.88) and 1.5 * 100.00 untaxed.
    assert created.subtotal == 90_000
    assert created.total_vat_amount == 6188
    assert created.total_amount == 96_188
    assert created.counterpart_name == "Big Customer Inc"
    assert created.entity_address.city == "Austin"

    issued = sdk.receivables.issue_by_id(created.id)
    assert isinstance(issued, ReceivableResponse_Invoice)
    assert issued.status == "issued"
    assert issued.document_id == "INV-00001"
    assert issued.issue_date is not None
    assert issued.due_date == (issued.issue_date.date() + timedelta(days=30)).isoformat()
    assert date.fromisoformat(issued.due_date) > issued.issue_date.date()
    assert issued.payment_terms is not None
    assert issued.payment_terms.name == "Net 30"

    paid = sdk.receivables.mark_as_paid_by_id(created.id, comment="Wire received")
    assert isinstance(paid, ReceivableResponse_Invoice)
    assert paid.status == "paid"
    assert (paid.amount_paid, paid.amount_due) == (96_188, 0)
    assert paid.paid_at is not None

    again = sdk.receivables.get_by_id(created.id)
    assert isinstance(again, ReceivableResponse_Invoice)
    assert again.status == "paid"
    listed = sdk.receivables.get(status="paid", counterpart_name_icontains="big customer")
    assert [r.id for r in listed.data] == [created.id]

    # Fundline's errors come back as the SDK's typed errors.
    with pytest.raises(ApiError) as conflict:
        sdk.receivables.cancel_by_id(created.id)
    assert conflict.value.status_code == 409
    assert conflict.value.body == {
        "error": {
            "message": "The receivable cannot be canceled: its status is paid "
            "(it must be issued or overdue)"
        }
    }


def _connect(http: httpx.Client, url: str, token: str) -> dict[str, str]:
    """Exchange a Connect token as the business's browser would; returns its bearer header."""
    opened = http.post(f"{url}/connect/v1/sessions", json={"token": token})
    assert opened.status_code == 201, opened.text
    return {"authorization": f"Bearer {opened.json()['access_token']}"}


def test_sdk_financing_flow(live_server: LiveServer, http: httpx.Client) -> None:
    """The four financing operations through the SDK, the business's side through Connect:
    token → onboarding → offer → request → confirm → funded → invoice paid → financing paid."""
    base_url = f"{live_server.url}/v1"
    token = (
        Monite(base_url=base_url, monite_version=VERSION, httpx_client=http)
        .access_tokens.create(
            client_id=live_server.client_id,
            client_secret=live_server.client_secret,
            grant_type="client_credentials",
        )
        .access_token
    )
    partner = Monite(base_url=base_url, monite_version=VERSION, token=token, httpx_client=http)
    entity = partner.entities.create(
        type="organization",
        email="owner@financed.example",
        address=EntityAddressSchema(
            line1="1 Congress Ave", city="Austin", postal_code="78701", state="TX", country="US"
        ),
        organization=OrganizationSchema(legal_name="Financed Goods LLC"),
        tax_id="12-3456789",
    )
    sdk = Monite(
        base_url=base_url,
        monite_version=VERSION,
        token=token,
        monite_entity_id=entity.id,
        httpx_client=http,
    )

    before = sdk.financing.get_financing_offers()
    assert (before.business_status, before.offers) == ("NEW", [])

    onboarding = _connect(
        http, live_server.url, sdk.financing.post_financing_tokens().connect_token
    )
    business = http.put(
        f"{live_server.url}/connect/v1/business",
        headers=onboarding,
        json={
            "legal_name": "Financed Goods LLC",
            "ein": "12-3456789",
            "address": {
                "line1": "1 Congress Ave",
                "city": "Austin",
                "state": "TX",
                "postal_code": "78701",
                "country": "US",
            },
            "owner": {"first_name": "Ada", "last_name": "Ng", "email": "ada@financed.example"},
            "bank_account": {"routing_number": "021000021", "account_number": "000123456789"},
        },
    )
    assert business.json()["business_status"] == "ONBOARDED", business.text
    offer_id = http.get(f"{live_server.url}/connect/v1/offers", headers=onboarding).json()[
        "offers"
    ][0]["id"]
    accepted = http.post(
        f"{live_server.url}/connect/v1/offers/{offer_id}/accept", headers=onboarding
    )
    assert accepted.status_code == 200, accepted.text

    offers = sdk.financing.get_financing_offers()
    assert offers.business_status == "ONBOARDED"
    assert offers.offers[0].status == "CURRENT"
    assert offers.offers[0].total_amount == offers.offers[0].available_amount == 5_000_000

    counterpart = sdk.counterparts.create(
        request=CounterpartCreatePayload_Organization(
            organization=CounterpartOrganizationCreatePayload(
                legal_name="Slow Payer Corp",
                is_customer=True,
                is_vendor=False,
                address=CounterpartAddress(
                    line1="5 Market St", city="San Francisco", postal_code="94105", country="US"
                ),
            )
        )
    )
    draft = sdk.receivables.create(
        request=ReceivableFacadeCreateInvoicePayload(
            counterpart_id=counterpart.id,
            counterpart_billing_address_id=counterpart.default_billing_address_id,
            currency="USD",
            line_items=[
                LineItem(
                    quantity=1,
                    product=LineItemProductCreate(
                        name="Pallets",
                        price=Price(currency="USD", value=100_000),
                        measure_unit=UnitRequest(name="lot"),
                    ),
                    tax_rate_value=0,
                )
            ],
            payment_terms=InlinePaymentTermsRequestPayload(
                term_final=InlineTermFinal(number_of_days=45)
            ),
        )
    )
    invoice = sdk.receivables.issue_by_id(draft.id)

    pushed = sdk.financing.post_financing_invoices(
        invoices=[FinancingPushInvoicesRequestInvoice(id=invoice.id, type="receivable")]
    )
    assert pushed.connect_token
    assert pushed.session_token
    listed = sdk.financing.get_financing_invoices(invoice_id=invoice.id)
    assert [(f.status, f.document_id) for f in listed.data] == [("DRAFT", "INV-00001")]

    confirming = _connect(http, live_server.url, pushed.session_token)
    quotes = http.get(f"{live_server.url}/connect/v1/invoices", headers=confirming).json()
    plan = next(
        q for q in quotes["invoices"][0]["quotes"] if q["fee_amount"] == 3_000
    )  # the 3 % plan: Monite's own example, 100000 = 97000 + 3000
    confirmed = http.post(
        f"{live_server.url}/connect/v1/invoices/confirm",
        headers=confirming,
        json={"invoices": [{"invoice_id": invoice.id, "pricing_plan_id": plan["pricing_plan_id"]}]},
    )
    assert confirmed.status_code == 200, confirmed.text

    funded = sdk.financing.get_financing_invoices(status="FUNDED").data
    assert len(funded) == 1
    financed = funded[0]
    assert (financed.requested_amount, financed.fee_amount, financed.principal_amount) == (
        100_000,
        3_000,
        97_000,
    )
    assert financed.advance_amount == 97_000
    assert financed.repayment_amount == 100_000
    assert financed.payer_type == "BUSINESS"
    assert financed.payer_business_name == "Slow Payer Corp"
    assert financed.repayment_schedule is not None
    assert financed.repayment_schedule.repayment_amount == 100_000
    assert sdk.financing.get_financing_offers().offers[0].available_amount == 4_900_000

    sdk.receivables.mark_as_paid_by_id(invoice.id)
    paid = sdk.financing.get_financing_invoices(invoice_id=invoice.id).data
    assert [f.status for f in paid] == ["PAID"]
    assert sdk.financing.get_financing_offers().offers[0].available_amount == 5_000_000

    with pytest.raises(ApiError) as refused:
        sdk.financing.post_financing_invoices(
            invoices=[FinancingPushInvoicesRequestInvoice(id=invoice.id, type="receivable")]
        )
    assert refused.value.status_code == 409
