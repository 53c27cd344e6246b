"""Money primitives: exponents, the one rounding rule and the helpers built on it."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundline.kit.money import (
    BASIS_POINTS,
    CURRENCIES,
    MINOR_UNIT_EXPONENTS,
    exponent,
    from_major,
    multiply,
    percent_of,
    round_half_even,
    to_major,
)
from tests.support.spec import SPEC_PATH

integers = st.integers(min_value=-(10**30), max_value=10**30)
denominators = integers.filter(lambda d: d != 0)
amounts = st.integers(min_value=-(10**18), max_value=10**18)
rates = st.integers(min_value=0, max_value=BASIS_POINTS)
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**9), max_value=10**9
)


@given(integers, denominators)
def test_round_half_even_matches_exact_fractions(numerator: int, denominator: int) -> None:
    # Fraction.__round__ rounds half to even, exactly: an independent oracle.
    assert round_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


@given(integers, denominators)
def test_round_half_even_is_within_half_of_the_ratio(numerator: int, denominator: int) -> None:
    result = round_half_even(numerator, denominator)
    assert type(result) is int
    error = abs(Fraction(numerator, denominator) - result)
    assert error <= Fraction(1, 2)
    if error == Fraction(1, 2):
        assert result % 2 == 0


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 2),
        (7, 2, 4),
        (-5, 2, -2),
        (-7, 2, -4),
        (5, -2, -2),
        (1, 3, 0),
        (2, 3, 1),
        (-2, 3, -1),
        (0, 7, 0),
        (10**40 + 1, 2, 10**40 // 2),
    ],
)
def test_round_half_even_examples(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_even(numerator, denominator) == expected


def test_round_half_even_by_zero_is_an_error() -> None:
    with pytest.raises(ZeroDivisionError):
        round_half_even(1, 0)


@given(amounts, rates)
def test_percent_of(amount: int, basis_points: int) -> None:
    result = percent_of(amount, basis_points)
    assert result == round(Fraction(amount * basis_points, BASIS_POINTS))
    assert percent_of(amount, BASIS_POINTS) == amount
    assert percent_of(amount, 0) == 0
    if amount >= 0:
        assert 0 <= result <= amount


def test_percent_of_examples() -> None:
    assert percent_of(100_000, 300) == 3000  # Monite's own fee example
    assert percent_of(5, 5000) == 2  # 2.5 → 2 (to even)
    assert percent_of(7, 5000) == 4  # 3.5 → 4 (to even)


@given(amounts, decimals)
def test_multiply_by_a_decimal_is_exact(amount: int, factor: Decimal) -> None:
    result = multiply(amount, factor)
    assert type(result) is int
    assert result == round(Fraction(amount) * Fraction(factor))


@given(amounts, st.integers(min_value=-(10**6), max_value=10**6))
def test_multiply_by_an_integer(amount: int, factor: int) -> None:
    assert multiply(amount, factor) == amount * factor
    assert multiply(amount, Decimal(factor)) == amount * factor


@pytest.mark.parametrize("factor", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_multiply_refuses_non_finite_factors(factor: Decimal) -> None:
    with pytest.raises(ValueError, match="cannot multiply"):
        multiply(100, factor)


def test_every_monite_currency_has_an_exponent() -> None:
    spec = json.loads(SPEC_PATH.read_text())
    monite = spec["components"]["schemas"]["CurrencyEnum"]["enum"]
    assert list(CURRENCIES) == monite
    assert set(MINOR_UNIT_EXPONENTS) == set(monite)
    assert set(MINOR_UNIT_EXPONENTS.values()) == {0, 2, 3}


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("KWD", 3),
        ("BHD", 3),
    ],
)
def test_exponents(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


def test_unknown_currency_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported currency 'XXX'"):
        exponent("XXX")


@given(amounts, st.sampled_from(CURRENCIES))
def test_major_units_round_trip(amount: int, currency: str) -> None:
    major = to_major(amount, currency)
    assert from_major(major, currency) == amount
    assert from_major(str(major), currency) == amount
    assert major * 10 ** exponent(currency) == amount


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        (Decimal("0.01"), "USD", 1),
        (7, "JPY", 7),
        ("1.234", "KWD", 1234),
        ("-3", "USD", -300),
        ("1E+2", "USD", 10_000),
    ],
)
def test_from_major(value: Decimal | str | int, currency: str, expected: int) -> None:
    assert from_major(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [("0.001", "USD"), ("1.5", "JPY"), ("abc", "USD"), ("NaN", "USD"), ("Infinity", "EUR")],
)
def test_from_major_refuses_what_it_cannot_represent(value: str, currency: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (the messages differ by case)
        from_major(value, currency)


def test_to_major_keeps_the_currency_digits() -> None:
    assert str(to_major(1250, "USD")) == "12.50"
    assert str(to_major(-5, "USD")) == "-0.05"
    assert str(to_major(7, "KWD")) == "0.007"
    assert str(to_major(7, "JPY")) == "7"
    assert to_major(10**40, "USD") == Decimal(10**38)
