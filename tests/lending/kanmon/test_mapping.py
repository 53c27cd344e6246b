"""Kanmon's words in Monite's (``lending/kanmon/mapping.py``), rule by rule, and the settings
that choose the lender."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from fundline.config import Lender, Settings
from fundline.lending.kanmon import mapping

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _offer(product_type: str = "INVOICE_FINANCING", **overrides: Any) -> dict[str, Any]:
    plan = {
        "id": "p1",
        "advanceRatePercentage": 90,
        "transactionFeePercentage": 1.25,
        "repaymentWindow": {"repaymentType": "FIXED_DURATION", "repaymentDurationDays": 30},
    }
    return {
        "id": "o1",
        "terms": {"productType": product_type, "totalLimitCents": 500_000, "pricingPlans": [plan]},
        "expiredAt": None,
        "selectedAt": None,
        **overrides,
    }


def test_amounts_and_rates_are_exact_or_refused() -> None:
    assert mapping.cents(100000, "x") == 100_000
    assert mapping.cents(100000.0, "x") == 100_000
    assert mapping.basis_points(2.5, "x") == 250
    assert mapping.basis_points(80, "x") == 8000
    for bad in (10.5, "abc", True):
        with pytest.raises(mapping.Unreadable):
            mapping.cents(bad, "x")
    for bad in (2.555, -1, "abc"):
        with pytest.raises(mapping.Unreadable):
            mapping.basis_points(bad, "x")


@pytest.mark.parametrize(
    ("business", "has_offers", "status"),
    [
        ({}, False, "NEW"),
        ({"ein": "123456789"}, False, "INPUT_REQUIRED"),
        ({"address": {"city": "Austin"}}, False, "INPUT_REQUIRED"),
        ({"ein": "123456789", "address": {"city": "Austin"}}, False, "ONBOARDED"),
        ({}, True, "ONBOARDED"),
    ],
)
def test_business_status_rules(business: dict[str, Any], has_offers: bool, status: str) -> None:
    assert mapping.business_status(business, has_offers=has_offers) == status


def test_products_that_finance_no_invoices_are_left_out() -> None:
    for product in ("TERM_LOAN", "MCA", "LINE_OF_CREDIT", "INTEGRATED_MCA"):
        assert mapping.offer_facts(_offer(product), None, now=NOW) is None
    payables = mapping.offer_facts(_offer("ACCOUNTS_PAYABLE_FINANCING"), None, now=NOW)
    assert payables is not None
    assert payables.invoice_type == "payable"


def test_offer_ids_are_derived_and_stable() -> None:
    first = mapping.offer_facts(_offer(), None, now=NOW)
    again = mapping.offer_facts(_offer(), None, now=NOW)
    assert first is not None
    assert again is not None
    assert (first.id, first.plans[0].id) == (again.id, again.plans[0].id)
    assert first.expires_at == mapping.NO_EXPIRY


@pytest.mark.parametrize(("loan_status", "status"), sorted(mapping.LOAN_STATUS.items()))
def test_an_issued_products_loan_status(loan_status: str, status: str) -> None:
    product = {
        "id": "ip1",
        "loanStatus": loan_status,
        "servicingData": {"totalLimitCents": 500_000, "availableLimitCents": 120_000},
    }
    facts = mapping.offer_facts(_offer(), product, now=NOW)
    assert facts is not None
    assert (facts.status, facts.available_amount, facts.product_ref) == (status, 120_000, "ip1")


def test_unknown_statuses_are_refused() -> None:
    with pytest.raises(mapping.Unreadable):
        mapping.offer_facts(_offer(), {"id": "ip", "loanStatus": "WEIRD"}, now=NOW)
    with pytest.raises(mapping.Unreadable):
        mapping.invoice_facts({"id": "i", "status": "SOMETHING_NEW", "invoiceAmountCents": 1})


def test_repayment_windows() -> None:
    multiple = mapping.plan_facts(
        "o1",
        {
            "id": "p",
            "advanceRatePercentage": 80,
            "transactionFeePercentage": 3,
            "repaymentWindow": {
                "repaymentType": "MULTIPLE_DURATION",
                "repaymentSchedule": {
                    "schedule": [
                        {"repaymentDurationDays": 30, "repaymentPercentage": 50},
                        {"repaymentDurationDays": 60, "repaymentPercentage": 50},
                    ]
                },
            },
        },
    )
    assert (multiple.repayment_type, multiple.repayment_duration_days, multiple.instalments) == (
        "MULTIPLE_DURATION",
        60,
        2,
    )
    fixed_date = mapping.plan_facts(
        "o1",
        {
            "id": "q",
            "advanceRatePercentage": 80,
            "transactionFeePercentage": 3,
            "repaymentWindow": {"repaymentType": "FIXED_DATE", "monthlyRepaymentDay": 15},
        },
    )
    assert (fixed_date.repayment_type, fixed_date.repayment_duration_days) == ("FIXED_DATE", None)


def test_every_kanmon_invoice_status_has_a_monite_word() -> None:
    spec = json.loads(
        resources.files("fundline.lending.kanmon").joinpath("kanmon-openapi.json").read_text()
    )
    statuses = spec["components"]["schemas"]["InvoiceStatus"]["enum"]
    assert set(statuses) == set(mapping.INVOICE_STATUS)


def test_kanmon_without_a_key_refuses_to_start() -> None:
    with pytest.raises(
        ValidationError, match="FUNDLINE_LENDER=kanmon needs FUNDLINE_KANMON_API_KEY"
    ):
        Settings(lender=Lender.KANMON)
    with pytest.raises(ValidationError, match="FUNDLINE_KANMON_API_KEY"):
        Settings(lender=Lender.KANMON, kanmon_api_key="   ")
    ready = Settings(lender=Lender.KANMON, kanmon_api_key="k")
    assert ready.kanmon_base_url == "https://api.kanmon.dev"
