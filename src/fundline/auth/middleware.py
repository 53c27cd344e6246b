"""Resolves the bearer token once per request, before rate limiting needs the client id.

It only identifies; it refuses nothing. Endpoints that need a caller depend on ``Caller``,
which answers 401 with the reason found here.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from fundline.auth.service import resolve_token
from fundline.kit.db import Database
from fundline.kit.headers import header


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, *, db: Database, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.db = db
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            authorization = header(scope, b"authorization")
            if authorization:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    async with self.db.reader.connect() as conn:
                        found = await resolve_token(conn, token.strip())
                    if isinstance(found, str):
                        scope["fundline.auth_error"] = found
                    else:
                        scope["fundline.caller"] = found
                        scope["fundline.client_id"] = str(found.client_id)
                else:
                    scope["fundline.auth_error"] = "Use the Bearer authorization scheme"
        await self.app(scope, receive, send)
