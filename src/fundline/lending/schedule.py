"""Repayment schedules: when each instalment falls due and how much it is (pure functions).

``FIXED_DURATION``: one instalment ``repayment_duration_days`` after funding.
``MULTIPLE_DURATION``: ``instalments`` equal periods over ``repayment_duration_days`` (the last
on the term's end). ``FIXED_DATE``: one instalment on the invoice's due date plus
``grace_days`` (never before the funding date). The fee and the principal are each split
with ``split_evenly``, so every instalment's amount is its fee plus its principal and the
instalments sum exactly to the totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from fundline.kit.money import split_evenly


class PlanTerms(Protocol):
    """What a schedule reads from a plan: a ``PricingPlan`` row or a policy's ``PlanPolicy``."""

    @property
    def repayment_type(self) -> str: ...
    @property
    def repayment_duration_days(self) -> int | None: ...
    @property
    def instalments(self) -> int: ...
    @property
    def grace_days(self) -> int: ...


@dataclass(frozen=True)
class ScheduledInstalment:
    sequence: int  # 1, 2, …
    due_date: date
    amount: int
    fee_amount: int
    principal_amount: int


def due_dates(plan: PlanTerms, *, funded_on: date, invoice_due_date: date) -> list[date]:
    """The instalments' due dates, in order, for an invoice funded on ``funded_on``."""
    kind = plan.repayment_type
    if kind == "FIXED_DATE":
        return [max(invoice_due_date + timedelta(days=plan.grace_days), funded_on)]
    days = plan.repayment_duration_days
    if days is None or days < 1:
        raise ValueError(f"a {kind} plan needs repayment_duration_days")
    if kind == "FIXED_DURATION":
        return [funded_on + timedelta(days=days)]
    if kind == "MULTIPLE_DURATION":
        parts = plan.instalments
        if not 1 <= parts <= days:
            raise ValueError(f"{parts} instalments do not fit in {days} days")
        return [funded_on + timedelta(days=days * k // parts) for k in range(1, parts + 1)]
    raise ValueError(f"unknown repayment type {kind!r}")


def build_schedule(
    plan: PlanTerms,
    *,
    repayment_amount: int,
    fee_amount: int,
    funded_on: date,
    invoice_due_date: date,
) -> list[ScheduledInstalment]:
    """The instalments repaying ``repayment_amount`` (of which ``fee_amount`` is fee)."""
    dates = due_dates(plan, funded_on=funded_on, invoice_due_date=invoice_due_date)
    fees = split_evenly(fee_amount, len(dates))
    principals = split_evenly(repayment_amount - fee_amount, len(dates))
    return [
        ScheduledInstalment(sequence, due, fee + principal, fee, principal)
        for sequence, (due, fee, principal) in enumerate(
            zip(dates, fees, principals, strict=True), start=1
        )
    ]
