"""One error base and the handlers that render Monite's error shapes.

Monite answers ``{"error": {"message": ...}}`` for every status except validation (422, FastAPI's
``{"detail": [...]}``) and rate limiting (429, ``{"message": ...}``). A transaction the database
aborted for a conflict with others (a deadlock, a serialization failure) is a 503 in the first
shape, with ``Retry-After``. Nothing else reaches a client: an unhandled exception is logged with
the request id and answered with a bare 500 (by ``RequestContextMiddleware``, which sees every
request).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fundline.kit.db import is_retryable


class FundlineError(Exception):
    """A domain error with an HTTP status; the message is shown to the client."""

    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadRequest(FundlineError):
    status_code = 400


class Unauthorized(FundlineError):
    status_code = 401


class Forbidden(FundlineError):
    status_code = 403


class NotFound(FundlineError):
    status_code = 404


class Conflict(FundlineError):
    status_code = 409


class Unavailable(FundlineError):
    """A 503 with ``Retry-After``: the request failed for now and may be sent again as it is."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# What a client sees when the database kept aborting its request's transaction in favour of
# others (``kit.routing`` ran it again a few times first).
BUSY = Unavailable("The service is busy with conflicting changes; send the request again")


class Unprocessable(FundlineError):
    """A 422 for rules a schema cannot express; rendered in the validation shape."""

    status_code = 422

    def __init__(self, message: str, *, loc: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(message)
        self.loc = loc


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}


def validation_body(message: str, loc: tuple[str | int, ...], kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": list(loc), "msg": message, "type": kind}]}


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Keep the fields Monite's ``ValidationError`` has, made JSON-safe (no raw input echo)."""
    cleaned = []
    for err in errors:
        cleaned.append(
            {
                "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return cleaned


def render_error(exc: Exception) -> JSONResponse | None:
    """Monite's shape for an error raised on purpose; ``None`` for anything unexpected.

    The one renderer: the app's exception handlers and ``TransactionalRoute`` (which must
    render inside the request's transaction, to store the result of an idempotent request)
    both call it.
    """
    if isinstance(exc, Unprocessable):
        return JSONResponse(validation_body(exc.message, exc.loc, "value_error"), 422)
    if is_retryable(exc):
        exc = BUSY
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(error_body(exc.message), exc.status_code, headers=headers)
    if isinstance(exc, FundlineError):
        return JSONResponse(error_body(exc.message), exc.status_code)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 422:
            return JSONResponse({"detail": exc.detail}, 422)
        return JSONResponse(error_body(str(exc.detail)), exc.status_code, headers=exc.headers)
    return None


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    response = render_error(exc)
    assert response is not None
    return response


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A deadlock or serialization failure outside ``TransactionalRoute`` is a 503 too; any
    other database error stays an unexpected one (the bare 500)."""
    response = render_error(exc)
    if response is None:
        raise exc
    return response


def _not_json_body(request: Request) -> dict[str, Any]:
    # Says what was wrong without echoing the header (no input is echoed in a 422).
    sent = request.headers.get("content-type")
    got = "this request's content-type is not JSON" if sent else "this request had none"
    return {
        "loc": ["body"],
        "msg": f"Send the body as JSON with `content-type: application/json` ({got})",
        "type": "content_type",
    }


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_validation_errors(exc.errors())
    # FastAPI parses a body as JSON only when its content-type says JSON, and otherwise
    # validates the raw bytes, which fails with a message about the model, not the cause.
    # A 422 in the validation shape still, not a 415: Monite's contract has no 415.
    if isinstance(exc.body, bytes):
        errors = [_not_json_body(request), *(e for e in errors if e["loc"][:1] != ["body"])]
    return JSONResponse({"detail": errors}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FundlineError, _known_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(StarletteHTTPException, _known_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
