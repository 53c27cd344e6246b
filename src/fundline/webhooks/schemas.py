from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from fundline.kit.filters import UTCDatetime
from fundline.kit.pagination import ListParams, PaginationResponse


class WebhookObjectType(StrEnum):
    """Monite's object types, and Fundline's own three for financing (an extension)."""

    ACCOUNT = "account"
    ACCOUNTING_CONNECTION = "accounting_connection"
    APPROVAL = "approval"
    APPROVAL_REQUEST = "approval_request"
    APPROVAL_POLICY = "approval_policy"
    APPROVAL_POLICY_PROCESS = "approval_policy_process"
    BATCH_PAYMENT = "batch_payment"
    COMMENT = "comment"
    COUNTERPART = "counterpart"
    COUNTERPART_ADDRESS = "counterpart_address"
    COUNTERPART_BANK_ACCOUNT = "counterpart_bank_account"
    COUNTERPART_CONTACT_PERSON = "counterpart_contact_person"
    COUNTERPART_PARTNER_METADATA = "counterpart_partner_metadata"
    COUNTERPART_TAX_ID = "counterpart_tax_id"
    ENTITY = "entity"
    ENTITY_BANK_ACCOUNT = "entity_bank_account"
    ENTITY_SETTINGS = "entity_settings"
    ENTITY_USER = "entity_user"
    EXPORT = "export"
    OVERDUE_REMINDER = "overdue_reminder"
    PARTNER_SETTINGS = "partner_settings"
    PAYABLE = "payable"
    PAYABLES_CREDIT_NOTE = "payables_credit_note"
    PAYABLES_PURCHASE_ORDER = "payables_purchase_order"
    PAYABLE_LINE_ITEM = "payable.line_item"
    PAYMENT = "payment"
    PAYMENT_INTENT = "payment_intent"
    PAYMENT_LINK = "payment_link"
    PAYMENT_REMINDER = "payment_reminder"
    PRODUCT = "product"
    PROJECT = "project"
    RECEIVABLE = "receivable"
    RECURRENCE = "recurrence"
    ROLE = "role"
    TAG = "tag"
    TODO_TASK = "todo_task"
    WORKFLOW = "workflow"
    WORKFLOW_PIPELINE = "workflow_pipeline"
    OCR_TASK = "ocr_task"
    DELIVERY_NOTE = "delivery_note"
    RECEIPT = "receipt"
    TRANSACTION = "transaction"
    # Fundline's, not Monite's: the financing objects, and a subscription the sender disabled.
    FINANCING_BUSINESS = "financing_business"
    FINANCING_INVOICE = "financing_invoice"
    FINANCING_OFFER = "financing_offer"
    WEBHOOK_SUBSCRIPTION = "webhook_subscription"


class EventCursorFields(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class EventResource(BaseModel):
    id: uuid.UUID
    created_at: datetime | None = None
    action: str
    api_version: str | None = None
    description: str
    entity_id: uuid.UUID
    object: Any | None = None
    object_type: str


class EventPaginationResource(PaginationResponse[EventResource]):
    pass


class EventListParams(ListParams):
    sort: EventCursorFields | None = None
    object_type: WebhookObjectType | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
