"""Cursor pagination and filters: round trips forwards and back over a few hundred rows."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fundline.entities.service import default_role_id
from fundline.models import EntityUser
from tests.support.factories import Tenant

ROWS = 250


@pytest.fixture
async def many_users(app: FastAPI, tenant: Tenant) -> list[EntityUser]:
    """250 users; created_at repeats every 3 rows, so the id must break ties."""
    entity_id = uuid.UUID(tenant.entity_id)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    users = [
        EntityUser(
            id=uuid.uuid4(),
            entity_id=entity_id,
            login=f"user{i:03d}",
            first_name="Even" if i % 2 == 0 else "Odd",
            role_id=default_role_id(entity_id),
            created_at=start + timedelta(seconds=i // 3),
            updated_at=start + timedelta(seconds=ROWS - i),
        )
        for i in range(ROWS)
    ]
    async with app.state.db.session() as session, session.begin():
        session.add_all(users)
    return users


async def _walk(
    client: httpx.AsyncClient, tenant: Tenant, query: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow next tokens to the end; returns the ids seen and each page's body."""
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    url = f"/v1/entity_users?{query}"
    while True:
        response = await client.get(url, headers=tenant.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        seen += [u["id"] for u in body["data"]]
        if body["next_pagination_token"] is None:
            return seen, pages
        url = f"/v1/entity_users?pagination_token={body['next_pagination_token']}"


def _expected(users: list[EntityUser], *, key: str, reverse: bool) -> list[str]:
    ordered = sorted(users, key=lambda u: (getattr(u, key), u.id), reverse=reverse)
    return [str(u.id) for u in ordered]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_forward_walk_sees_every_row_once(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser], order: str
) -> None:
    seen, pages = await _walk(client, tenant, f"limit=7&order={order}")
    assert seen == _expected(many_users, key="created_at", reverse=order == "desc")
    assert pages[0]["prev_pagination_token"] is None
    assert all(p["prev_pagination_token"] for p in pages[1:])
    assert len(pages) == -(-ROWS // 7)


async def test_backward_walk_returns_the_same_pages(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser]
) -> None:
    _, pages = await _walk(client, tenant, "limit=9")
    back = pages[-1]
    walked = [back["data"]]
    while back["prev_pagination_token"] is not None:
        response = await client.get(
            f"/v1/entity_users?pagination_token={back['prev_pagination_token']}",
            headers=tenant.headers,
        )
        back = response.json()
        walked.append(back["data"])
    assert list(reversed(walked)) == [p["data"] for p in pages]


async def test_sort_and_filter_hold_across_pages(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser]
) -> None:
    seen, _ = await _walk(client, tenant, "limit=10&sort=updated_at&order=desc&first_name=Odd")
    odd = [u for u in many_users if u.first_name == "Odd"]
    assert seen == _expected(odd, key="updated_at", reverse=True)


async def test_token_overrides_other_parameters(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser]
) -> None:
    first = (
        await client.get("/v1/entity_users?limit=5&first_name=Even", headers=tenant.headers)
    ).json()
    token = first["next_pagination_token"]
    second = (
        await client.get(
            f"/v1/entity_users?pagination_token={token}&limit=50&first_name=Odd&order=desc",
            headers=tenant.headers,
        )
    ).json()
    assert len(second["data"]) == 5
    assert {u["first_name"] for u in second["data"]} == {"Even"}
    evens = _expected(
        [u for u in many_users if u.first_name == "Even"], key="created_at", reverse=False
    )
    assert [u["id"] for u in second["data"]] == evens[5:10]


async def test_last_page_has_no_next(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser]
) -> None:
    body = (
        await client.get("/v1/entity_users?limit=100&login=user007", headers=tenant.headers)
    ).json()
    assert [u["login"] for u in body["data"]] == ["user007"]
    assert body["next_pagination_token"] is None
    assert body["prev_pagination_token"] is None


async def test_empty_list(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = (await client.get("/v1/entity_users", headers=tenant.headers)).json()
    assert body == {"data": [], "next_pagination_token": None, "prev_pagination_token": None}


def _flip_one_char(token: str, at: int) -> str:
    replacement = "A" if token[at] != "A" else "B"
    return token[:at] + replacement + token[at + 1 :]


async def test_tampered_token_is_400(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser]
) -> None:
    token = (await client.get("/v1/entity_users?limit=5", headers=tenant.headers)).json()[
        "next_pagination_token"
    ]
    _, _, signature = token.partition(".")
    forged_payload = (
        base64.urlsafe_b64encode(
            b'{"q":{"limit":100},"v":"2020-01-01T00:00:00+00:00","i":"x","f":true}'
        )
        .decode()
        .rstrip("=")
    )
    for bad in (
        _flip_one_char(token, 3),
        _flip_one_char(token, len(token) - 2),
        f"{forged_payload}.{signature}",
        "garbage",
        "",
    ):
        response = await client.get(
            "/v1/entity_users", params={"pagination_token": bad}, headers=tenant.headers
        )
        if bad == "":
            # An empty token is no token: the first page.
            assert response.status_code == 200
            continue
        assert response.status_code == 400, bad
        assert response.json() == {"error": {"message": "The pagination token is invalid"}}


async def test_token_of_another_endpoint_is_400(
    client: httpx.AsyncClient, tenant: Tenant, many_users: list[EntityUser]
) -> None:
    token = (await client.get("/v1/entity_users?limit=5", headers=tenant.headers)).json()[
        "next_pagination_token"
    ]
    response = await client.get(
        "/v1/events", params={"pagination_token": token}, headers=tenant.headers
    )
    assert response.status_code == 400


async def test_token_does_not_cross_tenants(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    many_users: list[EntityUser],
) -> None:
    token = (await client.get("/v1/entity_users?limit=5", headers=tenant.headers)).json()[
        "next_pagination_token"
    ]
    response = await client.get(
        "/v1/entity_users", params={"pagination_token": token}, headers=other_tenant.headers
    )
    assert response.status_code == 200
    assert response.json()["data"] == []
