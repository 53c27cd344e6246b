"""A JSON body sent without ``content-type: application/json``: a 422 that says so, in the
validation shape of Monite's spec (the client checks every ``/v1`` answer against it)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from fundline.kit.db import Database
from tests.support.factories import Tenant, make_operator_key

ENTITY = {
    "type": "organization",
    "email": "ap@northwind.example",
    "address": {
        "line1": "100 Congress Ave",
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "organization": {"legal_name": "Northwind Traders LLC"},
    "tax_id": "12-3456789",
}


def _only_error(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        (None, "this request had none"),
        ("text/plain", "content-type is not JSON"),
        ("application/x-www-form-urlencoded", "content-type is not JSON"),
    ],
)
async def test_a_json_body_without_its_content_type_is_a_422_that_says_so(
    client: httpx.AsyncClient, tenant: Tenant, content_type: str | None, named: str
) -> None:
    headers = dict(tenant.auth)
    if content_type:
        headers["content-type"] = content_type
    response = await client.post(
        "/v1/entities", content=json.dumps(ENTITY).encode(), headers=headers
    )
    assert response.request.headers.get("content-type") == content_type  # httpx adds none
    error = _only_error(response)
    assert error["loc"] == ["body"]
    assert error["type"] == "content_type"
    message = str(error["msg"])
    assert "content-type: application/json" in message
    assert named in message


async def test_the_same_body_as_json_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/entities",
        content=json.dumps(ENTITY).encode(),
        headers={**tenant.auth, "content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


async def test_other_errors_are_kept_beside_it(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Only the body's errors give way to the content-type one: a bad path id still shows."""
    response = await client.patch(
        "/v1/entities/not-a-uuid",
        content=b'{"email": "new@northwind.example"}',
        headers={**tenant.auth, "content-type": "text/plain"},
    )
    assert response.status_code == 422, response.text
    errors = {tuple(e["loc"]): e for e in response.json()["detail"]}
    assert set(errors) == {("body",), ("path", "entity_id")}
    assert errors[("body",)]["type"] == "content_type"


async def test_invalid_json_with_the_right_content_type_is_still_a_json_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/entities",
        headers={**tenant.auth, "content-type": "application/json"},
        content=b"{not json",
    )
    error = _only_error(response)
    assert error["type"] == "json_invalid"


async def test_outside_v1_too(client: httpx.AsyncClient, db: Database) -> None:
    """The lender API (not Monite's) answers the same, for consistency."""
    response = await client.post(
        f"/lender/v1/financing_invoices/{uuid.uuid4()}/repayments",
        content=b'{"amount": 100}',
        headers={"authorization": f"Bearer {await make_operator_key(db)}"},
    )
    error = _only_error(response)
    assert error["loc"] == ["body"]
    assert "content-type: application/json" in str(error["msg"])
