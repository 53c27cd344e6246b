"""Resolves the bearer token once per request, before rate limiting needs the client id.

It only identifies; it refuses nothing. Endpoints that need a caller depend on ``Caller``,
which answers 401 with the reason found here. The same query tells whether the entity named
by ``x-monite-entity-id`` belongs to the caller's partner, which ``auth.deps`` then trusts.
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from fundline.auth.cache import TokenCache
from fundline.auth.service import resolve_token
from fundline.kit.db import Database
from fundline.kit.headers import header


class AuthenticationMiddleware:
    def __init__(
        self, app: ASGIApp, *, db: Database, cache: TokenCache, prefixes: tuple[str, ...]
    ) -> None:
        self.app = app
        self.db = db
        self.cache = cache
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            authorization = header(scope, b"authorization")
            if authorization:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    entity_id = _uuid(header(scope, b"x-monite-entity-id"))
                    found = await resolve_token(
                        self.db, self.cache, token.strip(), entity_id=entity_id
                    )
                    if isinstance(found, str):
                        scope["fundline.auth_error"] = found
                    else:
                        caller, owned = found
                        scope["fundline.caller"] = caller
                        scope["fundline.client_id"] = str(caller.client_id)
                        scope["fundline.partner_entity"] = owned
                else:
                    scope["fundline.auth_error"] = "Use the Bearer authorization scheme"
        await self.app(scope, receive, send)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None  # the endpoint's own validation answers for a malformed header
