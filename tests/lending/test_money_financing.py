"""The financing price rule (DESIGN §5), exact splitting and repayment schedules, by property."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fundline.kit.money import BASIS_POINTS, round_half_even, split_evenly
from fundline.lending.policy import PlanPolicy
from fundline.lending.pricing import Quote, price
from fundline.lending.schedule import build_schedule, due_dates

totals = st.integers(min_value=0, max_value=10**15)
rates = st.integers(min_value=0, max_value=BASIS_POINTS)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))


@st.composite
def plans(draw: st.DrawFn) -> PlanPolicy:
    kind = draw(st.sampled_from(("FIXED_DURATION", "MULTIPLE_DURATION", "FIXED_DATE")))
    advance = draw(st.integers(1, BASIS_POINTS))
    fee = draw(st.integers(0, BASIS_POINTS - 1))
    if kind == "FIXED_DATE":
        return PlanPolicy(kind, advance, fee, None, grace_days=draw(st.integers(0, 60)))
    duration = draw(st.integers(1, 720))
    if kind == "FIXED_DURATION":
        return PlanPolicy(kind, advance, fee, duration)
    return PlanPolicy(
        kind, advance, fee, duration, instalments=draw(st.integers(1, min(24, duration)))
    )


def assert_quote_invariants(q: Quote, total: int, advance: int, fee: int) -> None:
    for field in fields(q):
        assert type(getattr(q, field.name)) is int, field.name  # never a float
    assert q.max_requested_amount == total * advance // BASIS_POINTS
    assert 1 <= q.requested_amount <= q.max_requested_amount
    assert q.fee_amount == round_half_even(q.requested_amount * fee, BASIS_POINTS)
    assert q.principal_amount == q.advance_amount == q.requested_amount - q.fee_amount
    assert q.repayment_amount == q.requested_amount == q.principal_amount + q.fee_amount
    assert 0 <= q.fee_amount <= q.requested_amount


@given(totals, rates, rates)
def test_quote_of_the_maximum(total: int, advance: int, fee: int) -> None:
    assume(total * advance // BASIS_POINTS >= 1)
    q = price(total, advance_rate_percentage=advance, fee_percentage=fee)
    assert q.requested_amount == q.max_requested_amount
    assert_quote_invariants(q, total, advance, fee)


@given(totals, rates, rates, st.data())
def test_quote_of_any_allowed_amount(
    total: int, advance: int, fee: int, data: st.DataObject
) -> None:
    maximum = total * advance // BASIS_POINTS
    assume(maximum >= 1)
    requested = data.draw(st.integers(1, maximum))
    q = price(
        total, advance_rate_percentage=advance, fee_percentage=fee, requested_amount=requested
    )
    assert q.requested_amount == requested
    assert_quote_invariants(q, total, advance, fee)


@given(totals, rates, rates, st.integers(min_value=-(10**6), max_value=10**16))
def test_quote_refuses_amounts_out_of_range(
    total: int, advance: int, fee: int, requested: int
) -> None:
    maximum = total * advance // BASIS_POINTS
    assume(requested < 1 or requested > maximum)
    with pytest.raises(ValueError, match=r"requested_amount must be between 1|can be financed"):
        price(
            total, advance_rate_percentage=advance, fee_percentage=fee, requested_amount=requested
        )


def test_monites_example() -> None:
    # 100000 requested at 3 %: 97000 advanced, 3000 fee, 100000 repaid.
    q = price(100_000, advance_rate_percentage=10_000, fee_percentage=300)
    assert q == Quote(100_000, 100_000, 3_000, 97_000, 100_000)


def test_fee_rounds_half_to_even() -> None:
    # 50 * 1 % = 0.5 → 0; 150 * 1 % = 1.5 → 2; 250 * 1 % = 2.5 → 2
    fees = [
        price(r, advance_rate_percentage=10_000, fee_percentage=100).fee_amount
        for r in (50, 150, 250)
    ]
    assert fees == [0, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"total_amount": 1000.0}, TypeError),
        ({"total_amount": True}, TypeError),
        ({"requested_amount": 10.5}, TypeError),
        ({"advance_rate_percentage": 10_001}, ValueError),
        ({"fee_percentage": -1}, ValueError),
        ({"total_amount": -1}, ValueError),
        ({"total_amount": 0}, ValueError),
    ],
)
def test_quote_refuses_bad_input(kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {
        "total_amount": 100_000,
        "advance_rate_percentage": 9_000,
        "fee_percentage": 300,
    }
    args.update(kwargs)
    with pytest.raises(error):
        price(**args)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(1, 1000))
def test_split_evenly_sums_exactly(amount: int, parts: int) -> None:
    shares = split_evenly(amount, parts)
    assert len(shares) == parts
    assert sum(shares) == amount
    assert all(type(s) is int for s in shares)
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)  # the remainder goes to the first shares


def test_split_evenly_examples() -> None:
    assert split_evenly(100, 3) == [34, 33, 33]
    assert split_evenly(2, 3) == [1, 1, 0]
    assert split_evenly(0, 2) == [0, 0]
    with pytest.raises(ValueError, match="parts"):
        split_evenly(10, 0)


@given(plans(), totals, days, days)
def test_schedules_sum_exactly_to_the_totals(
    plan: PlanPolicy, total: int, funded_on: date, invoice_due: date
) -> None:
    assume(total * plan.advance_rate_percentage // BASIS_POINTS >= 1)
    q = price(
        total,
        advance_rate_percentage=plan.advance_rate_percentage,
        fee_percentage=plan.fee_percentage,
    )
    schedule = build_schedule(
        plan,
        repayment_amount=q.repayment_amount,
        fee_amount=q.fee_amount,
        funded_on=funded_on,
        invoice_due_date=invoice_due,
    )
    assert [i.sequence for i in schedule] == list(range(1, len(schedule) + 1))
    assert len(schedule) == plan.instalments
    assert sum(i.amount for i in schedule) == q.repayment_amount
    assert sum(i.fee_amount for i in schedule) == q.fee_amount
    assert sum(i.principal_amount for i in schedule) == q.principal_amount
    for instalment in schedule:
        assert instalment.amount == instalment.fee_amount + instalment.principal_amount
        assert instalment.due_date >= funded_on
    dates = [i.due_date for i in schedule]
    assert dates == sorted(set(dates))  # strictly increasing


@given(plans(), days, days)
def test_due_dates_per_plan_type(plan: PlanPolicy, funded_on: date, invoice_due: date) -> None:
    dates = due_dates(plan, funded_on=funded_on, invoice_due_date=invoice_due)
    if plan.repayment_type == "FIXED_DATE":
        assert dates == [max(invoice_due + timedelta(days=plan.grace_days), funded_on)]
    else:
        assert plan.repayment_duration_days is not None
        # The last instalment is always at the end of the term.
        assert dates[-1] == funded_on + timedelta(days=plan.repayment_duration_days)


def test_multiple_duration_dates() -> None:
    plan = PlanPolicy("MULTIPLE_DURATION", 9_000, 400, 90, instalments=3)
    funded = date(2026, 1, 1)
    assert due_dates(plan, funded_on=funded, invoice_due_date=funded) == [
        date(2026, 1, 31),
        date(2026, 3, 2),
        date(2026, 4, 1),
    ]
    schedule = build_schedule(
        plan, repayment_amount=100_001, fee_amount=4_000, funded_on=funded, invoice_due_date=funded
    )
    assert [(i.amount, i.fee_amount, i.principal_amount) for i in schedule] == [
        (33_335, 1_334, 32_001),
        (33_333, 1_333, 32_000),
        (33_333, 1_333, 32_000),
    ]


@pytest.mark.parametrize(
    "plan",
    [
        PlanPolicy("FIXED_DURATION", 10_000, 300, None),
        PlanPolicy("MULTIPLE_DURATION", 10_000, 300, 2, instalments=3),
        PlanPolicy("WEEKLY", 10_000, 300, 30),
    ],
)
def test_impossible_plans_are_refused(plan: PlanPolicy) -> None:
    with pytest.raises(ValueError, match=r"repayment_duration_days|do not fit|unknown"):
        due_dates(plan, funded_on=date(2026, 1, 1), invoice_due_date=date(2026, 2, 1))
