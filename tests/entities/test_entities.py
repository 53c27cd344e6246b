"""Entities and entity users, as Monite has them, and their tenant boundaries."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fundline.models import Event
from tests.support.factories import Tenant, create_entity_user, organization_payload

INDIVIDUAL = {
    "type": "individual",
    "email": "sam@example.com",
    "address": {
        "line1": "9 Elm St",
        "city": "Boise",
        "postal_code": "83702",
        "country": "US",
        "state": "ID",
    },
    "individual": {"first_name": "Sam", "last_name": "Jones", "title": "Mr"},
}


async def test_create_organization(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/entities", headers=tenant.auth, json=organization_payload("Globex Corp")
    )
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "organization"
    assert body["status"] == "active"
    assert body["organization"]["legal_name"] == "Globex Corp"
    assert body["address"]["country"] == "US"
    assert body["tax_id"] == "12-3456789"


async def test_create_individual(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/v1/entities", headers=tenant.auth, json=INDIVIDUAL)
    assert response.status_code == 201
    assert response.json()["individual"]["first_name"] == "Sam"
    assert "organization" not in response.json()


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"organization": None}, ["body", "organization"]),
        ({"individual": {"first_name": "A", "last_name": "B"}}, ["body", "individual"]),
        ({"email": "not-an-email"}, ["body", "email"]),
        (
            {"address": {"line1": "x", "city": "y", "postal_code": "1", "country": "ZZ"}},
            ["body", "address", "country"],
        ),
        ({"unexpected": 1}, ["body", "unexpected"]),
    ],
)
async def test_invalid_entity_is_422(
    client: httpx.AsyncClient, tenant: Tenant, change: dict[str, Any], loc: list[str]
) -> None:
    response = await client.post(
        "/v1/entities", headers=tenant.auth, json={**organization_payload(), **change}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc


async def test_patch_merges_nested_fields(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.patch(
        f"/v1/entities/{tenant.entity_id}",
        headers=tenant.auth,
        json={
            "address": {"city": "Dallas"},
            "organization": {"legal_name": "Renamed LLC"},
            "phone": "+15125550100",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["address"]["city"] == "Dallas"
    assert body["address"]["line1"] == "100 Congress Ave"
    assert body["organization"]["legal_name"] == "Renamed LLC"
    assert body["phone"] == "+15125550100"


async def test_patch_country_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.patch(
        f"/v1/entities/{tenant.entity_id}",
        headers=tenant.auth,
        json={"address": {"country": "DE"}},
    )
    assert response.status_code == 422


async def test_patch_individual_on_organization_is_422(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.patch(
        f"/v1/entities/{tenant.entity_id}",
        headers=tenant.auth,
        json={"individual": {"first_name": "X"}},
    )
    assert response.status_code == 422


async def test_list_filters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    individual = (await client.post("/v1/entities", headers=tenant.auth, json=INDIVIDUAL)).json()

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/entities?{query}", headers=tenant.auth)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["data"]]

    assert await ids("type=individual") == [individual["id"]]
    assert await ids("type=organization") == [tenant.entity_id]
    assert await ids("email=sam@example.com") == [individual["id"]]
    assert await ids(f"id__in={tenant.entity_id}&id__in={individual['id']}") == [
        tenant.entity_id,
        individual["id"],
    ]
    assert await ids(f"id__not_in={tenant.entity_id}") == [individual["id"]]
    assert await ids("status=active&order=desc") == [individual["id"], tenant.entity_id]
    created = individual["created_at"]
    assert await ids(f"created_at__gte={created.replace('+', '%2B')}") == [individual["id"]]
    assert await ids(f"created_at__lt={created.replace('+', '%2B')}") == [tenant.entity_id]
    assert await ids("sort=updated_at&order=desc&limit=1") == [individual["id"]]


async def test_list_rejects_bad_parameters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for query in ("limit=0", "limit=101", "order=sideways", "sort=name", "type=robot"):
        response = await client.get(f"/v1/entities?{query}", headers=tenant.auth)
        assert response.status_code == 422, query


async def test_entity_events(client: httpx.AsyncClient, app: FastAPI, tenant: Tenant) -> None:
    await client.patch(f"/v1/entities/{tenant.entity_id}", headers=tenant.auth, json={"phone": "1"})
    async with app.state.db.session() as session:
        actions = (
            await session.scalars(
                select(Event.action)
                .where(Event.entity_id == uuid.UUID(tenant.entity_id))
                .order_by(Event.created_at)
            )
        ).all()
    assert actions == ["entity.created", "entity.updated"]


# --- entity users ---------------------------------------------------------------------------


async def test_entity_user_crud(client: httpx.AsyncClient, tenant: Tenant) -> None:
    user = await create_entity_user(client, tenant, login="ann", email="ann@example.com")
    assert user["status"] == "active"
    assert user["login"] == "ann"
    uuid.UUID(user["role_id"])

    got = await client.get(f"/v1/entity_users/{user['id']}", headers=tenant.headers)
    assert got.json() == user

    patched = await client.patch(
        f"/v1/entity_users/{user['id']}",
        headers=tenant.headers,
        json={"first_name": "Annie", "title": "CFO"},
    )
    assert patched.status_code == 200
    assert patched.json()["first_name"] == "Annie"

    deleted = await client.delete(f"/v1/entity_users/{user['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await client.get(f"/v1/entity_users/{user['id']}", headers=tenant.headers)
    assert gone.status_code == 404


async def test_a_null_login_or_first_name_leaves_it_unchanged(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Monite's schema lets both be null; a user always has them (found by fuzzing: a 500)."""
    user = await create_entity_user(client, tenant, login="ann")
    patched = await client.patch(
        f"/v1/entity_users/{user['id']}",
        headers=tenant.headers,
        json={"login": None, "first_name": None, "title": "CFO"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["login"], patched.json()["first_name"]) == ("ann", "Jane")


@pytest.mark.parametrize("website", ["AAA", "example.com", "https://exa mple.com"])
async def test_a_website_must_be_an_absolute_uri(
    client: httpx.AsyncClient, tenant: Tenant, website: str
) -> None:
    """Monite's ``format: uri``: a website without a scheme would break its own responses
    (found by fuzzing)."""
    response = await client.patch(
        f"/v1/entities/{tenant.entity_id}", headers=tenant.auth, json={"website": website}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "website"]
    response = await client.patch(
        f"/v1/entities/{tenant.entity_id}",
        headers=tenant.auth,
        json={"website": "https://acme.example/about?x=1"},
    )
    assert response.status_code == 200, response.text


async def test_entity_user_login_is_unique(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await create_entity_user(client, tenant, login="dup")
    again = await client.post(
        "/v1/entity_users", headers=tenant.headers, json={"login": "dup", "first_name": "B"}
    )
    assert again.status_code == 409


async def test_entity_user_list_filters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    a = await create_entity_user(client, tenant, login="a", first_name="Alice", last_name="Smith")
    b = await create_entity_user(client, tenant, login="b", first_name="Bob", last_name="Stone")

    async def logins(query: str) -> list[str]:
        response = await client.get(f"/v1/entity_users?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [u["login"] for u in response.json()["data"]]

    assert await logins("") == ["a", "b"]
    assert await logins("login=b") == ["b"]
    assert await logins("first_name=Alice") == ["a"]
    assert await logins("name__istartswith=ST") == ["b"]
    assert await logins("name__istartswith=alice%20s") == ["a"]
    assert await logins(f"id__in={b['id']}") == ["b"]
    assert await logins(f"id__not_in={b['id']}") == ["a"]
    assert await logins(f"role_id={a['role_id']}") == ["a", "b"]
    assert await logins("sort=updated_at&order=desc") == ["b", "a"]


ENTITY_USER_CALLS = [
    ("GET", "/v1/entity_users/{id}", None),
    ("PATCH", "/v1/entity_users/{id}", {"first_name": "X"}),
    ("DELETE", "/v1/entity_users/{id}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENTITY_USER_CALLS)
async def test_other_tenants_entity_user_is_404(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = await create_entity_user(client, other_tenant)
    url = path.format(id=theirs["id"])
    # Our token and our entity: their user is not there.
    mine = await client.request(method, url, headers=tenant.headers, json=body)
    assert mine.status_code == 404
    # Our token with their entity: the entity is not ours.
    crossed = await client.request(
        method,
        url,
        headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
        json=body,
    )
    assert crossed.status_code == 404
    still = await client.get(url, headers=other_tenant.headers)
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/entities/{entity}", None),
        ("PATCH", "/v1/entities/{entity}", {"phone": "1"}),
        ("GET", "/v1/entity_users", None),
        ("POST", "/v1/entity_users", {"login": "intruder", "first_name": "I"}),
        ("GET", "/v1/events", None),
    ],
)
async def test_other_partners_entity_is_404(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    url = path.format(entity=other_tenant.entity_id)
    response = await client.request(
        method,
        url,
        headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
        json=body,
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Entity not found"}}


async def test_entity_list_shows_only_own_partner(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await client.get("/v1/entities", headers=tenant.auth)
    assert [e["id"] for e in response.json()["data"]] == [tenant.entity_id]
