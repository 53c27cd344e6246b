"""The audit log: every operator action, whichever surface it came through (the console, the
lender API, the CLI), with the object before and after it. Written by the lender API's
service functions in the action's own transaction, so an action and its entry stand or fall
together."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.backoffice.schemas import AuditEntryView, AuditListParams, AuditListResponse
from fundline.kit.filters import apply_filters
from fundline.kit.pagination import Paginator
from fundline.models import AuditEntry, FinancingInvoice, FinancingOffer

# What an entry keeps of each kind of object: the fields an operator action changes.
INVOICE_FIELDS = (
    "status",
    "approved_at",
    "requested_amount",
    "repayment_amount",
    "repaid_amount",
    "funded_at",
    "closed_at",
)
OFFER_FIELDS = ("status", "total_amount", "reserved_amount", "outstanding_amount")


def snapshot(obj: FinancingInvoice | FinancingOffer) -> dict[str, Any]:
    """The audited fields of ``obj``, JSON-ready."""
    fields = INVOICE_FIELDS if isinstance(obj, FinancingInvoice) else OFFER_FIELDS
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    if isinstance(obj, FinancingOffer):
        out["available_amount"] = obj.available_amount
    return out


async def record(
    session: AsyncSession,
    *,
    operator: str,
    action: str,
    object_type: str,
    object_id: uuid.UUID | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        operator=operator[:255],
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        note=note[:500] if note else None,
    )
    session.add(entry)
    await session.flush()
    return entry


async def change(
    session: AsyncSession,
    operator: str,
    action: str,
    obj: FinancingInvoice | FinancingOffer,
    before: dict[str, Any],
    *,
    note: str | None = None,
) -> None:
    """The entry of ``action`` on ``obj``, whose audited fields were ``before``."""
    await record(
        session,
        operator=operator,
        action=action,
        object_type="financing_invoice" if isinstance(obj, FinancingInvoice) else "financing_offer",
        object_id=obj.id,
        before=before,
        after=snapshot(obj),
        note=note,
    )


AUDIT_COLUMNS: dict[str, Any] = {
    "operator": AuditEntry.operator,
    "action": AuditEntry.action,
    "object_id": AuditEntry.object_id,
    "at": AuditEntry.at,
}


async def list_entries(
    session: AsyncSession, paginator: Paginator, params: AuditListParams
) -> AuditListResponse:
    """One page of the log, by time (newest first by default), filtered."""
    params, cursor = paginator.resolve(params)
    stmt: Select[Any] = apply_filters(select(AuditEntry), params, AUDIT_COLUMNS)
    page = await paginator.fetch(
        session,
        stmt,
        params=params,
        cursor=cursor,
        sort_column=AuditEntry.at,
        id_column=AuditEntry.id,
    )
    return AuditListResponse.of(page, [AuditEntryView.model_validate(e) for e in page.data])
