"""Response models for receivables: Monite's ``InvoiceResponsePayload`` and its parts.

Only the fields Fundline fills are declared; the router leaves absent ones out (not null).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from fundline.kit.pagination import PaginationResponse
from fundline.models.receivable import ReceivablesStatus
from fundline.receivables.schemas import ProductServiceType, Quantity


class PriceResponse(BaseModel):
    currency: str
    value: int


class MeasureUnitResponse(BaseModel):
    name: str
    description: str | None = None


class VatRateResponse(BaseModel):
    country: str
    value: int
    name: str | None = None
    is_custom: bool = True


class LineItemProduct(BaseModel):
    id: uuid.UUID
    name: str
    price: PriceResponse
    price_after_vat: PriceResponse
    vat_rate: VatRateResponse
    measure_unit: MeasureUnitResponse | None = None
    description: str | None = None
    external_reference: str | None = None
    ledger_account_id: uuid.UUID | None = None
    smallest_amount: Quantity | None = None
    type: ProductServiceType
    is_inline: bool = True


class ResponseItem(BaseModel):
    product: LineItemProduct
    quantity: Quantity
    total_before_vat: int
    total_after_vat: int


class TotalVatAmountItem(BaseModel):
    amount: int
    taxable_amount: int
    value: int


class CounterpartAddressResponse(BaseModel):
    id: uuid.UUID | None = None
    city: str
    country: str
    line1: str
    line2: str | None = None
    postal_code: str
    state: str | None = None


class EntityAddressResponse(BaseModel):
    city: str
    country: str
    line1: str
    line2: str | None = None
    postal_code: str
    state: str | None = None


class ReceivableEntity(BaseModel):
    type: Literal["organization", "individual"]
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    logo: str | None = None
    phone: str | None = None
    registration_authority: str | None = None
    registration_number: str | None = None
    tax_id: str | None = None
    website: str | None = None


class TermFinalResponse(BaseModel):
    number_of_days: int | None = None
    end_date: date | None = None


class PaymentTermsResponse(BaseModel):
    name: str | None = None
    description: str | None = None
    term_final: TermFinalResponse


class RelatedDocuments(BaseModel):
    credit_note_ids: list[uuid.UUID] = Field(default_factory=list)


class InvoiceResponse(BaseModel):
    """Monite's ``InvoiceResponsePayload``; absent optional fields are left out, not null."""

    id: uuid.UUID
    type: Literal["invoice"] = "invoice"
    created_at: datetime
    updated_at: datetime
    status: ReceivablesStatus
    document_id: str | None = None
    currency: str
    entity_user_id: uuid.UUID | None = None
    entity: ReceivableEntity
    entity_address: EntityAddressResponse
    counterpart_id: uuid.UUID
    counterpart_name: str
    counterpart_type: Literal["organization", "individual"]
    counterpart_tax_id: str | None = None
    counterpart_external_reference: str | None = None
    counterpart_billing_address: CounterpartAddressResponse
    counterpart_shipping_address: CounterpartAddressResponse | None = None
    counterpart_business_type: str | None = None
    line_items: list[ResponseItem]
    subtotal: int
    discounted_subtotal: int
    subtotal_after_vat: int
    total_vat_amount: int
    total_vat_amounts: list[TotalVatAmountItem]
    total_amount: int
    total_amount_with_credit_notes: int
    amount_due: int
    amount_paid: int
    amount_to_pay: int
    vat_mode: Literal["exclusive"] = "exclusive"
    vat_exempt: bool | None = None
    vat_exemption_rationale: str | None = None
    payment_terms: PaymentTermsResponse | None = None
    issue_date: datetime | None = None
    due_date: date | None = None
    paid_at: datetime | None = None
    fulfillment_date: date | None = None
    file_language: str
    original_file_language: str = "en"
    related_documents: RelatedDocuments = Field(default_factory=RelatedDocuments)
    tags: list[Any] = Field(default_factory=list)
    memo: str | None = None
    footer: str | None = None
    comment: str | None = None
    purchase_order: str | None = None
    trade_name: str | None = None
    commercial_condition_description: str | None = None
    payment_page_url: str | None = None
    partner_metadata: dict[str, Any] | None = None
    document_rendering: dict[str, Any] | None = None
    is_einvoice: bool = False


class ReceivablePaginationResponse(PaginationResponse[InvoiceResponse]):
    pass
