"""The API reference: the OpenAPI document is complete for every route, and ``/docs`` and
``/redoc`` work with no internet (everything they load is served by Fundline)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openapi_spec_validator
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from jsonschema import Draft202012Validator

from fundline.app import create_app, shutdown
from fundline.auth.deps import current_entity, current_entity_id
from fundline.operations.openapi import SPECIFIC_ERRORS
from tests.support.apps import make_settings
from tests.support.factories import Tenant
from tests.support.spec import SPEC_PATH, check_response

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SURFACE_PREFIXES = {  # the first tag of an operation, by its path
    "/v1/": "Monite API",
    "/connect/v1/": "Connect",
    "/lender/v1/": "Lender",
    "/sandbox/v1/": "Sandbox",
}
SURFACES = ["Monite API", "Connect", "Lender", "Sandbox", "Operations"]
OPERATIONS_PATHS = {"/health", "/ready", "/metrics"}
ERROR_COMPONENTS = {"ErrorSchemaResponse", "HTTPValidationError", "RateLimitErrorResponse"}
MONITE_SCHEMAS = ("ErrorSchemaResponse", "ErrorSchema", "HTTPValidationError", "ValidationError")


@pytest.fixture(scope="module", params=["sandbox", "production"])
async def reference_app(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[FastAPI]:
    """The app in each mode (production has no sandbox routes); the document needs no data."""
    application = create_app(make_settings(sqlite_url, mode=request.param))
    yield application
    await shutdown(application)


@pytest.fixture(scope="module")
def document(reference_app: FastAPI) -> dict[str, Any]:
    return reference_app.openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert method in METHODS, (path, method)  # no path-level keys to skip
            yield method, path, operation


def documented_routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """``(method, path, route)`` of every route FastAPI should document, found in the routes."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            for method in context.methods or ():
                yield method.lower(), str(context.path_format), context


def depends_on_entity(dependant: Dependant) -> bool:
    return any(
        d.call in (current_entity, current_entity_id) or depends_on_entity(d)
        for d in dependant.dependencies
    )


def header(operation: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in operation.get("parameters", [])
        if p["in"] == "header" and p["name"].lower() == name
    ]


def error_ref(response: dict[str, Any]) -> str | None:
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    if ref is None:
        return None
    name = str(ref).removeprefix("#/components/schemas/")
    return name if name in ERROR_COMPONENTS else None


# --- the document ------------------------------------------------------------------------------


def test_every_route_is_in_the_document_and_nothing_else(
    reference_app: FastAPI, document: dict[str, Any]
) -> None:
    in_document = {(method, path) for method, path, _ in operations(document)}
    in_routes = {(method, path) for method, path, _ in documented_routes(reference_app)}
    assert in_document == in_routes
    assert ("get", "/v1/financing_offers") in in_document  # the walk found the nested routers
    hidden = {"/docs", "/redoc", "/openapi.json", "/connect/v1/frame", "/connect/v1/connect.js"}
    assert not hidden & set(document["paths"])
    sandbox = {path for path in document["paths"] if path.startswith("/sandbox/")}
    assert bool(sandbox) == reference_app.state.settings.is_sandbox


def test_v1_operations_declare_the_version_header(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        declared = header(operation, "x-monite-version")
        if not path.startswith("/v1/"):
            assert not declared, (method, path)
            continue
        assert len(declared) == 1, (method, path)
        assert declared[0]["required"] is True
        assert declared[0]["schema"] == {"type": "string", "format": "date"}
        assert declared[0]["example"] == "2024-05-25"
        assert operation["parameters"][0] is declared[0]  # first, as Monite lists it


def test_entity_scoped_operations_declare_the_entity_header(
    reference_app: FastAPI, document: dict[str, Any]
) -> None:
    scoped = {
        (method, path)
        for method, path, route in documented_routes(reference_app)
        if depends_on_entity(route.dependant)
    }
    assert ("get", "/v1/financing_invoices") in scoped  # the direct route is found too
    assert ("get", "/v1/entities/{entity_id}") not in scoped
    for method, path, operation in operations(document):
        declared = header(operation, "x-monite-entity-id")
        assert len(declared) == ((method, path) in scoped), (method, path)
        if declared:
            assert declared[0]["required"] is True
            assert declared[0]["schema"]["format"] == "uuid"
        names = [(p["in"], p["name"].lower()) for p in operation.get("parameters", [])]
        assert len(names) == len(set(names)), (method, path, names)


def test_every_operation_declares_its_errors(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert error_ref(responses["500"]) == "ErrorSchemaResponse", (method, path)
        client_errors = {s for s, r in responses.items() if s.startswith("4") and error_ref(r)}
        # The request guard's limits (kit/inputs.py) hold on every operation.
        assert {"414", "431"} <= client_errors, (method, path)
        assert ("413" in client_errors) == ("requestBody" in operation), (method, path)
        client_errors -= {"413", "414", "431"}
        if not client_errors:
            # Only an operation that takes nothing a client can get wrong answers no 4xx.
            assert path in OPERATIONS_PATHS, (method, path)
            assert not operation.get("parameters"), (method, path)
            assert "requestBody" not in operation, (method, path)
            assert not operation.get("security"), (method, path)
            continue
        for status in client_errors:
            expected = {"422": "HTTPValidationError", "429": "RateLimitErrorResponse"}
            assert error_ref(responses[status]) == expected.get(status, "ErrorSchemaResponse")
        if path.startswith("/v1/"):
            assert {"400", "401", "404", "422", "429"} <= client_errors, (method, path)
            assert "Retry-After" in responses["429"]["headers"]
            if method == "post" and operation.get("security"):
                assert "409" in client_errors, (method, path)
        elif operation.get("security"):
            assert "401" in client_errors, (method, path)
        if "{" in path:
            assert "404" in client_errors, (method, path)
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in client_errors, (method, path)


def test_operation_specific_errors_name_real_operations(
    reference_app: FastAPI, document: dict[str, Any]
) -> None:
    in_document = {(method, path) for method, path, _ in operations(document)}
    named = set(SPECIFIC_ERRORS)
    if not reference_app.state.settings.is_sandbox:
        named = {(method, path) for method, path in named if not path.startswith("/sandbox/")}
    assert named <= in_document


def test_error_components_are_monites(document: dict[str, Any]) -> None:
    ours = document["components"]["schemas"]
    monite = json.loads(SPEC_PATH.read_text())["components"]["schemas"]
    for name in MONITE_SCHEMAS:
        assert ours[name] == monite[name], name
    assert ours["RateLimitErrorResponse"]["required"] == ["message"]


def test_each_operation_has_one_surface_tag_first(document: dict[str, Any]) -> None:
    used = set()
    for method, path, operation in operations(document):
        expected = next(
            (s for prefix, s in SURFACE_PREFIXES.items() if path.startswith(prefix)), "Operations"
        )
        if expected == "Operations":
            assert path in OPERATIONS_PATHS, (method, path)
        tags = operation["tags"]
        assert tags[0] == expected, (method, path, tags)
        assert len(set(SURFACES) & set(tags)) == 1, (method, path, tags)
        used.add(expected)
    declared = document["tags"]
    assert [t["name"] for t in declared] == [s for s in SURFACES if s in used]
    assert all(t["description"] for t in declared)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    refs = set(walk(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)  # each is a valid JSON Schema 2020-12


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    openapi_spec_validator.validate(document)


# --- the pages -----------------------------------------------------------------------------------


@pytest.fixture
async def browser(reference_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with nothing of the API's own: what a browser opening the pages sends."""
    transport = httpx.ASGITransport(app=reference_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fundline.test") as client:
        yield client


CONTENT_TYPES = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/"}


def referenced(html: str) -> list[tuple[str, str]]:
    """``(kind, url)`` of every file a page loads."""
    found = [("script", url) for url in re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)]
    for tag in re.findall(r"<link[^>]*>", html):
        url = re.search(r'href="([^"]+)"', tag)
        assert url, tag
        found.append(("stylesheet" if "stylesheet" in tag else "icon", url.group(1)))
    return found


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_pages_load_only_local_files(browser: httpx.AsyncClient, page: str) -> None:
    response = await browser.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html  # no URL of any other host: not a CDN, not a font service
    files = referenced(html)
    kinds = {kind for kind, _ in files}
    assert {"script", "icon"} <= kinds
    if page == "/docs":
        assert "stylesheet" in kinds
        assert '"validatorUrl": null' in html  # no badge that posts the document elsewhere
    for kind, url in files:
        assert url.startswith("/docs/static/"), url
        asset = await browser.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[kind]), url
        assert asset.headers["cache-control"].endswith("immutable")
        for cdn in (b"cdn.jsdelivr.net", b"cdn.redoc.ly", b"fonts.googleapis.com", b"unpkg.com"):
            assert cdn not in asset.content, (url, cdn)
    spec_url = "/openapi.json"
    assert spec_url in html
    spec = await browser.get(spec_url)
    assert spec.status_code == 200
    assert spec.json()["openapi"].startswith("3.1")


async def test_redoc_logo_is_served_where_its_script_looks(browser: httpx.AsyncClient) -> None:
    # The packaged redoc.standalone.js loads its footer logo from the page's own path.
    response = await browser.get("/redoc/logo-mini.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")


async def test_unknown_asset_is_404(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/docs/static/swagger-ui-bundle.000000000000.js")
    assert response.status_code == 404


# --- "Try it out" ------------------------------------------------------------------------------


def request_from_document(
    document: dict[str, Any], method: str, path: str, *, filled: dict[str, str]
) -> dict[str, str]:
    """The headers Swagger UI's "Try it out" sends for an operation: each declared header's
    example, unless the user ``filled`` it in, and the bearer token of its security scheme."""
    operation = document["paths"][path][method]
    headers: dict[str, str] = {}
    for parameter in operation["parameters"]:
        assert parameter["in"] == "header", parameter  # this operation takes headers only
        name = parameter["name"]
        value = filled.get(name, parameter.get("example"))
        if parameter.get("required"):
            assert value is not None, f"nothing to send for the required {name}"
        if value is not None:
            headers[name] = value
    for requirement in operation["security"]:
        for scheme_name in requirement:
            scheme = document["components"]["securitySchemes"][scheme_name]
            assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
            headers["authorization"] = f"Bearer {filled['token']}"
    return headers


async def test_try_it_out_works_from_the_declared_parameters(app: FastAPI, tenant: Tenant) -> None:
    document = app.openapi()
    headers = request_from_document(
        document,
        "get",
        "/v1/financing_offers",
        filled={"x-monite-entity-id": tenant.entity_id, "token": tenant.token},
    )
    assert set(headers) == {"x-monite-version", "x-monite-entity-id", "authorization"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fundline.test") as client:
        response = await client.get("/v1/financing_offers", headers=headers)
        assert response.status_code == 200, response.text
        check_response(response)
        # And each declared header is needed: without it, the declared error comes back.
        declared = document["paths"]["/v1/financing_offers"]["get"]["responses"]
        for name, status in (
            ("x-monite-version", 400),
            ("x-monite-entity-id", 422),
            ("authorization", 401),
        ):
            partial = {k: v for k, v in headers.items() if k != name}
            response = await client.get("/v1/financing_offers", headers=partial)
            assert response.status_code == status, (name, response.text)
            schema = declared[str(status)]["content"]["application/json"]["schema"]
            validator = Draft202012Validator({**schema, "components": document["components"]})
            validator.validate(response.json())
