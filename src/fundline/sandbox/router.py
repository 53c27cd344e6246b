"""The sandbox API, ``/sandbox/v1``, mounted only in sandbox mode (absent, so 404, in production).

Authenticated by default with a partner's ``/v1`` access token; objects are the caller's
partner's (an entity-user token: its entity's), anything else is a 404. The clock is one per
deployment.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from fundline.auth.deps import CallerDep, Session, current_caller
from fundline.kit.errors import Forbidden
from fundline.kit.routing import TransactionalRoute
from fundline.lending.deps import PolicyDep
from fundline.sandbox import service
from fundline.sandbox.schemas import (
    ClockAdvanceRequest,
    ClockAdvanceResponse,
    ClockResponse,
    ResetResponse,
    SandboxResetResponse,
    SimulateRequest,
    SimulationResponse,
)

PREFIX = "/sandbox/v1"


async def synced_clock(session: Session) -> service.ClockState:
    """Every sandbox call first takes up the deployment's clock, moved perhaps elsewhere."""
    return await service.load_clock(session)


router = APIRouter(
    prefix=PREFIX,
    tags=["Sandbox"],
    route_class=TransactionalRoute,
    dependencies=[Depends(current_caller), Depends(synced_clock)],
)
ClockDep = Annotated[service.ClockState, Depends(synced_clock)]


def _clock_out(state: service.ClockState) -> ClockResponse:
    return ClockResponse(now=state.now, today=state.now.date(), offset_seconds=state.offset_seconds)


@router.get("/clock", response_model=ClockResponse)
async def get_clock(state: ClockDep) -> ClockResponse:
    """The sandbox's current time and how far it is ahead of real time."""
    return _clock_out(state)


@router.post("/clock/advance", response_model=ClockAdvanceResponse)
async def advance_clock(
    session: Session, policy: PolicyDep, payload: ClockAdvanceRequest
) -> ClockAdvanceResponse:
    """Move the clock forward (for the whole deployment) and run servicing at once: offers
    and requests expire, unpaid invoices become LATE, then DEFAULTED."""
    state = await service.advance_clock(session, days=payload.days, policy=policy)
    return ClockAdvanceResponse(**_clock_out(state).model_dump(), tick=state.tick or {})


@router.post(
    "/financing_invoices/{financing_invoice_id}/simulate", response_model=SimulationResponse
)
async def simulate(
    session: Session, caller: CallerDep, financing_invoice_id: uuid.UUID, payload: SimulateRequest
) -> SimulationResponse:
    """Simulate what the lender or the payer does to a financing invoice; 409 when its status
    does not allow it."""
    fi = await service.simulate(session, caller, financing_invoice_id, payload.event)
    return SimulationResponse.model_validate(fi)


@router.post("/businesses/{entity_id}/reset", response_model=ResetResponse)
async def reset_business(
    session: Session, caller: CallerDep, entity_id: uuid.UUID
) -> ResetResponse:
    """Remove the entity's financing business, offers, requests, financing invoices and their
    ledger rows, so it can start over (its invoices can be requested again)."""
    deleted = await service.reset_business(session, caller, entity_id)
    return ResetResponse(entity_id=entity_id, deleted=deleted)


@router.post("/reset", response_model=SandboxResetResponse)
async def reset_sandbox(session: Session, caller: CallerDep) -> SandboxResetResponse:
    """Start the sandbox over: the clock goes back to real time (for the whole deployment) and
    the partner's data goes: its entities and everything under them (users, counterparts,
    invoices, financing, ledger, events). The partner and its API clients stay, so the same
    credentials keep working. A partner token only (an entity user's token is a 403)."""
    if caller.entity_id is not None:
        raise Forbidden("Only a partner token can reset the sandbox")
    deleted = await service.reset_sandbox(session, partner_id=caller.partner_id)
    return SandboxResetResponse(
        clock=_clock_out(await service.load_clock(session)), deleted=deleted
    )
