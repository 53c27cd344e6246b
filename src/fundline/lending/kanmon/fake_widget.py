"""What Kanmon and the business's user do in Kanmon's own widget and back office, which the
adapter only sees the results of: onboarding, offers made, selected and issued, a session's
invoices submitted, servicing moving invoices and products along. The fake's control API
(``/_fake/…``, and these methods in Python) plays them.

Inputs are Kanmon's wire shapes (camelCase) where they are Kanmon's objects (a pricing plan, an
address); the answers are the objects as Kanmon's API would then show them.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

from fundline.lending.kanmon import fake_spec, fake_terms
from fundline.lending.kanmon.fake_spec import KanmonError, bad_request
from fundline.lending.kanmon.fake_state import (
    FINANCING,
    INVOICE_STATUSES,
    JSON,
    LOAN_STATUSES,
    RELEASED,
    KanmonState,
    instant,
    wire_time,
)

DEFAULT_PLAN: JSON = {
    "advanceRatePercentage": 90,
    "transactionFeePercentage": 2.5,
    "repaymentWindow": {"repaymentType": "FIXED_DURATION", "repaymentDurationDays": 60},
}
DEFAULT_ADDRESS: JSON = {
    "addressLineOne": "100 Congress Ave",
    "addressLineTwo": None,
    "city": "Austin",
    "state": "TX",
    "zipcode": "78701",
    "country": "US",
}
# What the user may settle in the widget for an invoice that came as a file only.
SUBMIT_FIELDS = ("invoiceAmountCents", "invoiceDueDate", "invoiceIssuedDate")


def _check(schema: str, value: Any, what: str) -> None:
    problems = fake_spec.load().check_schema(schema, value, what)
    if problems:
        raise bad_request("; ".join(problems))


class KanmonWidget(KanmonState):
    """Kanmon's state, with what happens outside Kanmon's API."""

    def onboard_business(
        self,
        business_id: str,
        *,
        name: str | None = None,
        ein: str | None = None,
        address: JSON | None = None,
    ) -> JSON:
        """The user completed Kanmon's onboarding: the business has a name, an EIN and an
        address (what is not given is kept, or made up)."""
        business = self._business(business_id)
        onboarded = business | {
            "name": name or business["name"] or f"Business {business['platformBusinessId']}",
            "ein": ein or business["ein"] or "12-3456789",
            "address": address or business.get("address") or dict(DEFAULT_ADDRESS),
            "updatedAt": self._timestamp(),
        }
        _check("Business", onboarded, "business")
        business.update(onboarded)
        return self._out(business)

    def extend_offer(
        self,
        business_id: str,
        *,
        total_limit_cents: int,
        product_type: str = "INVOICE_FINANCING",
        pricing_plans: list[JSON] | None = None,
        expired_at: datetime | str | None = None,
    ) -> JSON:
        """Kanmon makes the business an offer. Each plan is Kanmon's ``InvoicePaymentPlan``
        (its ``id`` made when missing); by default one plan, ``DEFAULT_PLAN``."""
        business = self._business(business_id)
        if product_type not in FINANCING:
            raise bad_request(f"productType must be one of {FINANCING}, not {product_type!r}")
        limit = fake_terms.cents(total_limit_cents, "totalLimitCents")
        if not isinstance(pricing_plans, list | None) or not all(
            isinstance(plan, dict) for plan in pricing_plans or []
        ):
            raise bad_request("pricingPlans must be a list of objects")
        plans = [{"id": str(uuid.uuid4()), **p} for p in pricing_plans or [DEFAULT_PLAN]]
        if isinstance(expired_at, datetime):
            expired_at = wire_time(expired_at)
        elif expired_at is not None:
            instant(expired_at, "expiredAt")
        now = self._timestamp()
        offer: JSON = {
            "id": str(uuid.uuid4()),
            "businessId": business["id"],
            "platformBusinessId": business["platformBusinessId"],
            "terms": {"productType": product_type, "totalLimitCents": limit, "pricingPlans": plans},
            "expiredAt": expired_at,
            "selectedAt": None,
            "createdAt": now,
            "updatedAt": now,
        }
        _check("Offer", offer, "offer")
        for plan in plans:
            fake_terms.check_plan(plan)
        self.offers[offer["id"]] = offer
        return self._out(offer)

    def _open_offer(self, offer_id: str) -> JSON:
        offer = self._offer(offer_id)
        expired = offer["expiredAt"]
        if expired is not None and instant(expired, "expiredAt") <= self._now():
            raise KanmonError(409, "SomeOffersHaveExpiredException", f"Offer {offer_id} expired")
        return offer

    def select_offer(self, offer_id: str) -> JSON:
        """The user accepts the offer."""
        offer = self._open_offer(offer_id)
        if offer["selectedAt"] is not None:
            raise KanmonError(409, "OfferAlreadySelectedException", f"Offer {offer_id} selected")
        offer.update(selectedAt=self._timestamp(), updatedAt=self._timestamp())
        return self._out(offer)

    def issue_offer(self, offer_id: str, *, available_limit_cents: int | None = None) -> JSON:
        """Kanmon issues the product (selecting the offer first if the user has not): loan
        status CURRENT, the whole limit available unless told otherwise."""
        offer = self._open_offer(offer_id)
        if any(p["offerId"] == offer_id for p in self.issued_products.values()):
            raise KanmonError(409, "ConflictException", f"Offer {offer_id} is already issued")
        if offer["selectedAt"] is None:
            self.select_offer(offer_id)
        terms = offer["terms"]
        available = terms["totalLimitCents"]
        if available_limit_cents is not None:
            available = fake_terms.cents(available_limit_cents, "availableLimitCents")
        now = self._timestamp()
        product: JSON = {
            "id": str(uuid.uuid4()),
            "offerId": offer_id,
            "businessId": offer["businessId"],
            "platformBusinessId": offer["platformBusinessId"],
            "loanStatus": "CURRENT",
            "servicingData": {**copy.deepcopy(terms), "availableLimitCents": available},
            "createdAt": now,
            "updatedAt": now,
        }
        self.issued_products[product["id"]] = product
        return self._out(product)

    def set_loan_status(self, issued_product_id: str, loan_status: str) -> JSON:
        product = self._product(issued_product_id)
        if loan_status not in LOAN_STATUSES:
            raise bad_request(f"loanStatus must be one of {LOAN_STATUSES}, not {loan_status!r}")
        product.update(loanStatus=loan_status, updatedAt=self._timestamp())
        return self._out(product)

    def submit_session(self, session_token: str, invoices: list[JSON] | None = None) -> list[JSON]:
        """The user submits the session's invoices for financing (by default every one not yet
        submitted). Each item names a ``platformInvoiceId`` of the session and may choose
        ``amountRequestedForFinancingCents`` and ``pricingPlanId`` (the product's first plan by
        default), and settle ``invoiceAmountCents``/``invoiceDueDate``/``invoiceIssuedDate``
        (an invoice given as a file has none). All or nothing: a short limit refuses the lot
        with 409 InsufficientCreditLimitException."""
        session = self.sessions.get(session_token)
        if session is None:
            raise KanmonError(404, "NotFoundException", "No such session")
        product = self._product(session["issuedProductId"])
        given = {i["platformInvoiceId"]: i for i in session["invoices"]}
        if invoices is None:
            invoices = [
                {"platformInvoiceId": pid} for pid in given if pid not in session["submitted"]
            ]
        if not isinstance(invoices, list) or not all(isinstance(i, dict) for i in invoices):
            raise bad_request("invoices must be a list of objects")
        prepared: list[tuple[str, JSON, JSON]] = []
        for item in invoices:
            platform_id = str(item.get("platformInvoiceId"))
            if platform_id not in given:
                raise KanmonError(404, "InvoiceNotFoundException", f"{platform_id} not in session")
            if platform_id in session["submitted"] or any(p[0] == platform_id for p in prepared):
                raise KanmonError(
                    400, "PlatformInvoiceIdAlreadyExistsException", f"{platform_id} submitted"
                )
            fields = given[platform_id] | {k: item[k] for k in SUBMIT_FIELDS if k in item}
            plan = self._plan(product, item.get("pricingPlanId"))
            terms = self._terms(plan, fields, item.get("amountRequestedForFinancingCents"))
            prepared.append((platform_id, fields, terms))
        self._draw(product, sum(t["amountRequestedForFinancingCents"] for _, _, t in prepared))
        session["submitted"] += [platform_id for platform_id, _, _ in prepared]
        return [self._out(self._new_invoice(product, f, t)) for _, f, t in prepared]

    def set_invoice_status(self, invoice_id: str, status: str) -> JSON:
        """Kanmon moves the invoice on. Paid in full, rejected or returned gives its amount back
        to the product's available limit; moved back from those, it draws it again."""
        invoice = self._invoice(invoice_id)
        if status not in INVOICE_STATUSES:
            raise bad_request(f"status must be one of {INVOICE_STATUSES}, not {status!r}")
        product = self._product(invoice["issuedProductId"])
        drawn = self._drawn[invoice_id]
        if status in RELEASED and drawn:
            product["servicingData"]["availableLimitCents"] += drawn
            product["updatedAt"] = self._timestamp()
            self._drawn[invoice_id] = 0
        elif status not in RELEASED and not drawn:
            amount = invoice["amountRequestedForFinancingCents"]
            self._draw(product, amount, any_status=True)
            self._drawn[invoice_id] = amount
        invoice.update(status=status, updatedAt=self._timestamp())
        return self._out(invoice)
