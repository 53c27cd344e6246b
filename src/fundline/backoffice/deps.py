"""Dependencies of the lender API: the operator behind the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy import select

from fundline.kit import security
from fundline.kit.errors import Unauthorized
from fundline.kit.routing import request_session
from fundline.models import OperatorKey

# Declared for the OpenAPI document; the header is read below so each refusal can say why.
operator_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorKey",
    description="An operator key, created with `fundline operator create-key`.",
)


async def current_operator(request: Request, _: object = Depends(operator_scheme)) -> OperatorKey:
    """The operator key in ``Authorization: Bearer …``; 401 when missing, unknown or revoked."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Unauthorized("Authorization header is missing")
    scheme, _sep, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Use the Bearer authorization scheme")
    session = await request_session(request)
    operator = await session.scalar(
        select(OperatorKey).where(OperatorKey.key_hash == security.token_digest(key.strip()))
    )
    if operator is None:
        raise Unauthorized("Invalid operator key")
    if operator.revoked_at is not None:
        raise Unauthorized("The operator key has been revoked")
    return operator


Operator = Annotated[OperatorKey, Depends(current_operator)]
