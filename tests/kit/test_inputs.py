"""Every input bounded (kit/inputs.py): each request integer and query list of the OpenAPI
document has bounds a 64-bit column holds, an out-of-range value is a 422 naming its field on
both databases, and the request guard answers oversized, malformed or NUL-carrying requests with
a clear 4xx in Monite's shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app
from fundline.kit.inputs import (
    INT64_MAX,
    INT64_MIN,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    MAX_QUERY_VALUES,
    MAX_URL_BYTES,
)
from tests.support.apps import make_settings
from tests.support.factories import Tenant, create_payable, payable_payload

TOO_BIG = 2**63  # one past INT64_MAX
HUGE = 10**30


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    schema: dict[str, Any] = app.openapi()
    return schema


def _integers(
    node: Any, where: str, components: dict[str, Any], seen: frozenset[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer schema under ``node`` (following references once), with where it is."""
    if isinstance(node, list):
        for item in node:
            yield from _integers(item, where, components, seen)
        return
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            yield from _integers(components[name], where, components, seen | {name})
        return
    if node.get("type") == "integer":
        yield where, node
    for name, child in node.get("properties", {}).items():
        yield from _integers(child, f"{where}.{name}", components, seen)
    for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
        if key in node:
            yield from _integers(node[key], where, components, seen)


def _requests(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(where, schema, is a query or path parameter) of every request input."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
                yield where, parameter["schema"], parameter["in"] != "header"
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                yield f"{method.upper()} {path} body", media["schema"], False


def test_every_request_integer_fits_64_bits(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    unbounded = [
        where
        for name, schema, _ in _requests(document)
        for where, integer in _integers(schema, name, components, frozenset())
        if not (
            INT64_MIN
            <= integer.get("minimum", integer.get("exclusiveMinimum", TOO_BIG))
            <= INT64_MAX
            and INT64_MIN
            <= integer.get("maximum", integer.get("exclusiveMaximum", TOO_BIG))
            <= INT64_MAX
        )
    ]
    assert not unbounded, "use kit.money.Amount or kit.inputs.Int64/Int32:\n" + "\n".join(unbounded)


def test_every_query_list_is_bounded(document: dict[str, Any]) -> None:
    unbounded = []
    for where, schema, in_url in _requests(document):
        arms = [schema, *schema.get("anyOf", [])]
        if in_url and any(a.get("type") == "array" and "maxItems" not in a for a in arms):
            unbounded.append(where)
    assert not unbounded, "use kit.inputs.QueryList:\n" + "\n".join(unbounded)


# --- out-of-range numbers: a 422 naming the field, on SQLite and PostgreSQL ------------------


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/payables", "total_amount__gt"),
        ("/v1/payables", "amount"),
        ("/v1/receivables", "total_amount__lte"),
        ("/v1/receivables", "discounted_subtotal"),
        ("/v1/financing_invoices", "total_amount__gte"),
        ("/v1/financing_invoices", "total_amount"),
    ],
)
@pytest.mark.parametrize("value", [TOO_BIG, -TOO_BIG - 1, HUGE])
async def test_an_out_of_range_query_number_is_a_422(
    client: httpx.AsyncClient, tenant: Tenant, path: str, name: str, value: int
) -> None:
    response = await client.get(path, params={name: str(value)}, headers=tenant.headers)
    assert _locs(response) == [["query", name]]


async def test_the_64_bit_edges_are_served(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for value in (INT64_MAX, INT64_MIN):
        response = await client.get(
            "/v1/payables", params={"total_amount__lt": str(value)}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text


async def test_an_out_of_range_body_number_is_a_422(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    # Beyond 64 bits the JSON is still valid: the field's bound answers, by name.
    for value in (TOO_BIG, HUGE, -1):
        response = await client.post(
            "/v1/payables", json=payable_payload(amount=value), headers=tenant.headers
        )
        assert _locs(response) == [["body", "total_amount"]]


async def test_a_comment_longer_than_its_column_is_a_422(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """PostgreSQL refuses text longer than a VARCHAR column: the schema bounds it first."""
    payable = await create_payable(client, tenant)
    path = f"/v1/payables/{payable['id']}/mark_as_paid"
    response = await client.post(path, json={"comment": "x" * 1001}, headers=tenant.headers)
    assert _locs(response) == [["body", "comment"]]
    response = await client.post(path, json={"comment": "x" * 1000}, headers=tenant.headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
@pytest.mark.parametrize("path", ["/v1/payables", "/v1/receivables", "/v1/financing_invoices"])
async def test_a_date_time_out_of_range_in_utc_is_a_422(
    client: httpx.AsyncClient, tenant: Tenant, path: str, value: str
) -> None:
    """Valid as written, but in year 0 or 10000 once in UTC, as the databases compare."""
    response = await client.get(path, params={"created_at__gt": value}, headers=tenant.headers)
    assert _locs(response) == [["query", "created_at__gt"]]


async def test_too_many_query_values_is_a_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = {"id__in": [f"00000000-0000-0000-0000-{i:012d}" for i in range(MAX_QUERY_VALUES + 1)]}
    response = await client.get("/v1/payables", params=ids, headers=tenant.headers)
    assert _locs(response) == [["query", "id__in"]]
    response = await client.get(
        "/v1/payables", params={"id__in": ids["id__in"][1:]}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


# --- the request guard -------------------------------------------------------------------------


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


async def test_a_body_over_the_limit_is_a_413(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = b'{"memo": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await client.post(
        "/v1/payables",
        content=body,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert str(MAX_BODY_BYTES) in _error(response, 413)
    response = await client.post(
        "/connect/v1/sessions",
        content=body,
        headers={"content-type": "application/json"},
    )
    _error(response, 413)


async def test_a_long_url_is_a_414(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/v1/payables", params={"document_id": "x" * MAX_URL_BYTES}, headers=tenant.headers
    )
    _error(response, 414)


async def test_large_headers_are_a_431(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/v1/payables", headers={**tenant.headers, "x-large": "x" * MAX_HEADER_BYTES}
    )
    _error(response, 431)
    many = {f"x-h{i}": "x" * 4000 for i in range(9)}
    response = await client.get("/v1/payables", headers={**tenant.headers, **many})
    _error(response, 431)


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"a": }', b"\xff\xfe\x00", b'{"total_amount": 1,}'],
    ids=["unclosed", "no-value", "not-utf8", "trailing-comma"],
)
async def test_a_body_that_is_not_json_is_a_422(
    client: httpx.AsyncClient, tenant: Tenant, body: bytes
) -> None:
    response = await client.post(
        "/v1/payables", content=body, headers={**tenant.headers, "content-type": "application/json"}
    )
    [error] = response.json()["detail"]
    assert response.status_code == 422
    assert (error["loc"], error["type"]) == (["body"], "json_invalid")


async def test_json_nested_too_deep_is_a_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 5000):
        body = '{"memo": ' + "[" * depth + "]" * depth + "}"
        response = await client.post(
            "/v1/payables",
            content=body,
            headers={**tenant.headers, "content-type": "application/json"},
        )
        [error] = _detail(response)
        assert error["type"] == "json_too_deep"
        # Located where it goes too deep, when it parses at all.
        assert error["loc"][:2] == (["body", "memo"] if depth < 1000 else ["body"])
    # At the limit, the schema answers (memo is no list), not the guard.
    body = json.dumps({"memo": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1))})
    response = await client.post(
        "/v1/payables", content=body, headers={**tenant.headers, "content-type": "application/json"}
    )
    assert all(e["type"] != "json_too_deep" for e in _detail(response))


def _detail(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


async def test_a_nul_character_is_a_422_naming_where(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """PostgreSQL's text cannot hold NUL: refused everywhere, on both databases alike."""
    response = await client.post(
        "/v1/entity_users",
        json={"login": "jane\x00", "first_name": "Jane"},
        headers=tenant.headers,
    )
    assert [e["loc"] for e in _detail(response)] == [["body", "login"]]
    response = await client.post(
        "/v1/payables",
        json=payable_payload(line_items=[{"name": "a", "b\x00": 1}]),
        headers=tenant.headers,
    )
    assert [e["loc"] for e in _detail(response)] == [["body", "line_items", 0, "b\x00"]]
    response = await client.get(
        "/v1/payables", params={"document_id": "a\x00"}, headers=tenant.headers
    )
    assert [e["loc"] for e in _detail(response)] == [["query", "document_id"]]
    response = await client.get("/v1/payables/a%00b", headers=tenant.headers)
    assert [e["loc"] for e in _detail(response)] == [["path"]]
    response = await client.post(
        "/v1/payables",
        json=payable_payload(),
        headers={**tenant.headers, "idempotency-key": "k\x00"},
    )
    assert [e["loc"] for e in _detail(response)] == [["header", "idempotency-key"]]


async def test_a_lone_surrogate_is_a_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = b'{"login": "a\\ud800", "first_name": "Jane"}'
    response = await client.post(
        "/v1/entity_users",
        content=body,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert [(e["loc"], e["type"]) for e in _detail(response)] == [
        (["body", "login"], "string_invalid_character")
    ]


async def test_a_json_body_within_the_limits_reaches_the_route(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post("/v1/payables", json=payable_payload(), headers=tenant.headers)
    assert response.status_code == 200, response.text


def test_the_guard_runs_outside_authentication(app: FastAPI) -> None:
    names = [getattr(m.cls, "__name__", "") for m in app.user_middleware]
    assert names.index("RequestLimitsMiddleware") < names.index("AuthenticationMiddleware")
