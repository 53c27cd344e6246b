from __future__ import annotations

from fastapi import APIRouter, Request

from fundline.auth import service
from fundline.auth.deps import CallerDep, Session
from fundline.auth.schemas import (
    AccessTokenResponse,
    MessageResponse,
    ObtainTokenPayload,
    RevokeTokenPayload,
)
from fundline.kit.routing import TransactionalRoute

router = APIRouter(prefix="/auth", tags=["Access tokens"], route_class=TransactionalRoute)


@router.post("/token", response_model=AccessTokenResponse, operation_id="post_auth_token")
async def create_token(
    request: Request, session: Session, payload: ObtainTokenPayload
) -> AccessTokenResponse:
    """Create a token. Public: exchanges a client ID and secret for a partner-level token
    (`client_credentials`) or a token bound to one entity user (`entity_user`)."""
    token, expires_in = await service.issue_token(
        session, payload, ttl_seconds=request.app.state.settings.token_ttl_seconds
    )
    return AccessTokenResponse(access_token=token, expires_in=expires_in, token_type="Bearer")


@router.post("/revoke", response_model=MessageResponse, operation_id="post_auth_revoke")
async def revoke_token(
    session: Session, caller: CallerDep, payload: RevokeTokenPayload
) -> MessageResponse:
    """Revoke a token immediately, in every process."""
    await service.revoke_token(session, payload)
    return MessageResponse(message="Token revoked")
