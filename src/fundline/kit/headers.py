"""ASGI middleware for the headers every response carries and the version rule of ``/v1``.

Pure ASGI (no ``BaseHTTPMiddleware``): they wrap ``send`` to add headers, so streaming and
exceptions pass through untouched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundline.kit import versions
from fundline.kit.db import unavailable

log = structlog.get_logger("fundline.http")

UNAVAILABLE_MESSAGE = "The service is temporarily unavailable: please retry shortly"
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

API_PREFIX = "/v1"

# Told of each request once it is answered: method, route template, status, seconds taken.
RequestObserver = Callable[[str, str, int, float], None]


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def route_template(scope: Scope) -> str:
    """The matched route's full template (``/v1/entities/{entity_id}``), else ``"unmatched"``.

    FastAPI keeps included routers nested, so the matched route knows only its own path
    (``/entities/{entity_id}``), without the prefixes of the routers that include it. Those
    prefixes are literal, so they are the request path's leading segments.
    """
    template = str(getattr(scope.get("route"), "path", "") or "")
    if not template:
        return "unmatched"
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    segments = path.split("/")
    prefix = "/".join(segments[: max(len(segments) - template.count("/"), 0)])
    return prefix + template


class RequestContextMiddleware:
    """Request id, processing time, Monite echo headers, metrics and one log line per request.

    ``observe`` records each request's metrics (the app passes its metrics' recorder).
    """

    def __init__(self, app: ASGIApp, *, observe: RequestObserver) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = header(scope, b"x-request-id") or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                # Headers no endpoint sets, so appended rather than replaced.
                extra = [
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"x-process-time", b"%.6f" % (time.perf_counter() - started)),
                ]
                if is_api_path(scope["path"]):
                    version = scope.get("fundline.api_version")
                    if version:
                        extra.append((b"x-monite-version", version.encode("latin-1")))
                    entity_id = header(scope, b"x-monite-entity-id")
                    if entity_id:
                        extra.append((b"x-monite-entity-id", entity_id.encode("latin-1")))
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if unavailable(exc):
                # An outage, not a fault of this request: one line without a trace, and a 503
                # the client may retry.
                log.warning(
                    "database_unavailable",
                    request_id=request_id,
                    path=scope["path"],
                    error=f"{type(exc).__name__}: {exc}",
                )
                if not started_response:
                    await send_json(
                        send_with_headers,
                        503,
                        {"error": {"message": UNAVAILABLE_MESSAGE}},
                        {"retry-after": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
                    )
                return
            # Logged here, with the request id; the client learns nothing of the cause.
            log.error("unhandled_error", request_id=request_id, path=scope["path"], exc_info=exc)
            if not started_response:
                await send_json(send_with_headers, 500, {"error": {"message": "Server Error"}})
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(scope)
            self.observe(scope["method"], template, status, elapsed)
            log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )


class ApiVersionMiddleware:
    """``x-monite-version`` on ``/v1``: missing → 400, malformed → 422, too old → 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        raw = header(scope, b"x-monite-version")
        if raw is None:
            await send_json(
                send,
                400,
                {
                    "error": {
                        "type": "missing_api_version",
                        "message": "Missing the x-monite-version HTTP header",
                    }
                },
            )
            return
        requested = versions.parse_version(raw.strip())
        if requested is None:
            await send_json(
                send,
                422,
                {
                    "detail": [
                        {
                            "loc": ["header", "x-monite-version"],
                            "msg": "Input should be a valid date in the format YYYY-MM-DD",
                            "type": "date_from_datetime_parsing",
                        }
                    ]
                },
            )
            return
        scope["fundline.api_version"] = requested.isoformat()
        if not versions.is_served(requested):
            await send_json(send, 404, {"error": {"message": "Not Found"}})
            return
        await self.app(scope, receive, send)
