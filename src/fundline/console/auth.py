"""Signing in to the console: an operator key for a session cookie, and the CSRF token that
every form of that session carries.

The cookie holds a random token; only its digest is stored (``console_sessions``). It is
``Secure``, ``HttpOnly`` and ``SameSite=Strict``, and lives ``SESSION_TTL`` at most (a revoked
key ends its sessions at once). The CSRF token is an HMAC of the session's digest under the
server's key: it needs no storage, and a form from another session, or another site, fails.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit import clock
from fundline.kit.errors import Forbidden, Unauthorized
from fundline.kit.security import new_token, token_digest
from fundline.models import ConsoleSession, OperatorKey

COOKIE = "fundline_console"
SESSION_TTL = timedelta(hours=8)
BAD_KEY = "That operator key is not valid (unknown, mistyped or revoked)"


@dataclass(frozen=True)
class SignedIn:
    operator: OperatorKey
    digest: str  # of the session's cookie


async def operator_of_key(session: AsyncSession, key: str) -> OperatorKey:
    """The live operator key ``key`` names; 401 otherwise (one message: no key is confirmed)."""
    operator = await session.scalar(
        select(OperatorKey).where(OperatorKey.key_hash == token_digest(key.strip()))
    )
    if operator is None or operator.revoked_at is not None:
        raise Unauthorized(BAD_KEY)
    return operator


async def sign_in(session: AsyncSession, key: str) -> tuple[str, OperatorKey]:
    """A new session for the operator whose key this is: the cookie's token and the operator."""
    operator = await operator_of_key(session, key)
    token = new_token("fcn_")
    now = clock.system_now()
    session.add(
        ConsoleSession(
            token_hash=token_digest(token),
            operator_key_id=operator.id,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    # Sessions that ran out are swept as new ones begin.
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    await session.flush()
    return token, operator


async def signed_in(session: AsyncSession, token: str | None) -> SignedIn | None:
    """The operator behind a cookie, if its session is live and its key not revoked."""
    if not token:
        return None
    digest = token_digest(token)
    row = await session.execute(
        select(OperatorKey)
        .join(ConsoleSession, ConsoleSession.operator_key_id == OperatorKey.id)
        .where(
            ConsoleSession.token_hash == digest,
            ConsoleSession.expires_at > clock.system_now(),
            OperatorKey.revoked_at.is_(None),
        )
    )
    operator = row.scalar_one_or_none()
    return SignedIn(operator, digest) if operator is not None else None


async def sign_out(session: AsyncSession, who: SignedIn) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == who.digest))


def csrf_token(key: str, who: SignedIn) -> str:
    return hmac.new(key.encode(), f"csrf:{who.digest}".encode(), hashlib.sha256).hexdigest()


def check_csrf(key: str, who: SignedIn, given: str | None) -> None:
    if not given or not hmac.compare_digest(given, csrf_token(key, who)):
        raise Forbidden("The form has expired or did not come from this console; reload the page")
