"""Wire models for the four financing endpoints, with Monite's names (FinancingTokenResponse,
FinancingOffersResponse, FinancingPushInvoicesRequest/Response, FinancingInvoice and the
GET /financing_invoices query). Fields Monite lacks are additions, never changes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fundline.kit.filters import UTCDatetime
from fundline.kit.inputs import Int64, QueryList
from fundline.kit.pagination import ListParams, PaginationResponse
from fundline.models.financing import WCBusinessStatus, WCInvoiceStatus, WCOfferStatus


class FinancingInvoiceType(StrEnum):
    PAYABLE = "payable"
    RECEIVABLE = "receivable"


class WCRepaymentType(StrEnum):
    MULTIPLE_DURATION = "MULTIPLE_DURATION"
    FIXED_DURATION = "FIXED_DURATION"
    FIXED_DATE = "FIXED_DATE"


class FinancingInvoiceCursorFields(StrEnum):
    ID = "id"
    CREATED_AT = "created_at"


# --- tokens and offers ------------------------------------------------------------------------


class FinancingTokenResponse(BaseModel):
    connect_token: str = Field(description="A one-time connect token for the Connect widget.")


class PricingPlan(BaseModel):
    """Monite's ``PricingPlan``; ``id``, ``instalments`` and ``grace_days`` are additions."""

    id: uuid.UUID = Field(description="The plan's ID, chosen when confirming invoices.")
    advance_rate_percentage: int = Field(description="Advance rate percentage. 10000 means 100%")
    fee_percentage: int = Field(description="Transaction fee percentage. 300 means 3.00%")
    repayment_type: WCRepaymentType
    repayment_duration_days: int | None = Field(
        None, description="Days after funding when the repayment is due."
    )
    instalments: int = Field(1, description="Number of repayment instalments.")
    grace_days: int = Field(0, description="FIXED_DATE: days after the invoice's due date.")


class FinancingOffer(BaseModel):
    """Monite's ``FinancingOffer``; ``id`` and ``expires_at`` are additions."""

    id: uuid.UUID
    status: WCOfferStatus
    total_amount: int = Field(description="The total credit limit in minor units.")
    available_amount: int = Field(description="The available credit limit in minor units.")
    currency: str
    pricing_plans: list[PricingPlan]
    expires_at: datetime


class FinancingOffersResponse(BaseModel):
    business_status: WCBusinessStatus
    offers: list[FinancingOffer]


# --- requesting financing ---------------------------------------------------------------------


class FinancingPushInvoicesRequestInvoice(BaseModel):
    id: uuid.UUID = Field(description="The invoice ID.")
    type: FinancingInvoiceType = Field(description="The invoice type.")


class FinancingPushInvoicesRequest(BaseModel):
    invoices: Annotated[
        list[FinancingPushInvoicesRequestInvoice], Field(min_length=1, max_length=10)
    ] = Field(description="A list of invoices to request financing for.")


class FinancingPushInvoicesResponse(BaseModel):
    connect_token: str = Field(description="A one-time connect token for the Connect widget.")
    session_token: str = Field(
        description="A one-time token that opens the confirmation of these invoices."
    )


# --- financing invoices -----------------------------------------------------------------------


class RepaymentSchedule(BaseModel):
    repayment_date: date
    repayment_amount: int
    repayment_fee_amount: int
    repayment_principal_amount: int


class InstalmentOut(BaseModel):
    sequence: int
    due_date: date
    amount: int
    fee_amount: int
    principal_amount: int
    paid_amount: int


class StatusChangeOut(BaseModel):
    from_status: WCInvoiceStatus | None = Field(None, description="Absent for the first entry.")
    to_status: WCInvoiceStatus
    cause: str
    at: UTCDatetime  # read naive (UTC, as stored) on the list path


class FinancingInvoice(BaseModel):
    """Monite's ``FinancingInvoice``; ``id``, ``instalments`` and ``status_history`` are
    additions (``repayment_schedule`` is the first instalment, ``instalments`` all of them)."""

    id: uuid.UUID = Field(description="The financing invoice's own ID (lender and sandbox APIs).")
    type: FinancingInvoiceType
    status: WCInvoiceStatus
    invoice_id: uuid.UUID
    document_id: str
    issue_date: date
    due_date: date
    total_amount: int
    currency: str
    description: str | None = None
    payer_type: str
    payer_business_name: str | None = None
    payer_first_name: str | None = None
    payer_last_name: str | None = None
    requested_amount: int | None = None
    advance_amount: int | None = None
    advance_rate_percentage: int | None = None
    fee_amount: int | None = None
    fee_percentage: int | None = None
    principal_amount: int | None = None
    repayment_amount: int | None = None
    repayment_schedule: RepaymentSchedule | None = None
    instalments: list[InstalmentOut] = Field(default_factory=list)
    status_history: list[StatusChangeOut] = Field(default_factory=list)
    lender_status: str | None = Field(
        default=None,
        description="A remote lender's own status of this financing (Kanmon's, e.g. "
        "`INVOICE_PENDING_RETURN`), which may say more than `status`; absent under the "
        "built-in lender.",
    )


class FinancingInvoiceListResponse(PaginationResponse[FinancingInvoice]):
    # Monite declares both tokens a plain string: at the ends the keys are left out.
    pass


class FinancingInvoiceListParams(ListParams):
    model_config = ConfigDict(extra="forbid")

    sort: FinancingInvoiceCursorFields | None = None
    invoice_id: uuid.UUID | None = None
    invoice_id__in: QueryList[uuid.UUID] | None = None
    status: WCInvoiceStatus | None = None
    status__in: QueryList[WCInvoiceStatus] | None = None
    type: FinancingInvoiceType | None = None
    type__in: QueryList[FinancingInvoiceType] | None = None
    document_id: str | None = None
    document_id__in: QueryList[str] | None = None
    issue_date__gt: UTCDatetime | None = None
    issue_date__lt: UTCDatetime | None = None
    issue_date__gte: UTCDatetime | None = None
    issue_date__lte: UTCDatetime | None = None
    due_date__gt: UTCDatetime | None = None
    due_date__lt: UTCDatetime | None = None
    due_date__gte: UTCDatetime | None = None
    due_date__lte: UTCDatetime | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
    total_amount: Int64 | None = None
    total_amount__gt: Int64 | None = None
    total_amount__lt: Int64 | None = None
    total_amount__gte: Int64 | None = None
    total_amount__lte: Int64 | None = None
