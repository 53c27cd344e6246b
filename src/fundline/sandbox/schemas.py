"""Wire models of the sandbox API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from fundline.models.financing import WCInvoiceStatus

MAX_ADVANCE_DAYS = 3650


class ClockAdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        ge=1, le=MAX_ADVANCE_DAYS, strict=True, description="Whole days to move the clock forward."
    )


class ClockResponse(BaseModel):
    now: datetime
    today: date
    offset_seconds: int = Field(description="How far the sandbox clock is ahead of real time.")


class ClockAdvanceResponse(ClockResponse):
    tick: dict[str, int] = Field(
        description="What the servicing tick did at the new time (expired offers, late, …)."
    )


class SimulatedEvent(StrEnum):
    FUND = "fund"
    REPAY = "repay"
    LATE = "late"
    DEFAULT = "default"
    REJECT = "reject"


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: SimulatedEvent = Field(
        description=(
            "fund: NEW → FUNDED; repay: the whole remaining amount (→ PAID); late: FUNDED → "
            "LATE; default: LATE → DEFAULTED; reject: NEW → REJECTED."
        )
    )


class SimulationResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    entity_id: uuid.UUID
    invoice_id: uuid.UUID
    type: str
    status: WCInvoiceStatus
    currency: str
    repayment_amount: int | None
    repaid_amount: int
    repayment_date: date | None
    funded_at: datetime | None
    closed_at: datetime | None


class ResetResponse(BaseModel):
    entity_id: uuid.UUID
    deleted: dict[str, int] = Field(description="Rows removed, per kind.")


class SandboxResetResponse(BaseModel):
    clock: ClockResponse = Field(description="The clock, back at real time.")
    deleted: dict[str, int] = Field(description="Rows removed, per table (those with any).")
