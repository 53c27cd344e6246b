"""Wire models of the Connect API (`/connect/v1`). Not Monite's: Fundline's own, after the
shapes Kanmon Connect gives the business user (business, offers, invoices to confirm)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from fundline.financing.schemas import FinancingInvoice, FinancingInvoiceType, FinancingOffer
from fundline.kit.countries import CountryCode
from fundline.kit.money import Amount
from fundline.models.financing import WCBusinessStatus

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
EIN_PATTERN = re.compile(r"[0-9]{2}-[0-9]{7}")  # fullmatch: no newline, ASCII digits only
# ABA routing numbers: nine digits whose weighted sum (3, 7, 1, repeated) is a multiple of 10.
ABA_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)


def routing_number_valid(value: str) -> bool:
    """Nine digits passing the ABA checksum: ``routing_number_valid("021000021") is True``."""
    if len(value) != 9 or not (value.isascii() and value.isdigit()):
        return False
    return sum(w * int(d) for w, d in zip(ABA_WEIGHTS, value, strict=True)) % 10 == 0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scope(StrEnum):
    ONBOARDING = "onboarding"
    INVOICES = "invoices"


# --- sessions ---------------------------------------------------------------------------------


class CreateSessionRequest(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="A connect token (POST /v1/financing_tokens) or a session token "
        "(POST /v1/financing_invoices); each works once."
    )
    embed_origin: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        None,
        description="The origin of the page embedding the widget, when the widget opens the "
        "session: it must be registered for the token's partner (or be local, in sandbox mode).",
    )


class EmbedCheckRequest(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The connect token or session token the page is about to hand the widget."
    )


class EmbedCheckResponse(BaseModel):
    allowed: bool = True
    origin: str = Field(description="The origin that may embed the widget.")


class SessionResponse(BaseModel):
    access_token: str = Field(description="Send as `Authorization: Bearer …` to /connect/v1.")
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the session ends.")
    entity_id: uuid.UUID
    scope: Scope


# --- the business -----------------------------------------------------------------------------


class BusinessAddress(Strict):
    line1: Text | None = None
    line2: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postal_code: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10)] | None
    ) = None
    country: CountryCode | None = None


class BusinessOwner(Strict):
    first_name: Text | None = None
    last_name: Text | None = None
    email: EmailStr | None = None


class BankAccountInput(Strict):
    routing_number: str | None = Field(None, description="A nine-digit ABA routing number.")
    account_number: str | None = Field(None, description="4 to 17 digits.")

    @field_validator("routing_number")
    @classmethod
    def _routing(cls, value: str | None) -> str | None:
        if value is not None and not routing_number_valid(value):
            raise ValueError("routing_number must be a valid nine-digit ABA routing number")
        return value

    @field_validator("account_number")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not (
            value.isascii() and value.isdigit() and 4 <= len(value) <= 17
        ):
            raise ValueError("account_number must be 4 to 17 digits")
        return value


class UpdateBusinessRequest(Strict):
    """Any subset; nested objects are merged field by field. ``null`` leaves a field as is."""

    legal_name: Text | None = None
    ein: str | None = Field(None, description="Employer Identification Number, NN-NNNNNNN.")
    address: BusinessAddress | None = None
    owner: BusinessOwner | None = None
    bank_account: BankAccountInput | None = None

    @field_validator("ein")
    @classmethod
    def _ein(cls, value: str | None) -> str | None:
        if value is not None and not EIN_PATTERN.fullmatch(value):
            raise ValueError("ein must have the format NN-NNNNNNN (nine digits)")
        return value


class BankAccountOut(BaseModel):
    routing_number: str | None = None
    # The full number is never shown again.
    account_number_last4: str | None = None


class BusinessResponse(BaseModel):
    id: uuid.UUID
    entity_id: uuid.UUID
    business_status: WCBusinessStatus
    missing_fields: list[str] = Field(description="Dotted names of the fields still needed.")
    legal_name: str | None = None
    ein: str | None = None
    address: BusinessAddress
    owner: BusinessOwner
    bank_account: BankAccountOut
    onboarded_at: datetime | None = None
    decision_note: str | None = Field(None, description="Why no offer was extended, if so.")
    offer: FinancingOffer | None = Field(None, description="The newest offer, if any.")


# --- offers -----------------------------------------------------------------------------------


class OffersResponse(BaseModel):
    offers: list[FinancingOffer]


# --- invoices ---------------------------------------------------------------------------------


class QuoteOut(BaseModel):
    pricing_plan_id: uuid.UUID
    max_requested_amount: int
    requested_amount: int
    fee_amount: int
    advance_amount: int = Field(description="What the business receives: requested - fee.")
    repayment_amount: int
    repayment_date: date = Field(description="When the last instalment falls due.")
    instalments: int


class ConnectInvoice(BaseModel):
    financing_invoice_id: uuid.UUID
    invoice_id: uuid.UUID
    type: FinancingInvoiceType
    document_id: str
    total_amount: int
    amount_due: int = Field(
        description="What the invoice still owes; each quote's maximum is its plan's advance "
        "rate of this amount."
    )
    currency: str
    issue_date: date
    due_date: date
    payer_type: str
    payer_name: str | None = None
    quotes: list[QuoteOut]


class ConnectInvoicesResponse(BaseModel):
    request_id: uuid.UUID
    expires_at: datetime
    invoices: list[ConnectInvoice]


class ConfirmInvoice(Strict):
    invoice_id: uuid.UUID
    pricing_plan_id: uuid.UUID
    requested_amount: Amount | None = Field(
        None, ge=1, description="Minor units; defaults to the plan's maximum."
    )


class ConfirmInvoicesRequest(Strict):
    invoices: Annotated[list[ConfirmInvoice], Field(min_length=1, max_length=10)]


class ConfirmInvoicesResponse(BaseModel):
    invoices: list[FinancingInvoice]
