"""The money of an invoice the fake Kanmon finances: pure arithmetic on a pricing plan.

Kanmon publishes no arithmetic for these fields; this is the fake's assumption, the reading
Fundline's widget uses for the same fields (``connect/events.py``):

- ``amountRequestedForFinancingCents`` R is at most the plan's advance rate of the invoice
  amount, and by default exactly that;
- ``feeAmountCents`` F = R * transactionFeePercentage, rounded half-even (``kit/money.py``);
- ``principalAmountCents`` = ``invoiceAdvanceAmountCents`` = R - F (the fee is withheld from
  what the business receives); ``repaymentAmountCents`` = R = principal + fee;
- the repayment schedule follows the plan's window, counted from the day of submission:
  FIXED_DURATION, one repayment that many days later; FIXED_DATE, one on the first such day of a
  month on or after the invoice's due date; MULTIPLE_DURATION, one per item that many days
  later, principal and fee each split by the item's percentage (half-even), the last item
  taking what rounding left, so the parts always add up;
- the issued product's available limit drops by R (the fake's state does that).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fundline.kit.money import BASIS_POINTS, percent_of
from fundline.lending.kanmon.fake_spec import KanmonError, bad_request

JSON = dict[str, Any]
MIN_DUE_DAYS = 7  # Kanmon: the due date "must be at least 7 days in the future"
MIN_INVOICE_CENTS = 100  # Kanmon: the invoice amount "needs to be greater than or equal to 100"


def cents(value: Any, what: str) -> int:
    """A whole number of cents (the spec types amounts as "number"); 400 otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise bad_request(f"{what} must be a whole number of cents, not {value!r}")
    return int(value)


def basis_points(percentage: Any, what: str) -> int:
    """Kanmon's percentage (``2.5`` for 2.5 %) in basis points, exactly; 400 otherwise."""
    try:
        points = Decimal(str(percentage)) * 100
    except InvalidOperation:
        points = Decimal("NaN")
    if not points.is_finite() or points != points.to_integral_value():
        raise bad_request(f"{what} must be a percentage with at most 2 decimals: {percentage!r}")
    if not 0 <= points <= BASIS_POINTS:
        raise bad_request(f"{what} must be between 0 and 100: {percentage!r}")
    return int(points)


def parse_date(value: Any, what: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise bad_request(f"{what} must be an ISO 8601 date, not {value!r}") from None


def monthly(day: int, start: date) -> date:
    """The first ``day`` of a month (the month's last day when it is shorter) on or after
    ``start``."""
    year, month = start.year, start.month
    while True:
        candidate = date(year, month, min(day, calendar.monthrange(year, month)[1]))
        if candidate >= start:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def check_plan(plan: JSON) -> None:
    """400 unless the plan's rates are exact percentages and a multiple schedule's shares make
    100 %, so ``terms`` can never fail on a plan the fake holds."""
    basis_points(plan["advanceRatePercentage"], "advanceRatePercentage")
    basis_points(plan["transactionFeePercentage"], "transactionFeePercentage")
    window = plan["repaymentWindow"]
    if window["repaymentType"] == "MULTIPLE_DURATION":
        items = window["repaymentSchedule"]["schedule"]
        shares = [basis_points(i["repaymentPercentage"], "repaymentPercentage") for i in items]
        if sum(shares) != BASIS_POINTS:
            raise bad_request(f"repaymentPercentage items must add up to 100, not {shares}")


def terms(plan: JSON, fields: JSON, requested: Any, *, today: date) -> JSON:
    """The invoice's money and schedule under ``plan`` (the module's docstring); Kanmon's 400s
    for a due date too close or an amount out of bounds."""
    name = fields["platformInvoiceId"]
    if "invoiceAmountCents" not in fields or "invoiceDueDate" not in fields:
        raise bad_request(f"Invoice {name} needs invoiceAmountCents and invoiceDueDate")
    amount = cents(fields["invoiceAmountCents"], "invoiceAmountCents")
    due = parse_date(fields["invoiceDueDate"], "invoiceDueDate")
    issued = fields.get("invoiceIssuedDate")
    if due < today + timedelta(days=MIN_DUE_DAYS) or (
        issued is not None and due <= parse_date(issued, "invoiceIssuedDate")
    ):
        raise KanmonError(
            400,
            "InvalidInvoiceDueDateException",
            f"invoiceDueDate {due} must be {MIN_DUE_DAYS} days ahead and after the issue date",
        )
    most = percent_of(amount, basis_points(plan["advanceRatePercentage"], "advance rate"))
    asked = most if requested is None else cents(requested, "amountRequestedForFinancingCents")
    if amount < MIN_INVOICE_CENTS or not 1 <= asked <= most:
        raise KanmonError(
            400,
            "IncorrectFinancingAmountException",
            f"{asked} cents must be 1 to {most} (the advance rate of {amount})",
        )
    fee = percent_of(asked, basis_points(plan["transactionFeePercentage"], "fee"))
    principal = asked - fee
    return {
        "feeAmountCents": fee,
        "principalAmountCents": principal,
        "invoiceAdvanceAmountCents": principal,
        "repaymentAmountCents": asked,
        "repaymentSchedule": {
            "schedule": schedule(plan["repaymentWindow"], principal, fee, today=today, due=due)
        },
        "advanceRatePercentage": plan["advanceRatePercentage"],
        "transactionFeePercentage": plan["transactionFeePercentage"],
        "amountRequestedForFinancingCents": asked,
    }


def schedule(window: JSON, principal: int, fee: int, *, today: date, due: date) -> list[JSON]:
    """Kanmon's ``InvoiceRepaymentScheduleItem`` list for a repayment window."""
    kind = window["repaymentType"]
    if kind == "FIXED_DURATION":
        dates = [(today + timedelta(days=int(window["repaymentDurationDays"])), BASIS_POINTS)]
    elif kind == "FIXED_DATE":
        dates = [(monthly(int(window["monthlyRepaymentDay"]), due), BASIS_POINTS)]
    else:
        dates = [
            (
                today + timedelta(days=int(item["repaymentDurationDays"])),
                basis_points(item["repaymentPercentage"], "repaymentPercentage"),
            )
            for item in window["repaymentSchedule"]["schedule"]
        ]
    items, left_principal, left_fee = [], principal, fee
    for n, (when, share) in enumerate(dates, 1):
        last = n == len(dates)
        part_principal = left_principal if last else percent_of(principal, share)
        part_fee = left_fee if last else percent_of(fee, share)
        left_principal, left_fee = left_principal - part_principal, left_fee - part_fee
        items.append(
            {
                "repaymentDate": when.isoformat(),
                "repaymentAmountCents": part_principal + part_fee,
                "repaymentFeeAmountCents": part_fee,
                "repaymentPrincipalAmountCents": part_principal,
            }
        )
    return items
