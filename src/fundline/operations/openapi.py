"""The API reference: ``/openapi.json`` made complete in one place, and ``/docs`` and ``/redoc``
rendered with Swagger UI and ReDoc served by Fundline itself, so they work with no internet.

FastAPI documents only what routes declare, and much of ``/v1``'s contract is kept around the
routes, by middleware it cannot see: the version rule (``kit/headers.py``), the bearer token
(``auth/middleware.py``), the rate limit and the error handler. ``complete`` adds what they do
to the generated document, once: ``x-monite-version`` on every ``/v1`` operation, the error
responses each operation can answer with Monite's error schemas, and one surface tag each.

The Swagger UI and ReDoc files come from the ``fastapi-standalone-docs`` package (its files
only: its ``StandaloneDocs`` patches FastAPI globally, which we do not want).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts

from fundline.auth.deps import current_entity, current_entity_id
from fundline.kit import inputs
from fundline.kit.headers import API_PREFIX
from fundline.kit.pages import Assets
from fundline.kit.versions import CURRENT_VERSION

MONITE = "Monite API"
SURFACES: dict[str, str] = {
    MONITE: (
        "Monite's API on `/v1`: every operation takes `x-monite-version` and a bearer token "
        "from `POST /v1/auth/token`; entity-scoped ones take `x-monite-entity-id`. Errors are "
        "Monite's shapes."
    ),
    "Connect": (
        "The API of the Connect widget's pages, `/connect/v1`: a Connect session's bearer "
        "token, obtained with a one-time token. Not Monite's; no `x-monite-*` headers."
    ),
    "Lender": "The lender's console API, `/lender/v1`: an operator key as bearer token.",
    "Sandbox": (
        "Sandbox mode only, `/sandbox/v1`: the sandbox clock and simulations of what the "
        "lender or the payer would do. A partner's bearer token."
    ),
    "Operations": "Health, readiness and metrics: public, unversioned, not rate-limited.",
}
# The first prefix a path starts with names its surface; the rest is Operations.
_PREFIXES = (
    (API_PREFIX, MONITE),
    ("/connect", "Connect"),
    ("/lender", "Lender"),
    ("/sandbox", "Sandbox"),
)

VERSION_HEADER: dict[str, Any] = {
    "name": "x-monite-version",
    "in": "header",
    "required": True,
    "description": "API version to process this request.",
    "schema": {"type": "string", "format": "date"},
    "example": CURRENT_VERSION,
}
ENTITY_HEADER: dict[str, Any] = {
    "name": "x-monite-entity-id",
    "in": "header",
    "required": True,
    "description": "The ID of the entity that owns the requested resource.",
    "schema": {
        "type": "string",
        "format": "uuid",
        "examples": ["9d2b4c8f-2087-4738-ba91-7359683c49a4"],
    },
}
# What makes an operation entity-scoped: it depends on one of these.
ENTITY_DEPENDENCIES = frozenset({current_entity, current_entity_id})

ERROR = "ErrorSchemaResponse"
VALIDATION = "HTTPValidationError"
RATE_LIMIT = "RateLimitErrorResponse"
# Monite's own error schemas, as its OpenAPI document has them (same names, same shapes); the
# 429 body has no schema there, so it is named here.
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorSchema": {
        "properties": {"message": {"type": "string"}},
        "type": "object",
        "required": ["message"],
    },
    ERROR: {
        "properties": {"error": {"$ref": "#/components/schemas/ErrorSchema"}},
        "type": "object",
        "required": ["error"],
    },
    VALIDATION: {
        "properties": {
            "detail": {"items": {"$ref": "#/components/schemas/ValidationError"}, "type": "array"}
        },
        "type": "object",
    },
    "ValidationError": {
        "properties": {
            "loc": {
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "type": "array",
            },
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
    },
    RATE_LIMIT: {
        "description": "Monite's 429 body: a bare `message`, not wrapped in `error`.",
        "properties": {"message": {"type": "string"}},
        "type": "object",
        "required": ["message"],
    },
}

# Errors particular to one operation, beyond the rules of ``_errors``: (description, schema
# name or schema). A route may declare its own instead (``responses={403: {...}}``): ``complete``
# keeps the route's description and gives it the error schema. These are the ones no route
# declares yet.
SPECIFIC_ERRORS: dict[tuple[str, str], dict[int, tuple[str, str | dict[str, Any]]]] = {
    ("post", f"{API_PREFIX}/entities"): {
        403: ("Forbidden: creating an entity needs a partner-level token", ERROR),
    },
    ("post", "/sandbox/v1/businesses/{entity_id}/reset"): {
        403: ("Forbidden: only a partner token can reset the sandbox", ERROR),
    },
    ("get", "/ready"): {
        503: (
            "Not ready: the database is unreachable or not at the latest migration",
            {
                "type": "object",
                "properties": {"status": {"const": "unavailable"}, "reason": {"type": "string"}},
                "required": ["status", "reason"],
            },
        ),
    },
}
_CHANGES = frozenset({"post", "put", "patch", "delete"})

BAD_REQUEST = (
    "Bad Request: no `x-monite-version` header, or an invalid pagination token or `Idempotency-Key`"
)
UNAUTHORIZED = "Unauthorized: the token is missing, invalid or expired"
BAD_CREDENTIALS = "Unauthorized: the client ID or secret is wrong"
MONITE_NOT_FOUND = (
    "Not Found: no such entity or object for this caller, or an `x-monite-version` older "
    "than Monite's oldest version"
)
NOT_FOUND = "Not Found: no such object for this caller"
CONNECT_FORBIDDEN = "Forbidden: the session's scope, or the page's origin, does not allow this"
CONFLICT = "Conflict: the object's state does not allow this"
IDEMPOTENT_CONFLICT = (
    "Conflict: the object's state does not allow this, or a request with the same "
    "`Idempotency-Key` is still being processed"
)
TOO_MANY_REQUESTS = "Too Many Requests: over the rate limit; retry after `Retry-After` seconds"
INVALID_PAGE_TOKEN = "Bad Request: an invalid pagination token"
TOO_LARGE = f"Content Too Large: a body over {inputs.MAX_BODY_BYTES} bytes"
URI_TOO_LONG = f"URI Too Long: a path and query string over {inputs.MAX_URL_BYTES} bytes"
HEADERS_TOO_LARGE = (
    f"Request Header Fields Too Large: a header over {inputs.MAX_HEADER_BYTES} bytes, or all "
    f"over {inputs.MAX_HEADERS_BYTES}"
)


def surface_of(path: str) -> str:
    for prefix, surface in _PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return surface
    return "Operations"


def install_api_reference(app: FastAPI) -> None:
    """Serve the completed ``/openapi.json`` and the ``/docs`` and ``/redoc`` pages. The app
    must be created with ``docs_url=None, redoc_url=None`` (FastAPI's pages use a CDN)."""
    # FastAPI documents this override: app.openapi is the document's one source.
    app.openapi = functools.partial(openapi_document, app)  # type: ignore[method-assign]
    app.include_router(router)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for ``app``, completed by ``complete``; built once."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
            servers=app.servers,
            separate_input_output_schemas=app.separate_input_output_schemas,
        )
        app.openapi_schema = complete(document, entity_scoped=set(entity_scoped(app)))
    return app.openapi_schema


def entity_scoped(app: FastAPI) -> Iterator[tuple[str, str]]:
    """``(method, path)`` of every documented operation that depends on the entity header."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            if _depends_on(context.dependant, ENTITY_DEPENDENCIES):
                for method in context.methods or ():
                    yield method.lower(), str(context.path_format)


def _depends_on(dependant: Dependant, calls: frozenset[Any]) -> bool:
    return any(d.call in calls or _depends_on(d, calls) for d in dependant.dependencies)


def complete(document: dict[str, Any], *, entity_scoped: set[tuple[str, str]]) -> dict[str, Any]:
    """The document with the headers, error responses and tags the routes do not declare."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(copy.deepcopy(ERROR_SCHEMAS))
    surfaces: set[str] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            surface = surface_of(path)
            surfaces.add(surface)
            operation["tags"] = [surface]
            parameters = operation.setdefault("parameters", [])
            if surface == MONITE:
                _declare(parameters, VERSION_HEADER, first=True)
            if (method, path) in entity_scoped:
                _declare(parameters, ENTITY_HEADER)
            if not parameters:
                del operation["parameters"]
            responses = operation.setdefault("responses", {})
            for status, (description, schema) in _errors(surface, method, path, operation):
                _respond(responses, status, description, schema)
            for status, response in responses.items():  # errors the route declared itself
                if status.isdigit() and int(status) >= 400:
                    _respond(responses, int(status), response["description"], ERROR)
            operation["responses"] = dict(sorted(responses.items()))
    document["tags"] = [
        {"name": name, "description": text} for name, text in SURFACES.items() if name in surfaces
    ]
    return document


def _declare(
    parameters: list[dict[str, Any]], parameter: dict[str, Any], *, first: bool = False
) -> None:
    """Add ``parameter`` unless the operation already declares a header of that name."""
    name = parameter["name"]
    if not any(p["in"] == "header" and p["name"].lower() == name for p in parameters):
        parameters.insert(0 if first else len(parameters), copy.deepcopy(parameter))


def _errors(
    surface: str, method: str, path: str, operation: dict[str, Any]
) -> Iterator[tuple[int, tuple[str, str | dict[str, Any]]]]:
    """The error statuses ``operation`` can answer: the rules of its surface, then its own."""
    authenticated = bool(operation.get("security"))
    takes_input = bool(operation.get("parameters") or "requestBody" in operation)
    if surface == MONITE:
        yield 400, (BAD_REQUEST, ERROR)
        yield 401, (UNAUTHORIZED if authenticated else BAD_CREDENTIALS, ERROR)
        yield 404, (MONITE_NOT_FOUND, ERROR)
    elif surface != "Operations":
        if any(p["name"] == "pagination_token" for p in operation.get("parameters", ())):
            yield 400, (INVALID_PAGE_TOKEN, ERROR)
        yield 401, (UNAUTHORIZED, ERROR)
        if surface == "Connect":
            yield 403, (CONNECT_FORBIDDEN, ERROR)
        if "{" in path:
            yield 404, (NOT_FOUND, ERROR)
    if method in _CHANGES and authenticated:
        # Idempotency keys are taken where the partner's token is (see kit/routing.py).
        idempotent = method == "post" and surface in (MONITE, "Sandbox")
        yield 409, (IDEMPOTENT_CONFLICT if idempotent else CONFLICT, ERROR)
    yield from SPECIFIC_ERRORS.get((method, path), {}).items()
    # The request guard's limits (kit/inputs.py), which every operation keeps.
    if "requestBody" in operation:
        yield 413, (TOO_LARGE, ERROR)
    yield 414, (URI_TOO_LONG, ERROR)
    yield 431, (HEADERS_TOO_LARGE, ERROR)
    if surface == MONITE or (surface != "Operations" and takes_input):
        yield 422, ("Validation Error", VALIDATION)
    if surface == MONITE:
        yield 429, (TOO_MANY_REQUESTS, RATE_LIMIT)
    yield 500, ("Internal Server Error", ERROR)


def _respond(
    responses: dict[str, Any], status: int, description: str, schema: str | dict[str, Any]
) -> None:
    """Declare ``status`` with ``schema`` (a component's name, or a schema); what the route
    declared itself is kept."""
    response = responses.setdefault(str(status), {"description": description})
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    response.setdefault("content", {"application/json": {"schema": schema}})
    if status == 429:
        response.setdefault(
            "headers",
            {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        )


# --- the pages and their files --------------------------------------------------------------

STATIC_PREFIX = "/docs/static"
_FILES = {  # our name → the file in the package
    "swagger-ui-bundle.js": "static/swagger/swagger-ui-bundle.js",
    "swagger-ui.css": "static/swagger/swagger-ui.css",
    "redoc.standalone.js": "static/redoc/redoc.standalone.js",
    "logo-mini.svg": "static/redoc/logo-mini.svg",
    "favicon.png": "static/fastapi/favicon.png",
}
_PAGE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


# Read on first use: 3 MB that a CLI command never needs.
assets = Assets("fastapi_standalone_docs", url_prefix=STATIC_PREFIX, files=_FILES)


def asset_url(request: Request, name: str) -> str:
    """Where ``name`` is served: a content-hashed URL, cached for good."""
    return assets.url(name, root_path=request.scope.get("root_path", ""))


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    response = get_swagger_ui_html(
        openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
        title=f"{app.title} API reference",
        swagger_js_url=asset_url(request, "swagger-ui-bundle.js"),
        swagger_css_url=asset_url(request, "swagger-ui.css"),
        swagger_favicon_url=asset_url(request, "favicon.png"),
        # No validator badge: it would send the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    response.headers.update(_PAGE_HEADERS)
    return response


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    response = get_redoc_html(
        openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
        title=f"{app.title} API reference",
        redoc_js_url=asset_url(request, "redoc.standalone.js"),
        redoc_favicon_url=asset_url(request, "favicon.png"),
        with_google_fonts=False,
    )
    response.headers.update(_PAGE_HEADERS)
    return response


@router.get("/redoc/logo-mini.svg")
async def redoc_logo() -> Response:
    """The package's ReDoc loads its footer logo from the page's own path (instead of a CDN),
    so this one file keeps a fixed name."""
    return assets.file("logo-mini.svg", cache_control="public, max-age=86400")


@router.get(STATIC_PREFIX + "/{hashed}")
async def static_file(hashed: str) -> Response:
    return assets.response(hashed)
