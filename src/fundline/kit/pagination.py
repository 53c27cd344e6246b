"""Cursor pagination as Monite has it: keyset on the sort field plus id, opaque signed tokens.

A token carries the query that produced the first page (filters, sort, order, limit), the
cursor (sort value and id of the edge row) and the direction. It is signed, so a client can
neither forge a cursor nor change the filters mid-way; a tampered token is a 400. When a token
is given, every other query parameter is ignored, as Monite documents.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, bindparam, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fundline.kit.errors import BadRequest
from fundline.kit.security import Signer

T = TypeVar("T")
P = TypeVar("P", bound="ListParams")


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class ListParams(BaseModel):
    """Query parameters every list endpoint takes; endpoints subclass it with their filters."""

    model_config = ConfigDict(extra="forbid")

    order: Order = Field(
        Order.ASC,
        description="Sort order (ascending by default). Typically used together with `sort`.",
    )
    limit: int = Field(
        100, ge=1, le=100, description="The number of items (1 .. 100) to return in one page."
    )
    pagination_token: str | None = Field(
        None,
        description=(
            "A pagination token obtained from a previous call to this endpoint. If given, all "
            "other query parameters are ignored and inferred from the initial query."
        ),
    )
    sort: str | None = Field(None, description="The field to sort the results by.")


@dataclass(frozen=True, slots=True)
class Cursor:
    value: Any
    id: str
    forward: bool  # True: rows after the cursor ("next"), False: rows before it ("prev")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: Sequence[T]
    next_pagination_token: str | None
    prev_pagination_token: str | None


class PaginationResponse(BaseModel, Generic[T]):
    """A list endpoint's response: one page of ``data`` and the tokens of its neighbours.

    Each list subclasses it under Monite's name for its schema (``CounterpartPaginationResponse``
    and so on), which is the name the OpenAPI document shows.
    """

    data: list[T]
    next_pagination_token: str | None = None
    prev_pagination_token: str | None = None

    @classmethod
    def of(cls, page: Page[Any], data: list[T]) -> Self:
        """The response of ``page``, its rows rendered as ``data``."""
        return cls(
            data=data,
            next_pagination_token=page.next_pagination_token,
            prev_pagination_token=page.prev_pagination_token,
        )


class Paginator:
    """Resolves tokens and runs keyset queries for one list endpoint (``purpose``)."""

    def __init__(self, signer: Signer, purpose: str) -> None:
        self.signer = signer
        self.purpose = "page:" + purpose

    def resolve(self, params: P) -> tuple[P, Cursor | None]:
        """The effective parameters: those of the token when one is given."""
        if not params.pagination_token:
            return params.model_copy(update={"pagination_token": None}), None
        try:
            payload = self.signer.loads(params.pagination_token, purpose=self.purpose)
            effective = type(params).model_validate(payload["q"])
            cursor = Cursor(payload["v"], str(payload["i"]), bool(payload["f"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest("The pagination token is invalid") from exc
        return effective, cursor

    def _token(self, params: ListParams, row_value: Any, row_id: Any, forward: bool) -> str:
        query = params.model_dump(mode="json", exclude={"pagination_token"}, exclude_none=True)
        return self.signer.dumps(
            {"q": query, "v": _to_json(row_value), "i": str(row_id), "f": forward},
            purpose=self.purpose,
        )

    async def fetch(
        self,
        session: AsyncSession,
        stmt: Select[Any],
        *,
        params: ListParams,
        cursor: Cursor | None,
        sort_column: InstrumentedAttribute[Any],
        id_column: InstrumentedAttribute[Any],
    ) -> Page[Any]:
        """One page of ``stmt`` (already filtered and tenant-scoped), with its tokens.

        Rows are read with one query of ``limit + 1`` to learn whether more exist. A "prev"
        page is read in reverse order from the cursor, then turned back.
        """
        conditions, order = keyset(sort_column, id_column, params=params, cursor=cursor)
        values = cursor_values(sort_column, id_column, cursor)
        stmt = stmt.where(*conditions).order_by(*order).limit(params.limit + 1)
        result = await session.execute(stmt, values)
        # A statement of one ORM entity pages objects; one of columns pages rows.
        described = stmt.column_descriptions
        whole_objects = len(described) == 1 and described[0]["entity"] is described[0]["type"]
        rows: list[Any] = list(result.scalars().all() if whole_objects else result.all())

        def edge(row: Any) -> tuple[Any, Any]:
            if whole_objects:
                return getattr(row, sort_column.key), getattr(row, id_column.key)
            return row._mapping[sort_column.key], row._mapping[id_column.key]

        return self.page(rows, params=params, cursor=cursor, edge=edge)

    def page(
        self,
        rows: list[T],
        *,
        params: ListParams,
        cursor: Cursor | None,
        edge: Callable[[T], tuple[Any, Any]],
    ) -> Page[T]:
        """The page of up to ``limit + 1`` rows read in ``keyset``'s order, with its tokens."""
        forward = cursor is None or cursor.forward
        more = len(rows) > params.limit
        rows = rows[: params.limit]
        if not forward:
            rows.reverse()
        if not rows:
            return Page([], None, None)
        has_next = more if forward else True
        has_prev = cursor is not None if forward else more
        next_token = self._token(params, *edge(rows[-1]), True) if has_next else None
        prev_token = self._token(params, *edge(rows[0]), False) if has_prev else None
        return Page(rows, next_token, prev_token)


def keyset(
    sort_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    *,
    params: ListParams,
    cursor: Cursor | None,
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[Any]]]:
    """The WHERE conditions (the cursor as parameters ``cursor_value`` and ``cursor_id``, see
    ``cursor_values``) and ORDER BY that read a page: from the cursor on, in reverse for a
    "prev" page. They depend only on the shape of the request, not its values."""
    forward = cursor is None or cursor.forward
    read_ascending = (params.order is Order.ASC) == forward
    conditions: list[ColumnElement[bool]] = []
    if cursor is not None:
        key = tuple_(sort_column, id_column)
        bound = tuple_(
            bindparam("cursor_value", type_=sort_column.type),
            bindparam("cursor_id", type_=id_column.type),
        )
        conditions.append(key > bound if read_ascending else key < bound)
    if read_ascending:
        return conditions, [sort_column.asc(), id_column.asc()]
    return conditions, [sort_column.desc(), id_column.desc()]


def cursor_values(
    sort_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    cursor: Cursor | None,
) -> dict[str, Any]:
    if cursor is None:
        return {}
    return {
        "cursor_value": _from_json(sort_column, cursor.value),
        "cursor_id": _from_json(id_column, cursor.id),
    }


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _from_json(column: InstrumentedAttribute[Any], value: Any) -> Any:
    """Turn a cursor value back into the column's Python type."""
    python_type = column.type.python_type
    if value is None:
        return None
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    if python_type is uuid.UUID:
        return uuid.UUID(str(value))
    return python_type(value)
