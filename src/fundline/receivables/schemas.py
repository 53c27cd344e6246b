"""Wire models for receivables (invoices only), with Monite's names: the invoice branch of
``ReceivableFacadeCreatePayload``, ``UpdateInvoicePayload``, ``InvoiceResponsePayload`` and the
``GET /receivables`` query."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fundline.kit.filters import UTCDatetime
from fundline.kit.inputs import Int64, QueryList, Uri
from fundline.kit.money import MAX_AMOUNT, Amount
from fundline.kit.money import BasisPoints as BasisPoints  # re-exported: the CSV import uses it
from fundline.kit.money import CurrencyCode as CurrencyCode  # re-exported: the CSV import uses it
from fundline.kit.pagination import ListParams
from fundline.models.receivable import ReceivablesStatus

Days = Annotated[int, Field(ge=0, le=10000)]
UpTo50 = Annotated[str, StringConstraints(max_length=50)]
UpTo64 = Annotated[str, StringConstraints(max_length=64)]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
UpTo100 = Annotated[str, StringConstraints(max_length=100)]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
UpTo200 = Annotated[str, StringConstraints(max_length=200)]
UpTo255 = Annotated[str, StringConstraints(max_length=255)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]
UpTo2000 = Annotated[str, StringConstraints(max_length=2000)]
Text2083 = Annotated[str, StringConstraints(min_length=1, max_length=2083)]


def _quantity_json(value: Decimal) -> int | float:
    # JSON has one number type. A whole quantity goes out as an integer; a fractional one
    # (hours, kilograms) as the float whose shortest repr is the decimal that came in. Money
    # never takes this path: amounts are computed from the Decimal, exactly.
    return int(value) if value == value.to_integral_value() else float(value)


# Monite's ``quantity`` is a JSON number; it is kept as an exact Decimal.
Quantity = Annotated[
    Decimal,
    Field(ge=0, le=2147483647),
    PlainSerializer(_quantity_json, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 2147483647}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def refuse_unsupported(data: Any, trivial: dict[str, tuple[Any, ...]]) -> Any:
    """Drop Monite fields Fundline does not implement when they carry only their default, and
    refuse them when they carry something: silently ignoring a discount would be a wrong total.
    """
    if not isinstance(data, dict):
        return data
    kept = dict(data)
    for name, harmless in trivial.items():
        if name not in kept:
            continue
        value = kept.pop(name)
        if value not in harmless:
            raise PydanticCustomError(
                "not_supported",
                "{field} is not supported by Fundline",
                {"field": name},
            )
    return kept


# --- line items ------------------------------------------------------------------------------


class ProductServiceType(StrEnum):
    PRODUCT = "product"
    SERVICE = "service"


class Price(Strict):
    currency: CurrencyCode
    value: Amount = Field(description="The price in minor units of `currency`.")


class UnitRequest(Strict):
    name: Text100
    description: UpTo200 | None = None


class LineItemProductCreate(Strict):
    """An inline product: Fundline has no product catalogue, so every line describes its own."""

    name: Text100
    price: Price
    measure_unit: UnitRequest | None = None
    description: UpTo2000 | None = None
    external_reference: Text255 | None = None
    ledger_account_id: uuid.UUID | None = None
    smallest_amount: Quantity | None = None
    type: ProductServiceType = ProductServiceType.PRODUCT


_UNSUPPORTED_LINE_FIELDS: dict[str, tuple[Any, ...]] = {
    "product_id": (None,),
    "vat_rate_id": (None,),
    "custom_vat_rate_id": (None,),
    "accounting_tax_rate_id": (None,),
    "discount": (None,),
}


class LineItem(Strict):
    quantity: Quantity
    product: LineItemProductCreate
    tax_rate_value: BasisPoints | None = Field(
        None, description="The tax rate in basis points (1000 = 10 %), as for US entities."
    )
    tax_rate_name: Text64 | None = None

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse_unsupported(data, _UNSUPPORTED_LINE_FIELDS)


class LineItemUpdate(Strict):
    """Changes to the line at the same position of an invoice's ``line_items``."""

    price: Amount | None = None
    quantity: Quantity | None = None
    tax_rate_value: BasisPoints | None = None
    tax_rate_name: UpTo64 | None = None

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse_unsupported(data, _UNSUPPORTED_LINE_FIELDS)


# --- payment terms ---------------------------------------------------------------------------


class InlineTermFinal(Strict):
    number_of_days: Days | None = Field(
        None, description="Days after the issue date until the invoice is due."
    )
    end_date: date | None = None

    @model_validator(mode="after")
    def _one_of(self) -> InlineTermFinal:
        if (self.number_of_days is None) == (self.end_date is None):
            raise PydanticCustomError(
                "term_final", "term_final needs exactly one of number_of_days and end_date"
            )
        return self


class InlinePaymentTerms(Strict):
    """Monite's inline payment terms. ``name`` and ``description`` are Fundline extensions,
    echoed in the response's ``payment_terms``; early-payment discounts are not supported."""

    name: Text255 | None = None
    description: UpTo2000 | None = None
    term_final: InlineTermFinal

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse_unsupported(data, {"term_1": (None,), "term_2": (None,)})


class ReceivableEntityBase(Strict):
    """Overrides of the entity's details as they are printed on this document."""

    email: EmailStr | None = None
    logo: Text2083 | None = None
    phone: str | None = None
    registration_authority: str | None = None
    registration_number: str | None = None
    website: Uri | None = None


# --- create and update -----------------------------------------------------------------------

_UNSUPPORTED_INVOICE_FIELDS: dict[str, tuple[Any, ...]] = {
    "attachments": (None, []),
    "contact_id": (None,),
    "counterpart_einvoicing_credentials_id": (None,),
    "counterpart_vat_id_id": (None,),
    "deduction_amount": (None, 0),
    "deduction_memo": (None,),
    "discount": (None,),
    "entity_bank_account_id": (None,),
    "entity_vat_id_id": (None,),
    "is_einvoice": (None, False),
    "network_credentials_id": (None,),
    "overdue_reminder_id": (None,),
    "payment_reminder_id": (None,),
    "payment_terms_id": (None,),
    "project_id": (None,),
    "tag_ids": (None, []),
    "vat_mode": (None, "exclusive"),
    "withholding_tax_rate": (None, 0),
}

# Printed on the document, read by no rule: kept together in ``Receivable.details``.
DETAIL_FIELDS = (
    "memo",
    "footer",
    "fulfillment_date",
    "purchase_order",
    "trade_name",
    "partner_metadata",
    "commercial_condition_description",
    "counterpart_business_type",
    "payment_page_url",
    "vat_exempt",
    "vat_exemption_rationale",
    "document_rendering",
)


class InvoiceDetails(Strict):
    memo: str | None = None
    footer: str | None = None
    fulfillment_date: date | None = None
    trade_name: UpTo255 | None = None
    partner_metadata: dict[str, Any] | None = None
    commercial_condition_description: str | None = None
    payment_page_url: Text2083 | None = None
    vat_exempt: bool | None = None
    vat_exemption_rationale: str | None = None
    document_rendering: dict[str, Any] | None = None
    entity: ReceivableEntityBase | None = None
    payment_terms: InlinePaymentTerms | None = None


class CreateInvoiceRequest(InvoiceDetails):
    """``ReceivableFacadeCreateInvoicePayload``. Quotes, credit notes and documents based on
    another document are refused with a 422: Fundline's receivables are invoices only."""

    type: Literal["invoice"]
    counterpart_id: uuid.UUID
    counterpart_billing_address_id: uuid.UUID
    counterpart_shipping_address_id: uuid.UUID | None = None
    currency: CurrencyCode
    line_items: list[LineItem]
    document_id: Text100 | None = None
    purchase_order: UpTo100 | None = None
    counterpart_business_type: UpTo50 | None = None

    @model_validator(mode="before")
    @classmethod
    def _invoices_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kind = data.get("type")
            if "based_on" in data:
                raise PydanticCustomError(
                    "invoices_only",
                    "Only invoices are supported: creating a receivable based on another "
                    "document is not",
                )
            if kind in ("quote", "credit_note"):
                raise PydanticCustomError(
                    "invoices_only",
                    "Only invoices are supported: Fundline does not create receivables of "
                    "type {kind}",
                    {"kind": kind},
                )
        return refuse_unsupported(data, _UNSUPPORTED_INVOICE_FIELDS)


class UpdateInvoice(InvoiceDetails):
    counterpart_id: uuid.UUID | None = None
    counterpart_billing_address_id: uuid.UUID | None = None
    counterpart_shipping_address_id: uuid.UUID | None = None
    currency: CurrencyCode | None = None
    line_items: list[LineItemUpdate] | None = None

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse_unsupported(data, _UNSUPPORTED_INVOICE_FIELDS)


class UpdateReceivableRequest(Strict):
    """``ReceivableUpdatePayload``: one of ``invoice`` (a draft), ``issued_invoice``, ``quote``
    or ``credit_note``. Only drafts can be changed, and only invoices exist."""

    invoice: UpdateInvoice | None = None
    issued_invoice: dict[str, Any] | None = None
    quote: dict[str, Any] | None = None
    credit_note: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UpdateReceivableRequest:
        given = [
            k
            for k in ("invoice", "issued_invoice", "quote", "credit_note")
            if k in self.model_fields_set
        ]
        if len(given) != 1:
            raise PydanticCustomError(
                "update_kind",
                "Give exactly one of invoice, issued_invoice, quote and credit_note",
            )
        if given[0] in ("quote", "credit_note"):
            raise PydanticCustomError(
                "invoices_only",
                "Only invoices are supported: there is no {kind} to update",
                {"kind": given[0]},
            )
        return self


class ReceivablePaidPayload(Strict):
    comment: str | None = None
    paid_at: UTCDatetime | None = None


class ReceivablePartiallyPaidPayload(Strict):
    amount_paid: Annotated[int, Field(ge=1, le=MAX_AMOUNT)] = Field(
        description="How much has been paid on the invoice so far, in minor units: the sum of "
        "all payments, not only the last one."
    )
    comment: str | None = None


class ReceivableUncollectiblePayload(Strict):
    comment: str | None = None


# --- list parameters -------------------------------------------------------------------------


class ReceivableCursorFields(StrEnum):
    COUNTERPART_NAME = "counterpart_name"
    COUNTERPART_ID = "counterpart_id"
    AMOUNT = "amount"
    TOTAL_AMOUNT = "total_amount"
    DISCOUNTED_SUBTOTAL = "discounted_subtotal"
    STATUS = "status"
    DUE_DATE = "due_date"
    ISSUE_DATE = "issue_date"
    DOCUMENT_ID = "document_id"
    CREATED_AT = "created_at"
    PROJECT_ID = "project_id"


class ReceivableType(StrEnum):
    QUOTE = "quote"
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class ReceivableListParams(ListParams):
    """``GET /receivables`` query: Monite's names, combined with AND."""

    limit: int = Field(
        100, ge=1, le=250, description="The number of items (1 .. 250) to return in one page."
    )
    sort: ReceivableCursorFields | None = None
    id__in: QueryList[uuid.UUID] | None = None
    status: ReceivablesStatus | None = None
    status__in: QueryList[ReceivablesStatus] | None = None
    entity_user_id: uuid.UUID | None = None
    entity_user_id__in: QueryList[uuid.UUID] | None = None
    type: ReceivableType | None = None
    document_id: str | None = None
    document_id__contains: str | None = None
    document_id__icontains: str | None = None
    issue_date__gt: UTCDatetime | None = None
    issue_date__lt: UTCDatetime | None = None
    issue_date__gte: UTCDatetime | None = None
    issue_date__lte: UTCDatetime | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
    counterpart_id: uuid.UUID | None = None
    counterpart_name: str | None = None
    counterpart_name__contains: str | None = None
    counterpart_name__icontains: str | None = None
    total_amount: Int64 | None = None
    total_amount__gt: Int64 | None = None
    total_amount__lt: Int64 | None = None
    total_amount__gte: Int64 | None = None
    total_amount__lte: Int64 | None = None
    discounted_subtotal: Int64 | None = None
    discounted_subtotal__gt: Int64 | None = None
    discounted_subtotal__lt: Int64 | None = None
    discounted_subtotal__gte: Int64 | None = None
    discounted_subtotal__lte: Int64 | None = None
    due_date__gt: date | None = None
    due_date__lt: date | None = None
    due_date__gte: date | None = None
    due_date__lte: date | None = None
    # Fundline has no tags, catalogue products, projects or quotes: no invoice matches these.
    tag_ids: QueryList[uuid.UUID] | None = None
    tag_ids__in: QueryList[uuid.UUID] | None = None
    product_ids: QueryList[uuid.UUID] | None = None
    product_ids__in: QueryList[uuid.UUID] | None = None
    project_id: uuid.UUID | None = None
    project_id__in: QueryList[uuid.UUID] | None = None
    based_on: uuid.UUID | None = None
