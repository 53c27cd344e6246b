"""Money primitives: integer minor units, basis-point rates and one rounding rule.

Every amount in Fundline is an ``int`` in the minor unit of its currency (cents for USD, yen
for JPY, fils for KWD); every rate is an ``int`` in basis points, ``10000`` being 100 %. Nothing
here knows about invoices; domain code composes these functions. The financing price rule
(``quote``, DESIGN §5) and exact splitting live here because they are pure arithmetic.

The one rounding rule is round-half-even ("banker's rounding") on an exact integer ratio, so
no result depends on binary floating point and rounding errors do not drift in one direction
when many amounts are summed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

BASIS_POINTS = 10_000
"""100 % in basis points."""

# ISO 4217 minor-unit exponents for Monite's CurrencyEnum; every currency not listed has 2.
_EXPONENT_0 = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split())
_EXPONENT_3 = frozenset("BHD IQD JOD KWD LYD OMR TND".split())

CURRENCIES: tuple[str, ...] = tuple(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL
    GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD ISK JMD JOD JPY KES KGS KHR KMF KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SEK SGD
    SHP SLE SOS SRD SSP SVC SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VND VUV
    WST XAF XCD XOF XPF YER ZAR ZMW""".split()
)
"""The ISO 4217 codes Monite accepts (its ``CurrencyEnum``), in Monite's order."""

MINOR_UNIT_EXPONENTS: dict[str, int] = {
    code: 0 if code in _EXPONENT_0 else 3 if code in _EXPONENT_3 else 2 for code in CURRENCIES
}
"""Digits after the decimal point of each currency's major unit (USD 2, JPY 0, KWD 3)."""


def exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of ``currency``; ``ValueError`` if it is not supported."""
    try:
        return MINOR_UNIT_EXPONENTS[currency]
    except KeyError:
        raise ValueError(f"unsupported currency {currency!r}") from None


def known_currency(code: str) -> str:
    """``code`` when Monite supports it; ``ValueError`` otherwise (a 422 in a wire model)."""
    exponent(code)
    return code


# --- wire types (the request and response models of every domain) -------------------------------

MAX_AMOUNT = 9007199254740991
"""Monite's cap on a minor-unit amount: JavaScript's largest safe integer."""

Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
BasisPoints = Annotated[int, Field(ge=0, le=BASIS_POINTS)]
CurrencyCode = Annotated[
    str,
    AfterValidator(known_currency),
    WithJsonSchema({"type": "string", "enum": list(CURRENCIES)}),
]
"""Monite's ``CurrencyEnum`` (ISO 4217 codes) as a wire type."""


def round_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, ties to the even one.

    Exact for any integers (no float is involved). ``ZeroDivisionError`` if the denominator
    is zero. ``round_half_even(5, 2) == 2``, ``round_half_even(7, 2) == 4``,
    ``round_half_even(-5, 2) == -2``.
    """
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)  # 0 <= remainder < denominator
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        return quotient + 1
    return quotient


def percent_of(amount: int, basis_points: int) -> int:
    """``amount * basis_points / 10000``, rounded half-even: ``percent_of(100000, 300) == 3000``."""
    return round_half_even(amount * basis_points, BASIS_POINTS)


def multiply(amount: int, factor: Decimal | int) -> int:
    """``amount * factor`` rounded half-even, exactly (a price times a fractional quantity).

    ``factor`` is an ``int`` or a finite ``Decimal``; its exact ratio is used, never a float.
    """
    if isinstance(factor, int):
        return amount * factor
    if not factor.is_finite():
        raise ValueError(f"cannot multiply money by {factor}")
    numerator, denominator = factor.as_integer_ratio()
    return round_half_even(amount * numerator, denominator)


# No money amount has more digits than this before its decimal point (int64 has 19).
MAX_MAJOR_DIGITS = 30


def from_major(value: Decimal | str | int, currency: str) -> int:
    """Minor units of a major-unit amount: ``from_major("12.50", "USD") == 1250``.

    Exact: a value with more decimals than the currency has (``"0.001"`` USD) is a
    ``ValueError`` rather than silently rounded.
    """
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value)
    except ArithmeticError:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    # Refused before any arithmetic: "1e10000000" would build a ten-million-digit integer.
    digits, power = amount.as_tuple().digits, int(amount.as_tuple().exponent)
    if len(digits) + power > MAX_MAJOR_DIGITS or power < -MAX_MAJOR_DIGITS:
        raise ValueError(f"not an amount: {value!r} is out of range")
    numerator, denominator = amount.as_integer_ratio()
    scale: int = 10 ** exponent(currency)
    minor, rest = divmod(numerator * scale, denominator)
    if rest:
        raise ValueError(f"{value} has more decimals than {currency} allows")
    return minor


class AmountError(ValueError):
    """A typed amount that is not one; the message says why, for the person who typed it."""


# Digits with commas between every three or none, then decimals; a minus sign may lead (a
# negative amount is an amount: whether it is allowed is the caller's rule).
_GROUPED = re.compile(r"-?(\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d+)?|\.\d+)")
_CODED = re.compile(r"^([A-Za-z]{3})\s*([^A-Za-z]*)$|^([^A-Za-z]*?)\s*([A-Za-z]{3})$")


def parse_major(text: str, currency: str) -> int:
    """What a person typed, in ``currency``'s major units, as minor units: ``1234.56``,
    ``1,234.56``, ``$1,234.56``, ``1234.56 USD`` or ``USD 1234.56``. ``AmountError`` when it is
    blank, names another currency, is not written as an amount (a wrong grouping, an exponent),
    has more decimals than the currency, or is too large. Zero and negative amounts pass:
    whether one is enough is the caller's rule."""
    value = text.strip()
    if not value:
        raise AmountError("Enter an amount")
    coded = _CODED.match(value)
    code = (coded.group(1) or coded.group(4)).upper() if coded else None
    if coded and code in MINOR_UNIT_EXPONENTS:
        if code != currency:
            raise AmountError(f"“{text}” is not in {currency}")
        value = coded.group(2) if coded.group(1) else coded.group(3)
    symbol = SYMBOLS.get(currency)
    if symbol and value.startswith(symbol):
        value = value[len(symbol) :].lstrip()
    if not _GROUPED.fullmatch(value):
        raise AmountError(f"“{text}” is not an amount: write it like 1,234.56")
    places = exponent(currency)
    if len(value.partition(".")[2]) > places:
        raise AmountError(f"“{text}” has more decimals than {currency} has ({places})")
    try:
        return from_major(Decimal(value.replace(",", "")), currency)
    except ValueError:
        raise AmountError(f"“{text}” is too large an amount") from None


def to_major(amount: int, currency: str) -> Decimal:
    """The major-unit value of ``amount`` minor units.

    ``to_major(1250, "USD") == Decimal("12.50")``; exact at any size (built from digits, not
    through a rounding Decimal context).
    """
    digits = tuple(int(d) for d in str(abs(amount)))
    return Decimal((1 if amount < 0 else 0, digits, -exponent(currency)))


SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def display(amount: int, currency: str) -> str:
    """``amount`` minor units for people: ``display(970000, "USD") == "$9,700.00"``; a currency
    without a symbol here is written after the number (``"1,234 JPY"``)."""
    major = to_major(amount, currency)
    text = f"{abs(major):,.{exponent(currency)}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def display_rate(basis_points: int) -> str:
    """Basis points for people: ``display_rate(9000) == "90 %"``, ``display_rate(250) ==
    "2.5 %"``."""
    text = f"{Decimal(basis_points) / 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} %"


def require_int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """``value`` when it is an int within ``low … high``; ``TypeError`` or ``ValueError`` else."""
    # bool is an int subclass and float is not money: both are refused.
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, not {value}")
    return value


def split_evenly(amount: int, parts: int) -> list[int]:
    """``amount`` in ``parts`` integer shares that sum to it exactly, differing by at most 1.

    The remainder goes to the first shares: ``split_evenly(100, 3) == [34, 33, 33]``.
    """
    require_int("parts", parts, low=1)
    share, remainder = divmod(amount, parts)
    return [share + 1 if i < remainder else share for i in range(parts)]
