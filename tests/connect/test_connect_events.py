"""The widget's pure pieces: where a business stands as Kanmon's ``userState``, the
``USER_CONFIRMED_INVOICE`` payload built from a rendered financing invoice, and how the pages
write money, rates and dates."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from fundline.connect import events
from fundline.connect.service import REQUIRED_FIELDS
from fundline.financing.schemas import FinancingInvoice as FinancingInvoiceOut
from fundline.financing.schemas import InstalmentOut, RepaymentSchedule
from fundline.kit import money, pages
from fundline.models import FinancingBusiness, FinancingInvoice, FinancingOffer
from tests.support.factories import BUSINESS_PAYLOAD, US_ADDRESS


def business(status: str = "INPUT_REQUIRED", **fields: Any) -> FinancingBusiness:
    """A business that is never saved: only the attributes the state rules read."""
    return FinancingBusiness(status=status, **fields)


def complete(status: str = "ONBOARDED", **fields: Any) -> FinancingBusiness:
    bank = BUSINESS_PAYLOAD["bank_account"]
    return business(
        status,
        legal_name=BUSINESS_PAYLOAD["legal_name"],
        ein=BUSINESS_PAYLOAD["ein"],
        address=dict(US_ADDRESS),
        owner=dict(BUSINESS_PAYLOAD["owner"]),
        bank_routing_number=bank["routing_number"],
        bank_account_number=bank["account_number"],
        **fields,
    )


def offer(status: str) -> FinancingOffer:
    return FinancingOffer(status=status, currency="USD", total_amount=5_000_000)


def state_of(b: FinancingBusiness, o: FinancingOffer | None) -> tuple[str, str, bool]:
    found = events.user_state(b, o)
    return found.user_state, found.section, found.action_required


# --- user_state -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["NEW", "INPUT_REQUIRED"])
def test_a_business_with_nothing_given_starts_the_flow(status: str) -> None:
    assert state_of(business(status), None) == ("START_FLOW", "ONBOARDING", True)


def test_a_business_with_some_fields_is_asked_for_the_rest() -> None:
    assert state_of(business(legal_name="Acme"), None) == (
        "USER_INPUT_REQUIRED",
        "ONBOARDING",
        True,
    )
    # Everything given but not yet ONBOARDED (the status decides, not the fields).
    assert state_of(complete("INPUT_REQUIRED"), None)[:2] == ("USER_INPUT_REQUIRED", "ONBOARDING")
    # One field short of complete is still input required, whichever it is.
    for name in REQUIRED_FIELDS:
        b = complete("INPUT_REQUIRED")
        head, _, tail = name.partition(".")
        if head in ("address", "owner"):
            setattr(b, head, {k: v for k, v in getattr(b, head).items() if k != tail})
        elif name == "bank_account.routing_number":
            b.bank_routing_number = None
        elif name == "bank_account.account_number":
            b.bank_account_number = None
        else:
            setattr(b, name, None)
        assert state_of(b, None)[0] == "USER_INPUT_REQUIRED", name


def test_an_onboarded_business_without_an_offer() -> None:
    assert state_of(complete(), None) == ("WAITING_FOR_OFFERS", "OFFER", False)
    declined = complete(decision_note="US businesses only")
    assert state_of(declined, None) == ("NO_OFFERS_EXTENDED", "OFFER", False)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("NEW", ("USER_INPUT_REQUIRED", "OFFER", True)),
        ("ACCEPTED", ("OFFER_ACCEPTED", "OFFER", False)),
        ("CURRENT", ("SERVICING", "SERVICING", False)),
        ("LATE", ("SERVICING", "SERVICING", True)),
        ("DEFAULTED", ("SERVICING", "SERVICING", True)),
        ("EXPIRED", ("OFFERS_EXPIRED", "OFFER", False)),
        ("CLOSED", ("OFFERS_EXPIRED", "OFFER", False)),
    ],
)
def test_the_offer_status_decides_once_onboarded(
    status: str, expected: tuple[str, str, bool]
) -> None:
    assert state_of(complete(), offer(status)) == expected


@pytest.mark.parametrize("status", ["EXPIRED", "CLOSED"])
def test_an_ended_offer_with_a_decline_says_no_offer(status: str) -> None:
    declined = complete(decision_note="Too little invoicing history")
    assert state_of(declined, offer(status)) == ("NO_OFFERS_EXTENDED", "OFFER", False)


def test_the_offer_is_ignored_until_onboarded() -> None:
    assert state_of(business(), offer("CURRENT"))[:2] == ("START_FLOW", "ONBOARDING")


def test_the_state_event_has_kanmons_shape() -> None:
    assert events.user_state(complete(), offer("LATE")).event() == {
        "eventType": "USER_STATE_CHANGED",
        "data": {
            "userState": "SERVICING",
            "section": "SERVICING",
            "actionRequired": True,
            "actionMessage": "A repayment is past due",
        },
    }


# --- USER_CONFIRMED_INVOICE -------------------------------------------------------------------


def rendered(**overrides: Any) -> FinancingInvoiceOut:
    """A FUNDED invoice of 1,000.00 financed at 900.00 in three instalments (90 %, 2.5 %)."""
    instalments = [
        InstalmentOut(
            sequence=n,
            due_date=date(2027, 1, 1) + timedelta(days=30 * n),
            amount=amount,
            fee_amount=fee,
            principal_amount=amount - fee,
            paid_amount=0,
        )
        for n, (amount, fee) in enumerate([(30_000, 750), (30_000, 750), (30_000, 750)], 1)
    ]
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "type": "receivable",
        "status": "FUNDED",
        "invoice_id": uuid.uuid4(),
        "document_id": "INV-00042",
        "issue_date": date(2026, 12, 1),
        "due_date": date(2026, 12, 31),
        "total_amount": 100_000,
        "currency": "USD",
        "payer_type": "BUSINESS",
        "payer_business_name": "Globex Corp",
        "requested_amount": 90_000,
        "advance_amount": 87_750,
        "advance_rate_percentage": 9_000,
        "fee_amount": 2_250,
        "fee_percentage": 250,
        "principal_amount": 87_750,
        "repayment_amount": 90_000,
        "repayment_schedule": RepaymentSchedule(
            repayment_date=instalments[0].due_date,
            repayment_amount=30_000,
            repayment_fee_amount=750,
            repayment_principal_amount=29_250,
        ),
        "instalments": instalments,
    }
    values.update(overrides)
    return FinancingInvoiceOut.model_validate(values)


def row(**overrides: Any) -> FinancingInvoice:
    values: dict[str, Any] = {
        "offer_id": uuid.uuid4(),
        "created_at": datetime(2026, 12, 1, 9, 30),  # naive, as SQLite hands it back
        "updated_at": datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return FinancingInvoice(**values)


def test_confirmed_invoice_carries_every_figure_under_kanmons_names() -> None:
    out, fi = rendered(), row()
    event = events.confirmed_invoice(out, fi, payor_email="ap@globex.example")
    assert event["eventType"] == "USER_CONFIRMED_INVOICE"
    assert set(event) == {"eventType", "data"}
    invoice = event["data"]["invoice"]
    assert invoice == {
        "id": str(out.id),
        "state": "INVOICE_FUNDED",
        "platformInvoiceId": str(out.invoice_id),
        "platformInvoiceNumber": "INV-00042",
        "invoiceAmountCents": 100_000,
        "invoiceIssuedDate": "2026-12-01",
        "invoiceDueDate": "2026-12-31",
        "payorType": "BUSINESS",
        "payorBusinessName": "Globex Corp",
        "payorFirstName": None,
        "payorLastName": None,
        "payorEmail": "ap@globex.example",
        "amountRequestedForFinancingCents": 90_000,
        "principalAmountCents": 87_750,
        "repaymentAmountCents": 90_000,
        "invoiceAdvanceAmountCents": 87_750,
        "feeAmountCents": 2_250,
        "advanceRatePercentage": 90,
        "transactionFeePercentage": 2.5,
        "repaymentSchedule": {
            "schedule": [
                {
                    "repaymentDate": d,
                    "repaymentAmountCents": 30_000,
                    "repaymentFeeAmountCents": 750,
                    "repaymentPrincipalAmountCents": 29_250,
                }
                for d in ("2027-01-31", "2027-03-02", "2027-04-01")
            ]
        },
        "issuedProductId": str(fi.offer_id),
        "currency": "USD",
        "createdAt": "2026-12-01T09:30:00Z",
        "updatedAt": "2026-12-01T10:00:00Z",
    }
    # Whole percentages are integers, as Kanmon sends them.
    assert type(invoice["advanceRatePercentage"]) is int


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("DRAFT", "INVOICE_CREATED"),
        ("NEW", "IN_REVIEW"),
        ("FUNDED", "INVOICE_FUNDED"),
        ("PAID", "INVOICE_PAID_IN_FULL"),
        ("LATE", "LATE"),
        ("DEFAULTED", "DEFAULTED"),
        ("REJECTED", "REJECTED"),
    ],
)
def test_confirmed_invoice_states(status: str, state: str) -> None:
    event = events.confirmed_invoice(rendered(status=status), row(), payor_email=None)
    assert event["data"]["invoice"]["state"] == state


def test_confirmed_invoice_percentages_and_timestamps() -> None:
    out = rendered(advance_rate_percentage=10_000, fee_percentage=None, instalments=[])
    # Another zone is written in UTC.
    at = datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    invoice = events.confirmed_invoice(out, row(created_at=at), payor_email=None)["data"]["invoice"]
    assert invoice["advanceRatePercentage"] == 100
    assert invoice["transactionFeePercentage"] is None
    assert invoice["repaymentSchedule"] == {"schedule": []}
    assert invoice["createdAt"] == "2026-12-01T10:00:00Z"
    assert invoice["payorEmail"] is None
    out = rendered(advance_rate_percentage=8_550, fee_percentage=1)
    invoice = events.confirmed_invoice(out, row(), payor_email=None)["data"]["invoice"]
    assert (invoice["advanceRatePercentage"], invoice["transactionFeePercentage"]) == (85.5, 0.01)


# --- money, rates and dates as the pages write them -------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (970_000, "USD", "$9,700.00"),
        (98_000, "USD", "$980.00"),
        (1, "USD", "$0.01"),
        (0, "USD", "$0.00"),
        (-12_345, "USD", "-$123.45"),
        (123_456_789_012, "USD", "$1,234,567,890.12"),
        (5_000_000, "EUR", "€50,000.00"),
        (250, "GBP", "£2.50"),
        (1_234, "JPY", "1,234 JPY"),
        (1_234_567, "KWD", "1,234.567 KWD"),
        (-5, "CAD", "-0.05 CAD"),
    ],
)
def test_display(amount: int, currency: str, text: str) -> None:
    assert money.display(amount, currency) == text


def test_display_refuses_an_unknown_currency() -> None:
    with pytest.raises(ValueError, match="unsupported currency"):
        money.display(100, "XXX")


@pytest.mark.parametrize(
    ("basis_points", "text"),
    [
        (10_000, "100 %"),
        (9_000, "90 %"),
        (8_550, "85.5 %"),
        (1_000, "10 %"),
        (250, "2.5 %"),
        (200, "2 %"),
        (10, "0.1 %"),
        (1, "0.01 %"),
        (0, "0 %"),
    ],
)
def test_display_rate(basis_points: int, text: str) -> None:
    assert money.display_rate(basis_points) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (date(2027, 1, 15), "15 Jan 2027"),
        (date(2026, 12, 1), "1 Dec 2026"),
        (date(2028, 2, 29), "29 Feb 2028"),
    ],
)
def test_day(value: date, text: str) -> None:
    assert pages.day(value) == text
