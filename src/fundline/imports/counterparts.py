"""The counterparts an import file names: collected while its rows are checked, then found in
the entity by name or created, with the addresses the rows give.

A counterpart is identified by its display name within the entity (the organization's legal
name, an individual's "first last"), whitespace collapsed, case kept. When the entity has
several counterparts of that name, the oldest is used. A counterpart the file creates takes its
type, email, tax id and default billing address from the first row that gives each; a later row
giving a different value is an error, a blank one is fine.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.counterparts.schemas import CounterpartAddress, CounterpartCreatePayload
from fundline.counterparts.service import build_counterpart, new_address
from fundline.imports.csv_format import ADDRESS_COLUMNS, CounterpartCells, RowError, explain
from fundline.models import Counterpart, Entity
from fundline.models import CounterpartAddress as Address

# Monite's address fields, in the order of an AddressKey.
ADDRESS_FIELDS = tuple(name.removeprefix("address_") for name in ADDRESS_COLUMNS)
AddressKey = tuple[str | None, ...]

# Values per ``IN (…)``: well below the bind-parameter limits of SQLite and asyncpg.
IN_CHUNK = 5000

_TO_COLUMN = {
    "legal_name": "counterpart_name",
    "first_name": "counterpart_name",
    "last_name": "counterpart_name",
    "email": "counterpart_email",
    "tax_id": "counterpart_tax_id",
    **{f: f"address_{f}" for f in ("line1", "line2")},
}
_PAYLOAD = TypeAdapter[CounterpartCreatePayload](CounterpartCreatePayload)


T = TypeVar("T")


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass
class Named:
    """A counterpart as the file names it."""

    name: str
    line: int  # the first row naming it
    type: str = "organization"
    type_line: int | None = None  # the first row giving counterpart_type
    email: tuple[str, int] | None = None  # value, line
    tax_id: tuple[str, int] | None = None
    # Every distinct address the rows give (file order); the first is a new one's default.
    addresses: dict[AddressKey, CounterpartAddress] = field(default_factory=dict)
    # Rows naming it whose counterpart cells are fine: one that only bad rows name is left
    # alone (those rows are reported already).
    good_rows: int = 0


@dataclass
class Resolved:
    counterpart: Counterpart
    created: bool
    # The address of each AddressKey the rows give; None maps to the default billing address.
    addresses: dict[AddressKey | None, Address | None]


class CounterpartBook:
    """Counterparts named by a file, collected row by row (no database needed)."""

    def __init__(self, *, customer: bool) -> None:
        self.customer = customer
        self.named: dict[str, Named] = {}
        self._addresses: dict[AddressKey, CounterpartAddress | str] = {}

    def add(self, line: int, row: CounterpartCells) -> tuple[list[str], AddressKey | None]:
        """Note the counterpart and address of a row; returns the row's problems and its
        address key."""
        problems: list[str] = []
        cells = row.address_cells()
        key: AddressKey | None = None
        address: CounterpartAddress | None = None
        if cells is not None:
            key = tuple(cells.get(f) for f in ADDRESS_FIELDS)
            checked = self._addresses.get(key)
            if checked is None:
                try:
                    checked = CounterpartAddress.model_validate(cells)
                except ValidationError as exc:
                    checked = explain(exc, _TO_COLUMN)
                self._addresses[key] = checked
            if isinstance(checked, str):
                problems.append(checked)
            else:
                address = checked

        named = self.named.get(row.counterpart_name)
        if named is None:
            named = self.named[row.counterpart_name] = Named(row.counterpart_name, line)
        if "counterpart_type" in row.model_fields_set:
            if named.type_line is None:
                named.type, named.type_line = row.counterpart_type, line
            elif row.counterpart_type != named.type:
                problems.append(
                    f"counterpart_type: line {named.type_line} gives {named.type} for "
                    f"{named.name!r}"
                )
        for column, attribute in (("counterpart_email", "email"), ("counterpart_tax_id", "tax_id")):
            value = getattr(row, column)
            first = getattr(named, attribute)
            if value is None:
                continue
            if first is None:
                setattr(named, attribute, (value, line))
            elif first[0] != value:
                problems.append(f"{column}: line {first[1]} gives {first[0]!r} for {named.name!r}")
        if not problems:
            named.good_rows += 1
            if key is not None and address is not None:
                named.addresses.setdefault(key, address)
        return problems, key

    def payload(self, named: Named) -> CounterpartCreatePayload | str:
        """What creating ``named`` takes, or why it cannot be created."""
        if not named.addresses:
            return (
                f"counterpart {named.name!r} is new: give its address (address_line1, city, "
                "postal_code, country) on at least one of its rows"
            )
        details: dict[str, Any] = {
            "email": named.email[0] if named.email else None,
            "is_customer": self.customer,
            "is_vendor": not self.customer,
            "address": next(iter(named.addresses.values())),
        }
        if named.type == "individual":
            first, _, last = named.name.rpartition(" ")
            if not first:
                return (
                    f"counterpart_name: an individual needs a first and a last name "
                    f"(like 'Ada Lovelace'), not {named.name!r}"
                )
            details |= {"first_name": first, "last_name": last}
        else:
            details["legal_name"] = named.name
        try:
            return _PAYLOAD.validate_python(
                {
                    "type": named.type,
                    named.type: details,
                    "tax_id": named.tax_id[0] if named.tax_id else None,
                }
            )
        except ValidationError as exc:
            return f"counterpart {named.name!r} cannot be created: {explain(exc, _TO_COLUMN)}"


@dataclass
class Resolution:
    by_name: dict[str, Resolved]
    errors: list[RowError]
    new_counterparts: list[Counterpart]
    new_addresses: list[Address]

    @property
    def reused(self) -> int:
        return sum(not r.created for r in self.by_name.values())


async def resolve(
    session: AsyncSession, entity: Entity, book: CounterpartBook, *, now: datetime
) -> Resolution:
    """Find each named counterpart in the entity or prepare it (and every address the rows
    give that it lacks) for insertion. Nothing is written."""
    existing = await _existing(session, entity.id, list(book.named))
    known = await _addresses(session, [c.id for c in existing.values()])
    result = Resolution({}, [], [], [])
    for name, named in book.named.items():
        if not named.good_rows:
            continue
        counterpart = existing.get(name)
        addresses: dict[AddressKey | None, Address | None]
        if counterpart is not None:
            if named.type_line is not None and named.type != counterpart.type:
                result.errors.append(
                    RowError(
                        named.type_line,
                        f"counterpart_type: {name!r} is an {counterpart.type} in this entity",
                    )
                )
                continue
            own = known.get(counterpart.id, {})
            default = next(
                (a for a in own.values() if a.id == counterpart.default_billing_address_id), None
            )
            addresses = {None: default}
            for key, address in own.items():
                addresses[key] = address
            created = False
        else:
            payload = book.payload(named)
            if isinstance(payload, str):
                result.errors.append(RowError(named.line, payload))
                continue
            counterpart, default = build_counterpart(entity, payload, created_by=None)
            counterpart.counterpart_name = counterpart.name
            counterpart.deleted_at = counterpart.default_shipping_address_id = None
            counterpart.created_at = counterpart.updated_at = now
            result.new_counterparts.append(counterpart)
            result.new_addresses.append(default)
            first = next(iter(named.addresses))
            addresses = {None: default, first: default}
            created = True
        for key, given in named.addresses.items():
            if key not in addresses:
                address = addresses[key] = new_address(counterpart.id, given)
                result.new_addresses.append(address)
        result.by_name[name] = Resolved(counterpart, created, addresses)
    for address in result.new_addresses:
        address.created_at = address.updated_at = now
    return result


async def _existing(
    session: AsyncSession, entity_id: uuid.UUID, names: list[str]
) -> dict[str, Counterpart]:
    """The entity's oldest live counterpart of each name."""
    found: dict[str, Counterpart] = {}
    for chunk in chunks(names):
        rows = await session.scalars(
            select(Counterpart)
            .where(
                Counterpart.entity_id == entity_id,
                Counterpart.deleted_at.is_(None),
                Counterpart.counterpart_name.in_(chunk),
            )
            .order_by(Counterpart.created_at, Counterpart.id)
        )
        for counterpart in rows:
            found.setdefault(counterpart.counterpart_name, counterpart)
    return found


async def _addresses(
    session: AsyncSession, counterpart_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[AddressKey, Address]]:
    """Every address of these counterparts, by counterpart and by its fields."""
    found: dict[uuid.UUID, dict[AddressKey, Address]] = {}
    for chunk in chunks(counterpart_ids):
        rows = await session.scalars(
            select(Address)
            .where(Address.counterpart_id.in_(chunk))
            .order_by(Address.created_at, Address.id)
        )
        for address in rows:
            key = tuple(getattr(address, f) for f in ADDRESS_FIELDS)
            found.setdefault(address.counterpart_id, {}).setdefault(key, address)
    return found
