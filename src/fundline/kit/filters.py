"""Monite's query filters: ``field``, ``field__in``, ``__not_in``, ``__gt``, ``__gte``, ``__lt``,
``__lte``, ``__contains``, ``__icontains``, ``__istartswith``, ``__iexact``.

An endpoint declares its filters as fields of a ``ListParams`` subclass named as Monite names
them, and maps each base name to a column; ``apply_filters`` turns every set field into a
condition. Multiple filters combine with AND.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import ColumnElement, Select, bindparam, func
from sqlalchemy.orm import InstrumentedAttribute

from fundline.kit.pagination import ListParams

Column = InstrumentedAttribute[Any] | ColumnElement[Any]

_OPERATORS: dict[str, Callable[[Column, Any], ColumnElement[bool]]] = {
    "": lambda c, v: c == v,
    "in": lambda c, v: c.in_(list(v)),
    "not_in": lambda c, v: c.not_in(list(v)),
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "contains": lambda c, v: _contains(c, str(v)),
    "icontains": lambda c, v: func.lower(c).contains(str(v).lower(), autoescape=True),
    "istartswith": lambda c, v: func.lower(c).startswith(str(v).lower(), autoescape=True),
    "iexact": lambda c, v: func.lower(c) == str(v).lower(),
}

_PAGING_FIELDS = frozenset(ListParams.model_fields)


def _contains(column: Column, value: str) -> ColumnElement[bool]:
    """Case-sensitive substring match on both databases.

    SQLite's LIKE ignores ASCII case, so ``column.contains()`` would behave like ``icontains``
    there. ``replace()`` is case-sensitive everywhere: the value occurs in the column exactly
    when removing it changes the column.
    """
    if not value:
        return column.is_not(None)
    return func.replace(column, value, "") != column


def split_filter(name: str) -> tuple[str, str]:
    """``"due_date__gte"`` → ``("due_date", "gte")``; ``"status"`` → ``("status", "")``."""
    base, sep, op = name.rpartition("__")
    if sep and op in _OPERATORS:
        return base, op
    return name, ""


def apply_filters(
    stmt: Select[Any], params: ListParams, columns: Mapping[str, Column]
) -> Select[Any]:
    """Add a WHERE condition for every filter set in ``params``.

    Raises ``KeyError`` at development time if a declared filter has no column mapped.
    """
    for name, value in params:
        if name in _PAGING_FIELDS or value is None:
            continue
        base, op = split_filter(name)
        stmt = stmt.where(_OPERATORS[op](columns[base], _plain(value)))
    return stmt


# A filter as a compiled statement sees it: (parameter name, column base name, operator, number
# of values for list operators or -1). The values go in apart, under the parameter name (lists
# as ``name_0``, ``name_1``, …), so one statement serves every request of the same shape.
BoundFilter = tuple[str, str, str, int]
_BINDABLE = frozenset({"", "in", "not_in", "gt", "gte", "lt", "lte"})


def bind_filters(
    params: ListParams, *, skip: frozenset[str] = frozenset()
) -> tuple[list[BoundFilter], dict[str, Any]]:
    """The filters set in ``params`` (but ``skip``) and their values, for ``bound_conditions``."""
    shape: list[BoundFilter] = []
    values: dict[str, Any] = {}
    for name, value in params:
        if name in _PAGING_FIELDS or name in skip or value is None:
            continue
        base, op = split_filter(name)
        plain = _plain(value)
        if isinstance(plain, list):
            shape.append((name, base, op, len(plain)))
            values.update((f"{name}_{i}", item) for i, item in enumerate(plain))
        else:
            shape.append((name, base, op, -1))
            values[name] = plain
    return shape, values


def bound_conditions(
    shape: Sequence[BoundFilter], columns: Mapping[str, Column]
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``bind_filters``' shape, with a named parameter for each value."""
    conditions = []
    for name, base, op, count in shape:
        if op not in _BINDABLE:
            raise ValueError(f"the {op!r} filter cannot be bound")
        column = columns[base]
        value: Any = (
            [bindparam(f"{name}_{i}", type_=column.type) for i in range(count)]
            if count >= 0
            else bindparam(name, type_=column.type)
        )
        conditions.append(_OPERATORS[op](column, value))
    return conditions


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [getattr(v, "value", v) for v in value]
    return getattr(value, "value", value)


def _assume_utc(value: datetime) -> datetime:
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)  # the databases compare in UTC
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is in year 0 in UTC, which no database column holds.
        raise ValueError("the date-time is out of range once converted to UTC") from None
    return value


# A date-time filter value; one without an offset is taken as UTC, as Monite's timestamps are.
# Its UTC value must lie within years 1 to 9999.
UTCDatetime = Annotated[datetime, AfterValidator(_assume_utc)]
