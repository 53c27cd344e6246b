"""The CSV files ``fundline import`` reads: their columns, the header check and row parsing.

A file is UTF-8 (an Excel byte-order mark is fine), comma-separated, with a header row naming
its columns in any order. Cells are stripped; an empty cell is an absent value. Every problem is
reported against the line it is on (the header is line 1), and the file is checked whole before
anything is written. docs/import.md describes the columns for users; this module is the truth.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from fundline.models.payable import PayableStatus
from fundline.receivables.schemas import BasisPoints, CurrencyCode, Days

# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad line of a file and everything wrong with it."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class FileRejected(Exception):
    """The file cannot be imported; ``errors`` says where and why, in line order."""

    def __init__(self, errors: Sequence[RowError], *, rows: int = 0) -> None:
        # One error per line, its reasons in the order they were found.
        reasons: dict[int, list[str]] = {}
        for error in errors:
            found = reasons.setdefault(error.line, [])
            if error.reason not in found:
                found.append(error.reason)
        self.errors = [RowError(line, "; ".join(reasons[line])) for line in sorted(reasons)]
        self.rows = rows  # data rows read, 0 when the header or the file itself is the problem
        super().__init__(f"{len(self.errors)} bad line(s)")


# --- columns ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    required: bool = False


COUNTERPART_COLUMNS = (
    Column("counterpart_name", required=True),
    Column("counterpart_type"),
    Column("counterpart_email"),
    Column("counterpart_tax_id"),
    Column("address_line1"),
    Column("address_line2"),
    Column("city"),
    Column("state"),
    Column("postal_code"),
    Column("country"),
)
ADDRESS_COLUMNS = ("address_line1", "address_line2", "city", "state", "postal_code", "country")


@dataclass(frozen=True)
class FileSpec:
    kind: str
    columns: tuple[Column, ...]
    # Groups of columns the header needs at least one of.
    one_of: tuple[tuple[str, ...], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def header_problems(self, header: Sequence[str]) -> list[str]:
        problems: list[str] = []
        seen: set[str] = set()
        for name in header:
            if not name:
                problems.append("a column has no name")
            elif name in seen:
                problems.append(f"column {name} appears twice")
            seen.add(name)
        unknown = [n for n in dict.fromkeys(header) if n and n not in self.names]
        if unknown:
            problems.append(
                f"unknown column(s) {', '.join(unknown)} (the columns of a {self.kind} "
                f"file are {', '.join(self.names)})"
            )
        missing = [c.name for c in self.columns if c.required and c.name not in seen]
        if missing:
            problems.append(f"missing required column(s) {', '.join(missing)}")
        for group in self.one_of:
            if not seen & set(group):
                problems.append(f"needs one of the columns {' or '.join(group)}")
        return problems


RECEIVABLES = FileSpec(
    "receivables",
    (
        *COUNTERPART_COLUMNS,
        Column("document_id"),
        Column("currency", required=True),
        Column("product_name", required=True),
        Column("description"),
        Column("measure_unit"),
        Column("quantity"),
        Column("unit_price", required=True),
        Column("tax_rate"),
        Column("issue_date"),
        Column("due_date"),
        Column("payment_terms_days"),
        Column("memo"),
    ),
    one_of=(("due_date", "payment_terms_days"),),
)

PAYABLES = FileSpec(
    "payables",
    (
        *COUNTERPART_COLUMNS,
        Column("document_id", required=True),
        Column("currency", required=True),
        Column("subtotal"),
        Column("tax_rate"),
        Column("tax_amount"),
        Column("total_amount"),
        Column("issued_at"),
        Column("due_date"),
        Column("payment_terms_days"),
        Column("description"),
        Column("status"),
    ),
    one_of=(("subtotal", "total_amount"), ("due_date", "payment_terms_days")),
)


# --- reading ---------------------------------------------------------------------------------

Cells = dict[str, str]


def read_file(path: Path, spec: FileSpec) -> tuple[list[tuple[int, Cells]], list[RowError]]:
    """The data rows of ``path`` as ``(line, {column: cell})``, and the lines that are not rows
    of this header. Raises ``FileRejected`` when the file or its header is unusable."""
    header: list[str] | None = None
    rows: list[tuple[int, Cells]] = []
    errors: list[RowError] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, strict=True)
            try:
                for line, record in _records(reader):
                    if header is None:
                        header = [name.strip().lower() for name in record]
                        problems = spec.header_problems(header)
                        if problems:
                            raise FileRejected([RowError(line, p) for p in problems])
                    elif len(record) != len(header):
                        errors.append(
                            RowError(
                                line, f"has {len(record)} fields, the header has {len(header)}"
                            )
                        )
                    else:
                        rows.append((line, dict(zip(header, map(str.strip, record), strict=True))))
            except _CsvError as exc:
                errors.append(RowError(exc.line, f"not valid CSV ({exc}); reading stopped"))
    except UnicodeDecodeError as exc:
        raise FileRejected([RowError(1, f"the file is not UTF-8 text ({exc.reason})")]) from exc
    except OSError as exc:
        raise FileRejected([RowError(1, f"cannot read {path}: {exc.strerror}")]) from exc
    if header is None:
        raise FileRejected([RowError(1, "the file is empty: it needs a header row")])
    if not rows and not errors:
        raise FileRejected([RowError(1, "the file has a header but no rows")])
    return rows, errors


class _CsvError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the line each starts on (a quoted cell may span lines)."""
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvError(start, str(exc)) from exc
        if any(cell.strip() for cell in record):
            yield start, record


# --- cells -----------------------------------------------------------------------------------

_DECIMAL = re.compile(r"\d+(\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _decimal(value: Any) -> Any:
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise PydanticCustomError(
                "decimal", "{value} is not a decimal number like 1250.00", {"value": repr(value)}
            )
        return Decimal(value)
    return value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "date", "{value} is not a date (YYYY-MM-DD)", {"value": repr(value)}
            ) from None
    return value


def _collapse(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


DecimalCell = Annotated[Decimal, BeforeValidator(_decimal)]
"""A non-negative decimal, exact (``1250.00``, never a float): amounts are in major units of
the row's currency, converted to minor units with ``kit.money.from_major``."""
DateCell = Annotated[date, BeforeValidator(_date)]
Name = Annotated[str, BeforeValidator(_collapse), Field(min_length=1)]
Text = Annotated[str, Field(min_length=1)]


class Row(BaseModel):
    """One data row. Blank cells are dropped before validation: a blank required cell is
    "required", a blank optional one is ``None``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_blank(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != ""}
        return data


R = TypeVar("R", bound=Row)


class CounterpartCells(Row):
    """The counterpart a row names (created when the entity has none of that name)."""

    counterpart_name: Name
    counterpart_type: Literal["organization", "individual"] = "organization"
    counterpart_email: Text | None = None
    counterpart_tax_id: Text | None = None
    address_line1: Text | None = None
    address_line2: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postal_code: Text | None = None
    country: Text | None = None

    def address_cells(self) -> dict[str, str] | None:
        """The address the row gives (with Monite's field names), ``None`` if it gives none."""
        cells = {
            name.removeprefix("address_"): getattr(self, name)
            for name in ADDRESS_COLUMNS
            if getattr(self, name) is not None
        }
        return cells or None


def _one_due_date(row: ReceivableRow | PayableRow) -> None:
    if (row.due_date is None) == (row.payment_terms_days is None):
        raise PydanticCustomError(
            "due", "give either due_date or payment_terms_days (exactly one of them)"
        )


class ReceivableRow(CounterpartCells):
    """One issued invoice with one line."""

    document_id: Text | None = None
    currency: CurrencyCode
    product_name: Text
    description: Text | None = None
    measure_unit: Text | None = None
    quantity: DecimalCell = Decimal(1)
    unit_price: DecimalCell
    tax_rate: BasisPoints = 0
    issue_date: DateCell | None = None
    due_date: DateCell | None = None
    payment_terms_days: Days | None = None
    memo: Text | None = None

    @model_validator(mode="after")
    def _due(self) -> ReceivableRow:
        _one_due_date(self)
        return self


# The statuses an imported payable may be created in.
PAYABLE_TARGETS = (
    PayableStatus.NEW,
    PayableStatus.APPROVE_IN_PROGRESS,
    PayableStatus.WAITING_TO_BE_PAID,
)


def _payable_target(value: Any) -> Any:
    """Refused as a ``Literal`` of the targets would refuse it, naming them."""
    if value not in PAYABLE_TARGETS:
        *others, last = (repr(target.value) for target in PAYABLE_TARGETS)
        raise PydanticCustomError(
            "literal_error",
            "Input should be {expected}",
            {"expected": f"{', '.join(others)} or {last}"},
        )
    return value


PayableTarget = Annotated[PayableStatus, BeforeValidator(_payable_target)]


class PayableRow(CounterpartCells):
    """One payable (a vendor's invoice)."""

    document_id: Text
    currency: CurrencyCode
    subtotal: DecimalCell | None = None
    tax_rate: BasisPoints | None = None
    tax_amount: DecimalCell | None = None
    total_amount: DecimalCell | None = None
    issued_at: DateCell | None = None
    due_date: DateCell | None = None
    payment_terms_days: Days | None = None
    description: Text | None = None
    status: PayableTarget = PayableStatus.WAITING_TO_BE_PAID

    @model_validator(mode="after")
    def _amounts_and_due(self) -> PayableRow:
        if self.subtotal is None and self.total_amount is None:
            raise PydanticCustomError("amount", "give subtotal or total_amount")
        _one_due_date(self)
        return self


def parse_row(model: type[R], cells: Cells) -> R | str:
    """The row as ``model``, or its problems, each named by its column."""
    try:
        return model.model_validate(cells)
    except ValidationError as exc:
        return explain(exc)


# --- messages --------------------------------------------------------------------------------


def explain(exc: ValidationError, columns: Mapping[str, str] | None = None) -> str:
    """The problems of a validation error as ``column: message; …``."""
    return "; ".join(_one(error, columns or {}) for error in exc.errors(include_url=False))


def column_of(loc: Sequence[str | int], columns: Mapping[str, str]) -> str:
    """The file's column for a model's error location: ``columns`` maps a dotted path
    (``product.price.value``) or a last field name (``tax``) to it; other names stay."""
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return ""
    return columns.get(".".join(names)) or columns.get(names[-1], names[-1])


def _one(error: ErrorDetails, columns: Mapping[str, str]) -> str:
    column = column_of(error["loc"], columns)
    kind = error["type"]
    if kind == "missing":
        message = "required"
    elif kind == "literal_error" and column == "country":
        message = f"{error['input']!r} is not an ISO 3166-1 alpha-2 country code"
    elif kind == "literal_error":
        message = f"{error['input']!r} is not allowed: {_lowercase_first(error['msg'])}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return f"{column}: {message}" if column else message


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]
