"""Wire models for payables, with Monite's names (PayableUploadWithDataSchema,
PayableUpdateSchema, PayableResponseSchema and the GET /payables query)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from fundline.kit.filters import UTCDatetime
from fundline.kit.inputs import Int64, QueryList
from fundline.kit.money import Amount, BasisPoints, CurrencyCode
from fundline.kit.pagination import ListParams, PaginationResponse
from fundline.models.payable import PayableStatus

Days = Annotated[int, Field(ge=0, le=10000)]

UNSUPPORTED = "Not supported by Fundline: a request that sets it is refused with a 422."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PayableCursorFields(StrEnum):
    ID = "id"
    CREATED_AT = "created_at"
    ISSUED_AT = "issued_at"


class SourceOfPayableData(StrEnum):
    OCR = "ocr"
    USER_SPECIFIED = "user_specified"
    EINVOICING = "einvoicing"


class OcrStatus(StrEnum):
    PROCESSING = "processing"
    ERROR = "error"
    SUCCESS = "success"
    CANCELED = "canceled"


class PayableOrigin(StrEnum):
    UPLOAD = "upload"
    EMAIL = "email"
    EINVOICING = "einvoicing"


class PaymentTermDiscount(Strict):
    discount: BasisPoints = Field(description="The discount in basis points: 200 means 2%.")
    number_of_days: Days = Field(description="The amount of days after the invoice issue date.")


class PaymentTermFinal(Strict):
    number_of_days: Days = Field(description="The amount of days after the invoice issue date.")


class PaymentTerms(Strict):
    name: str
    description: str | None = None
    term_1: PaymentTermDiscount | None = None
    term_2: PaymentTermDiscount | None = None
    term_final: PaymentTermFinal


class SuggestedPaymentTerm(Strict):
    date: date
    discount: BasisPoints | None = None


class PayableFields(Strict):
    """Fields a payable can be created or updated with."""

    counterpart_id: uuid.UUID | None = Field(
        None, description="The ID of the counterpart object that represents the vendor."
    )
    counterpart_address_id: uuid.UUID | None = Field(
        None, description="The ID of one of the counterpart's addresses."
    )
    counterpart_bank_account_id: uuid.UUID | None = Field(None, description=UNSUPPORTED)
    counterpart_vat_id_id: uuid.UUID | None = Field(None, description=UNSUPPORTED)
    currency: CurrencyCode | None = Field(None, description="The currency of the payable.")
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    discount: Amount | None = Field(
        None,
        description=(
            "An additional discount in minor units. Kept as given; it does not change "
            "`total_amount`, `amount_due` or `amount_to_pay`."
        ),
    )
    document_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        None, description="The invoice number assigned by the vendor, such as `DE2287`."
    )
    due_date: date | None = Field(
        None,
        description=(
            "The date by which the payable must be paid. Without it, `issued_at` plus the "
            "days of `payment_terms.term_final` gives it."
        ),
    )
    issued_at: date | None = None
    partner_metadata: dict[str, Any] | None = None
    payment_terms: PaymentTerms | None = None
    project_id: uuid.UUID | None = Field(None, description=UNSUPPORTED)
    purchase_order_id: uuid.UUID | None = Field(None, description=UNSUPPORTED)
    sender: EmailStr | None = None
    subtotal: Amount | None = Field(None, description="The amount before tax, in minor units.")
    suggested_payment_term: SuggestedPaymentTerm | None = None
    tag_ids: list[uuid.UUID] | None = Field(None, description=UNSUPPORTED)
    tax: BasisPoints | None = Field(
        None, description="The tax rate in basis points: 200 means 2%, 1050 means 10.5%."
    )
    tax_amount: Amount | None = Field(None, description="The tax amount, in minor units.")
    total_amount: Amount | None = Field(
        None,
        description=(
            "The total to be paid, in minor units. When omitted it is `subtotal` plus the tax; "
            "when given with both, it must equal `subtotal + tax_amount`."
        ),
    )


class CreatePayableRequest(PayableFields):
    """Monite's PayableUploadWithDataSchema."""

    base64_encoded_file: str | None = Field(None, description=UNSUPPORTED)
    file_name: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        None, description=UNSUPPORTED
    )


class UpdatePayableRequest(PayableFields):
    """Monite's PayableUpdateSchema."""

    amount_paid: Amount | None = Field(
        None,
        description=(
            UNSUPPORTED + " Use `mark_as_partially_paid` or `mark_as_paid` to record payments."
        ),
    )
    counterpart_raw_data: dict[str, Any] | None = Field(None, description=UNSUPPORTED)


class PartiallyPaidPayload(Strict):
    amount_paid: Amount = Field(
        description="The sum of all payments made so far (not only the last one), in minor units."
    )


class CommentPayload(Strict):
    # Monite sets no bound; the column holds 1000 characters (PostgreSQL refuses more).
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        None, description="An arbitrary comment that describes how and when this payable was paid."
    )


class CounterpartRawData(BaseModel):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    tax_id: str | None = None


class PayableResponse(BaseModel):
    """Monite's PayableResponseSchema. Fields without a value are left out, as Monite does."""

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    entity_id: uuid.UUID
    status: PayableStatus
    payable_origin: PayableOrigin = PayableOrigin.UPLOAD
    source_of_payable_data: SourceOfPayableData = SourceOfPayableData.USER_SPECIFIED
    credit_notes: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[dict[str, Any]] = Field(default_factory=list)
    amount_due: int | None = None
    amount_paid: int | None = None
    amount_to_pay: int | None = None
    counterpart: CounterpartRawData | None = None
    counterpart_id: uuid.UUID | None = None
    counterpart_address_id: uuid.UUID | None = None
    currency: str | None = None
    description: str | None = None
    discount: int | None = None
    document_id: str | None = None
    due_date: date | None = None
    issued_at: date | None = None
    marked_as_paid_by_entity_user_id: uuid.UUID | None = None
    marked_as_paid_with_comment: str | None = None
    paid_at: datetime | None = None
    partner_metadata: dict[str, Any] | None = None
    payment_terms: PaymentTerms | None = None
    sender: str | None = None
    subtotal: int | None = None
    suggested_payment_term: SuggestedPaymentTerm | None = None
    tax: int | None = None
    tax_amount: int | None = None
    total_amount: int | None = None
    total_amount_with_credit_notes: int | None = None
    was_created_by_user_id: uuid.UUID | None = None


class PayablePaginationResponse(PaginationResponse[PayableResponse]):
    pass


class PayableListParams(ListParams):
    """GET /payables query. Filters on things Fundline does not keep (OCR, files, tags, projects,
    purchase orders, line items) are answered from what is true of every Fundline payable:
    created from data (`origin=upload`, `source_of_payable_data=user_specified`), without OCR,
    file, tags, project, purchase order or line items."""

    sort: PayableCursorFields | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
    status: PayableStatus | None = None
    status__in: QueryList[PayableStatus] | None = None
    id__in: QueryList[uuid.UUID] | None = None
    total_amount: Int64 | None = None
    total_amount__gt: Int64 | None = None
    total_amount__lt: Int64 | None = None
    total_amount__gte: Int64 | None = None
    total_amount__lte: Int64 | None = None
    # Monite's older name for the payable's total amount; filters the same column.
    amount: Int64 | None = None
    amount__gt: Int64 | None = None
    amount__lt: Int64 | None = None
    amount__gte: Int64 | None = None
    amount__lte: Int64 | None = None
    currency: CurrencyCode | None = None
    counterpart_name: str | None = None
    counterpart_name__contains: str | None = None
    counterpart_name__icontains: str | None = None
    search_text: str | None = None
    due_date: date | None = None
    due_date__gt: date | None = None
    due_date__lt: date | None = None
    due_date__gte: date | None = None
    due_date__lte: date | None = None
    issued_at: date | None = None
    issued_at__gt: date | None = None
    issued_at__lt: date | None = None
    issued_at__gte: date | None = None
    issued_at__lte: date | None = None
    document_id: str | None = None
    document_id__contains: str | None = None
    document_id__icontains: str | None = None
    was_created_by_user_id: uuid.UUID | None = None
    counterpart_id: uuid.UUID | None = None
    source_of_payable_data: SourceOfPayableData | None = None
    ocr_status: OcrStatus | None = None
    line_item_id: uuid.UUID | None = None
    purchase_order_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    project_id__in: QueryList[uuid.UUID] | None = None
    tag_ids: QueryList[uuid.UUID] | None = None
    tag_ids__not_in: QueryList[uuid.UUID] | None = None
    has_tags: bool | None = None
    origin: PayableOrigin | None = None
    has_file: bool | None = None
