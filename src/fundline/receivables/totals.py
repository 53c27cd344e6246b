"""Invoice arithmetic: line amounts and document totals, in integer minor units.

Each line is rounded once (price * quantity, then its tax), and every total is the plain sum
of the rounded lines, so a document always adds up: ``total_amount == Σ total_after_vat``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from fundline.kit.money import multiply, percent_of


@dataclass(frozen=True, slots=True)
class LineAmounts:
    total_before_vat: int
    vat_amount: int
    total_after_vat: int
    price_after_vat: int  # one unit, tax included


def line_amounts(price: int, quantity: Decimal, tax_rate: int) -> LineAmounts:
    """The amounts of one line: ``price`` per unit (minor units), ``tax_rate`` in basis points."""
    before = multiply(price, quantity)
    vat = percent_of(before, tax_rate)
    return LineAmounts(before, vat, before + vat, price + percent_of(price, tax_rate))


@dataclass(frozen=True, slots=True)
class VatGroup:
    rate: int
    taxable_amount: int
    amount: int


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: int = 0
    total_vat_amount: int = 0
    vat_groups: tuple[VatGroup, ...] = field(default=())

    @property
    def total_amount(self) -> int:
        return self.subtotal + self.total_vat_amount


def document_totals(lines: Iterable[tuple[int, LineAmounts]]) -> Totals:
    """Totals of ``(tax_rate, amounts)`` lines, with the tax grouped by rate (ascending)."""
    taxable: dict[int, int] = {}
    vat: dict[int, int] = {}
    for rate, amounts in lines:
        taxable[rate] = taxable.get(rate, 0) + amounts.total_before_vat
        vat[rate] = vat.get(rate, 0) + amounts.vat_amount
    groups = tuple(VatGroup(rate, taxable[rate], vat[rate]) for rate in sorted(taxable))
    return Totals(
        subtotal=sum(g.taxable_amount for g in groups),
        total_vat_amount=sum(g.amount for g in groups),
        vat_groups=groups,
    )
