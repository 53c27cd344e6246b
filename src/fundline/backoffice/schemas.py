"""Wire models of the lender API. Not Monite's: the operator's view across every entity."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fundline.financing.schemas import FinancingInvoiceType
from fundline.kit.filters import UTCDatetime
from fundline.kit.inputs import QueryList
from fundline.kit.money import Amount
from fundline.kit.pagination import ListParams, Order, PaginationResponse
from fundline.models.financing import WCInvoiceStatus, WCOfferStatus


class CreatedAtCursor(StrEnum):
    CREATED_AT = "created_at"


class FinancingInvoiceListParams(ListParams):
    sort: CreatedAtCursor | None = None
    status: WCInvoiceStatus | None = None
    status__in: QueryList[WCInvoiceStatus] | None = None
    entity_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    type: FinancingInvoiceType | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None


class FinancingInvoiceView(BaseModel):
    """A financing invoice as the lender sees it; amounts in minor units, rates in bp."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    entity_id: uuid.UUID
    offer_id: uuid.UUID
    request_id: uuid.UUID
    pricing_plan_id: uuid.UUID | None
    invoice_id: uuid.UUID
    type: str
    status: WCInvoiceStatus
    approved: bool = Field(
        description=(
            "A NEW invoice the operator approved, waiting to be funded (manual review without "
            "auto_fund). Always false in other statuses."
        )
    )
    document_id: str
    issue_date: date
    due_date: date
    total_amount: int
    currency: str
    payer_type: str
    payer_business_name: str | None
    payer_first_name: str | None
    payer_last_name: str | None
    advance_rate_percentage: int | None
    fee_percentage: int | None
    requested_amount: int | None
    fee_amount: int | None
    principal_amount: int | None
    repayment_amount: int | None
    repaid_amount: int
    outstanding_amount: int = Field(
        description="What is owed now: repayment - repaid once funded; 0 before and once closed."
    )
    repayment_date: date | None
    confirmed_at: datetime | None
    funded_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InstalmentView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sequence: int
    due_date: date
    amount: int
    fee_amount: int
    principal_amount: int
    paid_amount: int


class StatusChangeView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: WCInvoiceStatus | None
    to_status: WCInvoiceStatus
    cause: str
    at: datetime


class FinancingInvoiceDetail(FinancingInvoiceView):
    instalments: list[InstalmentView]
    history: list[StatusChangeView]


class LenderFinancingInvoiceList(PaginationResponse[FinancingInvoiceView]):
    pass


class FinancingOfferListParams(ListParams):
    sort: CreatedAtCursor | None = None
    status: WCOfferStatus | None = None
    status__in: QueryList[WCOfferStatus] | None = None
    entity_id: uuid.UUID | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None


class FinancingOfferView(BaseModel):
    """A credit line: ``available = total - reserved - outstanding`` (minor units)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    business_id: uuid.UUID
    entity_id: uuid.UUID
    status: WCOfferStatus
    currency: str
    total_amount: int
    reserved_amount: int = Field(description="Confirmed invoices not funded yet (NEW).")
    outstanding_amount: int = Field(description="What funded invoices still owe.")
    available_amount: int
    expires_at: datetime = Field(description="Until when a NEW offer can be accepted.")
    accepted_at: datetime | None
    issued_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FinancingOfferListResponse(PaginationResponse[FinancingOfferView]):
    pass


class RepaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount = Field(
        gt=0, strict=True, description="Minor units received; at most what is still owed."
    )


class AuditListParams(ListParams):
    order: Order = Field(Order.DESC, description="Newest first by default.")
    sort: Literal["at"] | None = None
    operator: str | None = Field(None, max_length=255)
    action: str | None = Field(None, max_length=64)
    object_id: uuid.UUID | None = None
    at__gte: UTCDatetime | None = None
    at__lt: UTCDatetime | None = None


class AuditEntryView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    operator: str = Field(description="The operator key's name (`cli` for the command line).")
    action: str = Field(description="approve, reject, fund, record_repayment, write_off, ...")
    object_type: str
    object_id: uuid.UUID | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None = Field(description="A rejection's reason, a repayment's amount.")
    at: datetime


class AuditListResponse(PaginationResponse[AuditEntryView]):
    pass


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, min_length=1, max_length=500, description="Why, for the business's record."
    )


class LedgerListParams(ListParams):
    sort: CreatedAtCursor | None = None
    financing_invoice_id: uuid.UUID | None = None
    entity_id: uuid.UUID | None = None
    kind: str | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None


class PostingView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account: str
    amount: int = Field(description="Debit positive, credit negative (minor units).")
    currency: str


class JournalEntryView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    entity_id: uuid.UUID
    financing_invoice_id: uuid.UUID | None
    kind: str
    currency: str
    memo: str
    created_at: datetime
    postings: list[PostingView]


class LedgerListResponse(PaginationResponse[JournalEntryView]):
    pass


class AccountTotal(BaseModel):
    currency: str
    account: str
    amount: int


class ReconciliationResponse(BaseModel):
    clean: bool = Field(description="No difference found and every currency balances to zero.")
    differences: list[dict[str, Any]] = Field(
        description="Every disagreement between the ledger and the financing invoices."
    )
    totals: list[AccountTotal] = Field(description="The balance of each account per currency.")
    unbalanced_currencies: list[str] = Field(
        description="Currencies whose postings do not sum to zero (should never happen)."
    )


class PartnerOriginCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin: str = Field(
        description=(
            "scheme://host[:port], http or https, no path; stored lower case, without a "
            "trailing slash or a default port."
        ),
        examples=["https://app.example.com"],
    )


class PartnerOriginView(BaseModel):
    """A web origin the partner may embed the Connect widget from."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    origin: str
    created_at: datetime


class PartnerOriginListResponse(BaseModel):
    data: list[PartnerOriginView]
