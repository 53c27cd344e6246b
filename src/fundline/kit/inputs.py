"""Every input bounded: wire types that keep each number and query list within what the
database can hold, and the guard that bounds a request's sizes and shapes before any route.

**Types.** Amounts are ``kit.money.Amount`` (Monite's own cap, 2**53 - 1); a value only
compared with a 64-bit column (an amount filter) is an ``Int64``; other integers carry the
bounds Monite gives them. A repeated query parameter is a ``QueryList`` (one SQL parameter per
value). A website is a ``Uri``. An out-of-range value is then a 422 naming its
field, never a driver's overflow (a 500). ``tests/kit/test_inputs.py`` reads the OpenAPI
document and fails on any request integer or query list left unbounded.

**The guard.** One pure ASGI middleware, outside authentication, so junk costs no database work:

| What | Limit | Answer |
|---|---|---|
| path and query string | ``MAX_URL_BYTES`` | 414 |
| one header / all headers | ``MAX_HEADER_BYTES`` / ``MAX_HEADERS_BYTES`` | 431 |
| body | ``MAX_BODY_BYTES`` (``content-length`` or the bytes sent) | 413 |
| a JSON body that does not parse | | 422 ``json_invalid`` |
| JSON nested deeper than ``MAX_JSON_DEPTH`` | | 422 ``json_too_deep`` |
| a NUL (PostgreSQL's text cannot hold one) or lone surrogate | | 422 ``string_invalid_character`` |

Errors are Monite's shapes (``kit/errors.py``): ``{"error": {"message"}}``, and the validation
shape for the 422s, located as FastAPI locates its own (``["body", "line_items", 0, "name"]``,
``["query", "document_id"]``, ``["header", "idempotency-key"]``). The body is read here once
and handed on to the app unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundline.kit.headers import send_json

# --- the types --------------------------------------------------------------------------------

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""Any value a ``BigInteger`` column holds: what a filter on an amount may compare with."""

MAX_QUERY_VALUES = 100
"""Values one repeated query parameter (``id__in=…&id__in=…``) may carry."""

T = TypeVar("T")
QueryList = Annotated[list[T], Field(max_length=MAX_QUERY_VALUES)]
"""A repeated query parameter, ``QueryList[uuid.UUID]``."""

# RFC 3986's absolute URI, loosely: a scheme, then only characters a URI may hold, each "%"
# starting an escape. What JSON Schema's "uri" format (Monite's, for websites) accepts.
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
)


def _uri(value: str) -> str:
    if not _URI.fullmatch(value):
        raise PydanticCustomError("uri", "Input should be an absolute URI, such as https://…")
    return value


Uri = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2083),
    AfterValidator(_uri),
    Field(json_schema_extra={"format": "uri"}),
]
"""A URL such as a website, up to 2083 characters (Monite's bound)."""

# --- the guard --------------------------------------------------------------------------------

MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32

Loc = tuple[str | int, ...]


class Refused(Exception):
    """Why a request is refused: ``status`` and the body to answer with."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _error(status: int, message: str) -> Refused:
    return Refused(status, {"error": {"message": message}})


def _invalid(loc: Loc, message: str, kind: str) -> Refused:
    return Refused(422, {"detail": [{"loc": list(loc), "msg": message, "type": kind}]})


def _bad_character(loc: Loc) -> Refused:
    message = "Text must not contain NUL characters or unpaired surrogates"
    return _invalid(loc, message, "string_invalid_character")


def _too_deep(loc: Loc) -> Refused:
    return _invalid(loc, f"JSON may nest at most {MAX_JSON_DEPTH} levels deep", "json_too_deep")


def _too_large() -> Refused:
    return _error(413, f"The request body is larger than {MAX_BODY_BYTES} bytes")


def _check_text(text: str, loc: Loc, *, surrogates: bool) -> None:
    if "\x00" in text:
        raise _bad_character(loc)
    if surrogates:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad_character(loc) from None


def check_url(scope: Scope) -> None:
    """The path and query string: their size, and no NUL in them once decoded."""
    query: bytes = scope.get("query_string", b"")
    path: str = scope["path"]
    if len(query) + len(path) > MAX_URL_BYTES:
        raise _error(414, f"The URL is longer than {MAX_URL_BYTES} bytes")
    _check_text(path, ("path",), surrogates=False)
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            _check_text(name + value, ("query", name), surrogates=False)


def check_headers(scope: Scope) -> None:
    """Each header's size, all headers' size, and no NUL in a value."""
    total = 0
    for name, value in scope["headers"]:
        size = len(name) + len(value)
        total += size
        if size > MAX_HEADER_BYTES or total > MAX_HEADERS_BYTES:
            raise _error(431, "The request's header fields are too large")
        if b"\x00" in value:
            raise _bad_character(("header", name.decode("latin-1")))


def check_json(body: bytes) -> None:
    """A JSON body parses, nests at most ``MAX_JSON_DEPTH`` deep, and its text (keys and
    values) has no NUL character or unpaired surrogate."""
    surrogates = False
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits, which are valid JSON: the field's own bound
        # answers for those, by name. The standard parser (FastAPI's) decides, and it lets lone
        # surrogates through, which the walk then looks for.
        try:
            value = json.loads(body)
        except RecursionError:
            raise _too_deep(("body",)) from None
        except json.JSONDecodeError as exc:
            message = f"The body is not valid JSON ({exc.msg}, at character {exc.pos})"
            raise _invalid(("body",), message, "json_invalid") from None
        except UnicodeDecodeError:
            raise _invalid(("body",), "The body is not UTF-8 text", "json_invalid") from None
        surrogates = True
    _walk(value, surrogates=surrogates)


def _walk(root: Any, *, surrogates: bool) -> None:
    # Iterative: a recursive walk would itself be the stack overflow it guards against.
    stack: list[tuple[Any, Loc]] = [(root, ("body",))]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            _check_text(value, loc, surrogates=surrogates)
        elif isinstance(value, dict | list):
            if len(loc) > MAX_JSON_DEPTH:  # loc is "body" then one step per level
                raise _too_deep(loc)
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, (*loc, key), surrogates=surrogates)
                    stack.append((item, (*loc, key)))
            else:
                stack.extend((item, (*loc, index)) for index, item in enumerate(value))


def is_json(scope: Scope) -> bool:
    """The media types FastAPI reads as JSON: ``application/json`` and ``application/*+json``."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return False


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The whole body; refused past ``MAX_BODY_BYTES``, announced or sent."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the app sees what came
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class RequestLimitsMiddleware:
    """Refuses a request outside the limits above before the app sees it.

    ``reads_own_body``: paths whose route parses its body itself, to answer a malformed one
    in its own way (with CORS headers, say); the guard checks their sizes only.
    """

    def __init__(self, app: ASGIApp, *, reads_own_body: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.reads_own_body = reads_own_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope)
            check_headers(scope)
            body = await read_body(scope, receive)
            if body and is_json(scope) and scope["path"] not in self.reads_own_body:
                check_json(body)
        except Refused as refused:
            await send_json(send, refused.status, refused.body)
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read here, then waits as the server's does
    (for the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
