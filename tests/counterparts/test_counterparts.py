"""Counterparts and their addresses, as Monite has them, and their tenant boundaries."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fundline.kit import clock
from fundline.models import Counterpart, Event
from tests.support.factories import (
    US_ADDRESS,
    Tenant,
    counterpart_payload,
    create_counterpart,
    create_entity_user,
    token_for,
)

BERLIN = {
    "line1": "Flughafenstrasse 52",
    "line2": "Haus 4",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


def individual_payload(first: str = "Jane", last: str = "Doe", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "individual",
        "individual": {
            "first_name": first,
            "last_name": last,
            "title": "Ms.",
            "is_customer": False,
            "is_vendor": True,
            "email": "jane@doe.example",
            "phone": "5553211234",
            "address": dict(BERLIN),
        },
    }
    payload.update(overrides)
    return payload


async def addresses_of(client: httpx.AsyncClient, tenant: Tenant, cid: str) -> list[Any]:
    response = await client.get(f"/v1/counterparts/{cid}/addresses", headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[Any] = response.json()["data"]
    return data


async def event_log(app: FastAPI, tenant: Tenant) -> list[tuple[str, str]]:
    async with app.state.db.session() as session:
        rows = await session.execute(
            select(Event.action, Event.object_id)
            .where(Event.entity_id == uuid.UUID(tenant.entity_id))
            .where(Event.object_type.in_(["counterpart", "counterpart_address"]))
            .order_by(Event.created_at, Event.id)
        )
        return [(action, str(object_id)) for action, object_id in rows]


# --- create and get --------------------------------------------------------------------------


async def test_create_organization(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_counterpart(
        client,
        tenant,
        tax_id="12-3456789",
        external_reference="CUS-1",
        language="de",
        reminders_enabled=False,
    )
    assert created["type"] == "organization"
    assert created["organization"] == {
        "legal_name": "Globex Corp",
        "is_customer": True,
        "is_vendor": False,
        "email": "ap@globex.example",
        "tags": [],
    }
    assert created["tax_id"] == "12-3456789"
    assert created["external_reference"] == "CUS-1"
    assert created["language"] == "de"
    assert created["reminders_enabled"] is False
    assert created["created_automatically"] is False
    assert "individual" not in created
    assert "created_by_entity_user_id" not in created  # a partner token made it
    assert "default_shipping_address_id" not in created

    [address] = await addresses_of(client, tenant, created["id"])
    assert created["default_billing_address_id"] == address["id"]
    assert address == {"id": address["id"], "counterpart_id": created["id"], **US_ADDRESS}

    got = await client.get(f"/v1/counterparts/{created['id']}", headers=tenant.headers)
    assert got.status_code == 200
    assert got.json() == created


async def test_create_individual(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/counterparts", headers=tenant.headers, json=individual_payload()
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["type"] == "individual"
    assert created["individual"] == {
        "first_name": "Jane",
        "last_name": "Doe",
        "title": "Ms.",
        "is_customer": False,
        "is_vendor": True,
        "email": "jane@doe.example",
        "phone": "5553211234",
        "tags": [],
    }
    assert created["language"] == "en"  # Monite's defaults
    assert created["reminders_enabled"] is True
    [address] = await addresses_of(client, tenant, created["id"])
    assert address["id"] == created["default_billing_address_id"]
    assert address["line2"] == "Haus 4"
    assert "state" not in address


async def test_display_name(client: httpx.AsyncClient, app: FastAPI, tenant: Tenant) -> None:
    org = await create_counterpart(
        client,
        tenant,
        organization={**counterpart_payload()["organization"], "legal_name": "Initech LLC"},
    )
    person = (
        await client.post("/v1/counterparts", headers=tenant.headers, json=individual_payload())
    ).json()
    async with app.state.db.session() as session:
        names = {
            str(c.id): (c.name, c.counterpart_name)
            for c in await session.scalars(select(Counterpart))
        }
    assert names == {
        org["id"]: ("Initech LLC", "Initech LLC"),
        person["id"]: ("Jane Doe", "Jane Doe"),
    }


async def test_entity_user_is_recorded_as_creator(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    response = await client.post(
        "/v1/counterparts",
        headers={"authorization": f"Bearer {token}", "x-monite-entity-id": tenant.entity_id},
        json=counterpart_payload(),
    )
    assert response.status_code == 201
    assert response.json()["created_by_entity_user_id"] == user["id"]


def _org(**changes: Any) -> dict[str, Any]:
    return {**counterpart_payload()["organization"], **changes}


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"organization": _org()}, ["body"]),
        ({"type": "robot", "organization": _org()}, ["body"]),
        ({"type": "organization"}, ["body", "organization", "organization"]),
        (
            {"type": "organization", "organization": _without(_org(), "legal_name")},
            ["body", "organization", "organization", "legal_name"],
        ),
        (
            {"type": "organization", "organization": _org(legal_name="")},
            ["body", "organization", "organization", "legal_name"],
        ),
        (
            {"type": "organization", "organization": _without(_org(), "is_customer")},
            ["body", "organization", "organization", "is_customer"],
        ),
        (
            {"type": "organization", "organization": _without(_org(), "address")},
            ["body", "organization", "organization", "address"],
        ),
        (
            {"type": "organization", "organization": _org(email="not-an-email")},
            ["body", "organization", "organization", "email"],
        ),
        (
            {"type": "organization", "organization": _org(address={**US_ADDRESS, "country": "ZZ"})},
            ["body", "organization", "organization", "address", "country"],
        ),
        (
            {"type": "organization", "organization": _org(address={**US_ADDRESS, "city": ""})},
            ["body", "organization", "organization", "address", "city"],
        ),
        (
            {"type": "organization", "organization": _org(tag_ids=[str(uuid.uuid4())])},
            ["body", "organization", "organization", "tag_ids"],
        ),
        (
            {"type": "organization", "organization": _org(), "tax_id": "x" * 31},
            ["body", "organization", "tax_id"],
        ),
        (
            {"type": "organization", "organization": _org(), "language": "xx"},
            ["body", "organization", "language"],
        ),
        (
            {"type": "organization", "organization": _org(), "unexpected": 1},
            ["body", "organization", "unexpected"],
        ),
        ({"type": "individual", "organization": _org()}, ["body", "individual", "individual"]),
        (
            {
                "type": "individual",
                "individual": _without(individual_payload()["individual"], "last_name"),
            },
            ["body", "individual", "individual", "last_name"],
        ),
    ],
)
async def test_invalid_create_is_422(
    client: httpx.AsyncClient,
    app: FastAPI,
    tenant: Tenant,
    body: dict[str, Any],
    loc: list[str],
) -> None:
    response = await client.post("/v1/counterparts", headers=tenant.headers, json=body)
    assert response.status_code == 422
    assert any(d["loc"][: len(loc)] == loc for d in response.json()["detail"]), response.json()
    assert await event_log(app, tenant) == []


async def test_empty_tag_ids_are_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_counterpart(client, tenant, organization=_org(tag_ids=[]))
    assert created["organization"]["tags"] == []


# --- update ----------------------------------------------------------------------------------


async def test_patch_organization(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_counterpart(client, tenant, tax_id="1")
    clock.set_offset(timedelta(minutes=5))
    response = await client.patch(
        f"/v1/counterparts/{created['id']}",
        headers=tenant.headers,
        json={
            "organization": {
                "legal_name": "Globex International",
                "is_vendor": True,
                "phone": "5551231234",
                "email": None,
            },
            "tax_id": None,
            "external_reference": "REF-9",
            "language": "fr",
            "reminders_enabled": False,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["organization"] == {
        "legal_name": "Globex International",
        "is_customer": True,
        "is_vendor": True,
        "phone": "5551231234",
        "tags": [],
    }
    assert "tax_id" not in body
    assert body["external_reference"] == "REF-9"
    assert body["language"] == "fr"
    assert body["reminders_enabled"] is False
    assert body["created_at"] == created["created_at"]
    assert body["updated_at"] > created["updated_at"]
    got = await client.get(f"/v1/counterparts/{created['id']}", headers=tenant.headers)
    assert got.json() == body


async def test_patch_individual(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = (
        await client.post("/v1/counterparts", headers=tenant.headers, json=individual_payload())
    ).json()
    response = await client.patch(
        f"/v1/counterparts/{created['id']}",
        headers=tenant.headers,
        json={"individual": {"last_name": "Smith", "title": None, "is_customer": True}},
    )
    assert response.status_code == 200
    person = response.json()["individual"]
    assert (person["first_name"], person["last_name"], person["is_customer"]) == (
        "Jane",
        "Smith",
        True,
    )
    assert "title" not in person
    listed = await client.get(
        "/v1/counterparts?counterpart_name=Jane%20Smith", headers=tenant.headers
    )
    assert [c["id"] for c in listed.json()["data"]] == [created["id"]]


async def test_patch_default_addresses(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_counterpart(client, tenant)
    url = f"/v1/counterparts/{created['id']}"
    added = await client.post(f"{url}/addresses", headers=tenant.headers, json=BERLIN)
    new_id = added.json()["id"]
    response = await client.patch(
        url,
        headers=tenant.headers,
        json={
            "organization": {},
            "default_billing_address_id": new_id,
            "default_shipping_address_id": created["default_billing_address_id"],
        },
    )
    assert response.status_code == 200
    assert response.json()["default_billing_address_id"] == new_id
    assert response.json()["default_shipping_address_id"] == created["default_billing_address_id"]
    cleared = await client.patch(
        url,
        headers=tenant.headers,
        json={"organization": {}, "default_shipping_address_id": None},
    )
    assert "default_shipping_address_id" not in cleared.json()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"individual": {"first_name": "X"}}, ["body", "individual"]),
        ({"organization": {"legal_name": None}}, ["body"]),
        ({"organization": {"legal_name": ""}}, ["body"]),
        ({"organization": {"is_customer": None}}, ["body"]),
        ({"organization": {"email": "nope"}}, ["body"]),
        ({"organization": {"tag_ids": [str(uuid.uuid4())]}}, ["body"]),
        ({"organization": {}, "language": None}, ["body"]),
        ({"organization": {}, "type": "organization"}, ["body"]),
        ({"tax_id": "1"}, ["body"]),
        (
            {"organization": {}, "default_billing_address_id": str(uuid.uuid4())},
            ["body", "default_billing_address_id"],
        ),
        ({"organization": {}, "default_shipping_address_id": "not-a-uuid"}, ["body"]),
    ],
)
async def test_invalid_patch_is_422(
    client: httpx.AsyncClient,
    app: FastAPI,
    tenant: Tenant,
    body: dict[str, Any],
    loc: list[str],
) -> None:
    created = await create_counterpart(client, tenant)
    before = await event_log(app, tenant)
    response = await client.patch(
        f"/v1/counterparts/{created['id']}", headers=tenant.headers, json=body
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc
    assert await event_log(app, tenant) == before
    got = await client.get(f"/v1/counterparts/{created['id']}", headers=tenant.headers)
    assert got.json() == created


async def test_default_address_must_be_its_own(client: httpx.AsyncClient, tenant: Tenant) -> None:
    mine = await create_counterpart(client, tenant)
    other = await create_counterpart(client, tenant, organization=_org(legal_name="Other"))
    response = await client.patch(
        f"/v1/counterparts/{mine['id']}",
        headers=tenant.headers,
        json={
            "organization": {},
            "default_billing_address_id": other["default_billing_address_id"],
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "default_billing_address_id"]


# --- delete ----------------------------------------------------------------------------------


async def test_delete(client: httpx.AsyncClient, tenant: Tenant) -> None:
    kept = await create_counterpart(client, tenant, organization=_org(legal_name="Kept"))
    gone = await create_counterpart(client, tenant)
    url = f"/v1/counterparts/{gone['id']}"
    response = await client.delete(url, headers=tenant.headers)
    assert response.status_code == 204
    assert response.content == b""
    for method, path, body in [
        ("GET", url, None),
        ("PATCH", url, {"organization": {"legal_name": "Back"}}),
        ("DELETE", url, None),
        ("GET", f"{url}/addresses", None),
        ("POST", f"{url}/addresses", BERLIN),
    ]:
        again = await client.request(method, path, headers=tenant.headers, json=body)
        assert again.status_code == 404, (method, path)
        assert again.json() == {"error": {"message": "Counterpart not found"}}
    listed = await client.get(f"/v1/counterparts?id__in={gone['id']}", headers=tenant.headers)
    assert listed.json()["data"] == []
    listed = await client.get("/v1/counterparts", headers=tenant.headers)
    assert [c["id"] for c in listed.json()["data"]] == [kept["id"]]


async def test_unknown_counterpart_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(f"/v1/counterparts/{uuid.uuid4()}", headers=tenant.headers)
    assert response.status_code == 404
    malformed = await client.get("/v1/counterparts/not-a-uuid", headers=tenant.headers)
    assert malformed.status_code == 422


# --- addresses -------------------------------------------------------------------------------


async def test_addresses(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_counterpart(client, tenant)
    url = f"/v1/counterparts/{created['id']}/addresses"
    clock.set_offset(timedelta(minutes=1))
    response = await client.post(url, headers=tenant.headers, json=BERLIN)
    assert response.status_code == 201
    added = response.json()
    assert added == {"id": added["id"], "counterpart_id": created["id"], **BERLIN}
    listed = await addresses_of(client, tenant, created["id"])
    assert [a["id"] for a in listed] == [created["default_billing_address_id"], added["id"]]
    # Adding an address does not change the default billing address.
    got = await client.get(f"/v1/counterparts/{created['id']}", headers=tenant.headers)
    assert got.json()["default_billing_address_id"] == created["default_billing_address_id"]


@pytest.mark.parametrize(
    "body",
    [
        {**BERLIN, "country": "XX"},
        {k: v for k, v in BERLIN.items() if k != "line1"},
        {**BERLIN, "postal_code": "1" * 21},
        {**BERLIN, "extra": "x"},
    ],
)
async def test_invalid_address_is_422(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    created = await create_counterpart(client, tenant)
    url = f"/v1/counterparts/{created['id']}/addresses"
    response = await client.post(url, headers=tenant.headers, json=body)
    assert response.status_code == 422
    assert len(await addresses_of(client, tenant, created["id"])) == 1


# --- list ------------------------------------------------------------------------------------


async def _three(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """Acme (US customer), Jane Doe (German vendor), Bolt (US customer and vendor), a minute
    apart in that order."""
    made: dict[str, dict[str, Any]] = {}
    clock.set_offset(timedelta(minutes=1))
    made["acme"] = await create_counterpart(
        client,
        tenant,
        tax_id="TX-1",
        organization=_org(legal_name="Acme Corp", email="billing@acme.example"),
    )
    clock.set_offset(timedelta(minutes=2))
    response = await client.post(
        "/v1/counterparts", headers=tenant.headers, json=individual_payload()
    )
    made["jane"] = response.json()
    clock.set_offset(timedelta(minutes=3))
    made["bolt"] = await create_counterpart(
        client,
        tenant,
        organization=_org(
            legal_name="Bolt acme Holdings",
            is_vendor=True,
            email="AP@Bolt.example",
            address={
                **US_ADDRESS,
                "city": "New York",
                "state": "NY",
                "postal_code": "10001",
                "line1": "1 Main St",
            },
        ),
    )
    return made


async def test_list_filters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    made = await _three(client, tenant)
    name_of = {c["id"]: key for key, c in made.items()}

    async def names(query: str) -> list[str]:
        response = await client.get(f"/v1/counterparts?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [name_of[c["id"]] for c in response.json()["data"]]

    assert await names("") == ["acme", "jane", "bolt"]
    assert await names("type=individual") == ["jane"]
    assert await names("type=organization") == ["acme", "bolt"]
    assert await names("counterpart_name=Acme%20Corp") == ["acme"]
    assert await names("counterpart_name=acme%20corp") == []
    assert await names("counterpart_name__iexact=acme%20CORP") == ["acme"]
    assert await names("counterpart_name__contains=Acme") == ["acme"]
    assert await names("counterpart_name__contains=acme") == ["bolt"]
    assert await names("counterpart_name__icontains=ACME") == ["acme", "bolt"]
    assert await names("counterpart_name__icontains=jane%20d") == ["jane"]
    assert await names("counterpart_name__icontains=%25") == []  # wildcards are literal
    assert await names("is_vendor=true") == ["jane", "bolt"]
    assert await names("is_vendor=false") == ["acme"]
    assert await names("is_customer=true") == ["acme", "bolt"]
    assert await names("is_customer=true&is_vendor=true") == ["bolt"]
    assert await names("email=jane@doe.example") == ["jane"]
    assert await names("email__contains=AP@") == ["bolt"]
    assert await names("email__contains=ap@") == []
    assert await names("email__icontains=ap@") == ["bolt"]
    assert await names("tax_id=TX-1") == ["acme"]
    assert await names(f"id__in={made['acme']['id']}&id__in={made['bolt']['id']}") == [
        "acme",
        "bolt",
    ]
    jane_created = quote(made["jane"]["created_at"])
    assert await names(f"created_at__gt={jane_created}") == ["bolt"]
    assert await names(f"created_at__gte={jane_created}") == ["jane", "bolt"]
    assert await names(f"created_at__lt={jane_created}") == ["acme"]
    assert await names(f"created_at__lte={jane_created}") == ["acme", "jane"]
    naive = made["jane"]["created_at"].removesuffix("Z")  # no offset: taken as UTC
    assert await names(f"created_at__gte={quote(naive)}&created_at__lte={quote(naive)}") == ["jane"]
    assert await names("address.country=US") == ["acme", "bolt"]
    assert await names("address.country=DE") == ["jane"]
    assert await names("address.city=New%20York") == ["bolt"]
    assert await names("address.postal_code=10115") == ["jane"]
    assert await names("address.state=TX") == ["acme"]
    assert await names("address.line1=1%20Main%20St") == ["bolt"]
    assert await names("address.line2=Haus%204") == ["jane"]
    assert await names("address.country=US&address.city=Austin") == ["acme"]


async def test_address_filters_use_default_billing_address(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create_counterpart(client, tenant)
    url = f"/v1/counterparts/{created['id']}"
    added = (await client.post(f"{url}/addresses", headers=tenant.headers, json=BERLIN)).json()
    found = await client.get("/v1/counterparts?address.city=Berlin", headers=tenant.headers)
    assert found.json()["data"] == []
    await client.patch(
        url,
        headers=tenant.headers,
        json={"organization": {}, "default_billing_address_id": added["id"]},
    )
    found = await client.get("/v1/counterparts?address.city=Berlin", headers=tenant.headers)
    assert [c["id"] for c in found.json()["data"]] == [created["id"]]


@pytest.mark.parametrize(
    "query",
    [
        "iban=DE89370400440532013000",
        "sort_code=123456",
        "account_number=12345678",
        "vat_id=DE123456789",
        f"tag_ids__in={uuid.UUID(int=1)}",
    ],
)
async def test_filters_on_data_fundline_does_not_keep_match_nothing(
    client: httpx.AsyncClient, tenant: Tenant, query: str
) -> None:
    await create_counterpart(client, tenant)
    response = await client.get(f"/v1/counterparts?{query}", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["data"] == []


async def test_sort_by_name(client: httpx.AsyncClient, tenant: Tenant) -> None:
    made = await _three(client, tenant)
    name_of = {c["id"]: key for key, c in made.items()}

    async def names(query: str) -> list[str]:
        response = await client.get(f"/v1/counterparts?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [name_of[c["id"]] for c in response.json()["data"]]

    assert await names("sort=counterpart_name") == ["acme", "bolt", "jane"]
    assert await names("sort=counterpart_name&order=asc") == ["acme", "bolt", "jane"]
    assert await names("sort=counterpart_name&order=desc") == ["jane", "bolt", "acme"]
    assert await names("order=desc") == ["bolt", "jane", "acme"]  # by creation time


async def test_pagination_round_trip(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = []
    for i, name in enumerate(["Echo", "Alpha", "Delta", "Bravo", "Charlie"]):
        clock.set_offset(timedelta(minutes=i))
        ids.append(
            (
                name,
                (
                    await create_counterpart(
                        client, tenant, organization=_org(legal_name=name, is_vendor=True)
                    )
                )["id"],
            )
        )
    await create_counterpart(client, tenant, organization=_org(legal_name="Aardvark"))
    expected = [i for _, i in sorted(ids, reverse=True)]  # vendors by name, descending

    async def page(query: str) -> dict[str, Any]:
        response = await client.get(f"/v1/counterparts?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = await page("sort=counterpart_name&order=desc&is_vendor=true&limit=2")
    assert "prev_pagination_token" not in first
    second = await page(f"pagination_token={first['next_pagination_token']}")
    # A token carries the query: other parameters given with it are ignored.
    third = await page(
        f"pagination_token={second['next_pagination_token']}&is_vendor=false&limit=100"
    )
    seen = [c["id"] for p in (first, second, third) for c in p["data"]]
    assert seen == expected
    assert "next_pagination_token" not in third
    back = await page(f"pagination_token={third['prev_pagination_token']}")
    assert back["data"] == second["data"]
    back = await page(f"pagination_token={back['prev_pagination_token']}")
    assert back["data"] == first["data"]
    assert "prev_pagination_token" not in back


async def test_tampered_token_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/counterparts?pagination_token=forged", headers=tenant.headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "order=sideways",
        "sort=created_at",
        "type=robot",
        "is_vendor=maybe",
        "id__in=nope",
        "created_at__gt=yesterday",
        "tag_ids__in=nope",
        "tax_id=" + "1" * 31,
        "unknown=1",
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, tenant: Tenant, query: str
) -> None:
    response = await client.get(f"/v1/counterparts?{query}", headers=tenant.headers)
    assert response.status_code == 422, query


# --- events ----------------------------------------------------------------------------------


async def test_events(client: httpx.AsyncClient, app: FastAPI, tenant: Tenant) -> None:
    created = await create_counterpart(client, tenant)
    cid, first_address = created["id"], created["default_billing_address_id"]
    url = f"/v1/counterparts/{cid}"
    await client.patch(url, headers=tenant.headers, json={"organization": {"phone": "1"}})
    added = (await client.post(f"{url}/addresses", headers=tenant.headers, json=BERLIN)).json()
    await client.delete(url, headers=tenant.headers)
    assert await event_log(app, tenant) == [
        ("counterpart.created", cid),
        ("counterpart_address.created", first_address),
        ("counterpart.updated", cid),
        ("counterpart_address.created", added["id"]),
        ("counterpart.deleted", cid),
    ]
    async with app.state.db.session() as session:
        objects = (
            await session.scalars(
                select(Event.object).where(Event.object_type == "counterpart_address")
            )
        ).all()
    assert all(o is not None and o["counterpart_id"] == cid for o in objects)


# --- tenant boundaries -----------------------------------------------------------------------

ID_CALLS = [
    ("GET", "/v1/counterparts/{id}", None),
    ("PATCH", "/v1/counterparts/{id}", {"organization": {"legal_name": "Stolen"}}),
    ("DELETE", "/v1/counterparts/{id}", None),
    ("GET", "/v1/counterparts/{id}/addresses", None),
    ("POST", "/v1/counterparts/{id}/addresses", BERLIN),
]


@pytest.mark.parametrize(("method", "path", "body"), ID_CALLS)
async def test_other_tenants_counterpart_is_404(
    client: httpx.AsyncClient,
    app: FastAPI,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = await create_counterpart(client, other_tenant)
    url = path.format(id=theirs["id"])
    # Our token and our entity: their counterpart is not there.
    mine = await client.request(method, url, headers=tenant.headers, json=body)
    assert mine.status_code == 404
    assert mine.json() == {"error": {"message": "Counterpart not found"}}
    # Our token with their entity: the entity is not ours.
    crossed = await client.request(
        method,
        url,
        headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
        json=body,
    )
    assert crossed.status_code == 404
    assert crossed.json() == {"error": {"message": "Entity not found"}}
    # Nothing changed on their side.
    still = await client.get(f"/v1/counterparts/{theirs['id']}", headers=other_tenant.headers)
    assert still.json() == theirs
    assert len(await addresses_of(client, other_tenant, theirs["id"])) == 1
    assert await event_log(app, tenant) == []


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("POST", counterpart_payload("Intruder"))]
)
async def test_other_tenants_entity_is_404_for_collection(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    await create_counterpart(client, other_tenant)
    response = await client.request(
        method,
        "/v1/counterparts",
        headers={**tenant.auth, "x-monite-entity-id": other_tenant.entity_id},
        json=body,
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Entity not found"}}
    listed = await client.get("/v1/counterparts", headers=other_tenant.headers)
    assert len(listed.json()["data"]) == 1


async def test_list_shows_only_own_entity(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await create_counterpart(client, tenant)
    theirs = await create_counterpart(client, other_tenant)
    listed = await client.get(
        f"/v1/counterparts?id__in={mine['id']}&id__in={theirs['id']}", headers=tenant.headers
    )
    assert [c["id"] for c in listed.json()["data"]] == [mine["id"]]
