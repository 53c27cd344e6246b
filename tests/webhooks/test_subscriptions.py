"""Webhook subscriptions through the API, as Monite's spec has them: every status of every
operation, the secret shown on creation and regeneration only, another partner's ids, the URL
rules in both modes, and the list's pagination and filters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fundline.app import create_app, shutdown
from fundline.kit import clock
from tests.support.apps import make_client, make_settings
from tests.support.factories import Tenant, create_entity_user, make_tenant, token_for
from tests.support.webhooks import PUBLIC_URL, subscribe, use_resolver

BASE = "/v1/webhook_subscriptions"
FIELDS = {"id", "event_types", "object_type", "status", "url"}


async def test_create_get_update_disable_enable_regenerate_delete(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await subscribe(client, tenant, object_type="financing_invoice")
    assert set(created) == {*FIELDS, "secret"}
    assert created["status"] == "enabled"
    assert created["event_types"] == []
    assert created["object_type"] == "financing_invoice"
    assert created["url"] == PUBLIC_URL
    assert created["secret"].startswith("whsec_")
    one = f"{BASE}/{created['id']}"
    shown = {k: v for k, v in created.items() if k != "secret"}

    got = await client.get(one, headers=tenant.auth)
    assert got.status_code == 200
    assert got.json() == shown

    patched = await client.patch(
        one,
        json={"event_types": ["status_changed"], "url": "https://hooks.partner.example/v2"},
        headers=tenant.auth,
    )
    assert patched.status_code == 200
    assert patched.json() == {
        **shown,
        "event_types": ["status_changed"],
        "url": "https://hooks.partner.example/v2",
    }
    # null and absent fields keep their values
    kept = await client.patch(
        one, json={"object_type": "financing_offer", "url": None}, headers=tenant.auth
    )
    assert kept.status_code == 200
    assert kept.json() == {**patched.json(), "object_type": "financing_offer"}

    disabled = await client.post(f"{one}/disable", headers=tenant.auth)
    assert disabled.status_code == 200
    assert disabled.json() == {**kept.json(), "status": "disabled"}
    again = await client.post(f"{one}/disable", headers=tenant.auth)
    assert (again.status_code, again.json()["status"]) == (200, "disabled")
    enabled = await client.post(f"{one}/enable", headers=tenant.auth)
    assert enabled.status_code == 200
    assert enabled.json() == kept.json()

    regenerated = await client.post(f"{one}/regenerate_secret", headers=tenant.auth)
    assert regenerated.status_code == 200
    assert set(regenerated.json()) == {*FIELDS, "secret"}
    assert regenerated.json()["secret"] not in (created["secret"], None)
    assert {k: v for k, v in regenerated.json().items() if k != "secret"} == kept.json()

    listed = await client.get(BASE, headers=tenant.auth)
    assert listed.status_code == 200
    assert listed.json()["data"] == [kept.json()]

    deleted = await client.delete(one, headers=tenant.auth)
    assert deleted.status_code == 204
    assert deleted.content == b""
    for method, path in [
        ("GET", one),
        ("PATCH", one),
        ("DELETE", one),
        ("POST", f"{one}/disable"),
        ("POST", f"{one}/enable"),
        ("POST", f"{one}/regenerate_secret"),
    ]:
        body: dict[str, Any] | None = {"event_types": []} if method == "PATCH" else None
        gone = await client.request(method, path, json=body, headers=tenant.auth)
        assert gone.status_code == 404, (method, path)
        assert gone.json() == {"error": {"message": "Webhook subscription not found"}}
    assert (await client.get(BASE, headers=tenant.auth)).json()["data"] == []


async def test_the_secret_is_never_shown_elsewhere(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await subscribe(client, tenant)
    one = f"{BASE}/{created['id']}"
    for response in (
        await client.get(one, headers=tenant.auth),
        await client.get(BASE, headers=tenant.auth),
        await client.patch(one, json={"event_types": ["created"]}, headers=tenant.auth),
        await client.post(f"{one}/disable", headers=tenant.auth),
        await client.post(f"{one}/enable", headers=tenant.auth),
    ):
        assert response.status_code == 200
        assert "secret" not in response.text
        assert created["secret"] not in response.text


async def test_another_partners_subscription_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await subscribe(client, other_tenant)
    one = f"{BASE}/{theirs['id']}"
    for method, path in [
        ("GET", one),
        ("PATCH", one),
        ("DELETE", one),
        ("POST", f"{one}/disable"),
        ("POST", f"{one}/enable"),
        ("POST", f"{one}/regenerate_secret"),
    ]:
        body: dict[str, Any] | None = {"event_types": []} if method == "PATCH" else None
        response = await client.request(method, path, json=body, headers=tenant.auth)
        assert response.status_code == 404, (method, path)
    assert (await client.get(BASE, headers=tenant.auth)).json()["data"] == []
    # Untouched, with the same secret.
    still = await client.get(one, headers=other_tenant.auth)
    assert still.json() == {k: v for k, v in theirs.items() if k != "secret"}
    unknown = await client.get(f"{BASE}/{uuid.uuid4()}", headers=tenant.auth)
    assert unknown.status_code == 404


async def test_an_entity_users_token_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    headers = {"authorization": f"Bearer {token}"}
    created = await subscribe(client, tenant)
    for method, path in [
        ("POST", BASE),
        ("GET", BASE),
        ("GET", f"{BASE}/{created['id']}"),
        ("POST", f"{BASE}/{created['id']}/regenerate_secret"),
    ]:
        body = {"object_type": "receivable", "url": PUBLIC_URL} if method == "POST" else None
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json() == {
            "error": {"message": "Webhook subscriptions need a partner-level token"}
        }


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(BASE)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": PUBLIC_URL}, ["body", "object_type"]),
        ({"object_type": "receivable"}, ["body", "url"]),
        ({"object_type": "invoice", "url": PUBLIC_URL}, ["body", "object_type"]),
        ({"object_type": "receivable", "url": ""}, ["body", "url"]),
        ({"object_type": "receivable", "url": "https://x.example/" + "a" * 2100}, ["body", "url"]),
        ({"object_type": "receivable", "url": PUBLIC_URL, "secret": "mine"}, ["body", "secret"]),
        ({"object_type": "receivable", "url": PUBLIC_URL, "event_types": "created"}, None),
        ({"object_type": "receivable", "url": "ftp://hooks.partner.example/"}, ["body", "url"]),
        ({"object_type": "receivable", "url": "https://localhost/hook"}, ["body", "url"]),
        ({"object_type": "receivable", "url": "https://127.0.0.1/hook"}, ["body", "url"]),
        ({"object_type": "receivable", "url": "https://[::1]:8443/"}, ["body", "url"]),
    ],
)
async def test_create_refusals_are_422(
    client: httpx.AsyncClient,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any],
    loc: list[str] | None,
) -> None:
    use_resolver(
        monkeypatch,
        {"hooks.partner.example": ["93.184.215.14"], "localhost": ["127.0.0.1", "::1"]},
    )
    response = await client.post(BASE, json=body, headers=tenant.auth)
    assert response.status_code == 422, response.text
    if loc is not None:
        assert response.json()["detail"][0]["loc"] == loc
    assert (await client.get(BASE, headers=tenant.auth)).json()["data"] == []


async def test_a_private_url_is_refused_on_update_too(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await subscribe(client, tenant)
    use_resolver(monkeypatch, {"internal.partner.example": ["10.0.0.7"]})
    response = await client.patch(
        f"{BASE}/{created['id']}",
        json={"url": "https://internal.partner.example/hook"},
        headers=tenant.auth,
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "url"],
                "msg": "The URL's host resolves to a private address, where webhooks are not sent",
                "type": "value_error",
            }
        ]
    }
    extra = await client.patch(f"{BASE}/{created['id']}", json={"x": 1}, headers=tenant.auth)
    assert extra.status_code == 422
    bad_id = await client.get(f"{BASE}/not-a-uuid", headers=tenant.auth)
    assert bad_id.status_code == 422
    got = await client.get(f"{BASE}/{created['id']}", headers=tenant.auth)
    assert got.json()["url"] == PUBLIC_URL


async def test_http_is_accepted_in_sandbox_mode(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await subscribe(client, tenant, url="http://hooks.partner.example/plain")
    assert created["url"] == "http://hooks.partner.example/plain"


@pytest.fixture
async def production(app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A production-mode app on the test database (emptied by ``app``), listing one host."""
    settings = make_settings(
        database_url, mode="production", webhook_allow_private="receiver.local, 127.0.0.1"
    )
    application = create_app(settings)
    try:
        async with make_client(application) as client:
            yield client
    finally:
        await shutdown(application)


async def test_production_mode_wants_https_but_for_listed_hosts(
    app: FastAPI, production: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await make_tenant(app, production, name="Production Partner")
    use_resolver(monkeypatch, {"hooks.partner.example": ["93.184.215.14"]})
    plain = await production.post(
        BASE,
        json={"object_type": "receivable", "url": "http://hooks.partner.example/"},
        headers=tenant.auth,
    )
    assert plain.status_code == 422
    assert plain.json()["detail"][0] == {
        "loc": ["body", "url"],
        "msg": "The URL must use https (http is allowed in sandbox mode only)",
        "type": "value_error",
    }
    assert (await subscribe(production, tenant))["url"] == PUBLIC_URL
    # FUNDLINE_WEBHOOK_ALLOW_PRIVATE's hosts: http, and any address.
    use_resolver(monkeypatch, {"receiver.local": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    local = await subscribe(production, tenant, url="http://receiver.local:8080/hook")
    assert local["url"] == "http://receiver.local:8080/hook"
    # A listed address: https to a name that resolves to it passes, http does not.
    assert (await subscribe(production, tenant, url="https://localhost:8443/"))["status"]
    refused = await production.post(
        BASE,
        json={"object_type": "receivable", "url": "http://localhost:8080/"},
        headers=tenant.auth,
    )
    assert refused.status_code == 422


# --- the list ----------------------------------------------------------------------------------


async def ids(client: httpx.AsyncClient, tenant: Tenant, query: str = "") -> list[str]:
    response = await client.get(f"{BASE}?{query}", headers=tenant.auth)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_list_pages_filters_and_sorts(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    first = await subscribe(client, tenant, object_type="receivable")
    second = await subscribe(client, tenant, object_type="financing_invoice")
    clock.set_offset(timedelta(hours=1))
    third = await subscribe(client, tenant, object_type="receivable")
    await subscribe(client, other_tenant)
    everything = [first["id"], second["id"], third["id"]]

    assert await ids(client, tenant) == everything
    assert await ids(client, tenant, "order=desc") == everything[::-1]
    assert await ids(client, tenant, "object_type=receivable") == [first["id"], third["id"]]
    assert await ids(client, tenant, "object_type=financing_invoice") == [second["id"]]
    cutoff = (clock.now() - timedelta(minutes=30)).isoformat().replace("+", "%2B")
    assert await ids(client, tenant, f"created_at__gte={cutoff}") == [third["id"]]
    assert await ids(client, tenant, f"created_at__gt={cutoff}") == [third["id"]]
    assert await ids(client, tenant, f"created_at__lt={cutoff}") == everything[:2]
    assert await ids(client, tenant, f"created_at__lte={cutoff}") == everything[:2]

    # The last one touched comes last by updated_at.
    clock.set_offset(timedelta(hours=2))
    touched = await client.post(f"{BASE}/{first['id']}/disable", headers=tenant.auth)
    assert touched.status_code == 200
    by_update = await ids(client, tenant, "sort=updated_at")
    assert by_update == [second["id"], third["id"], first["id"]]

    page1 = (await client.get(f"{BASE}?limit=2", headers=tenant.auth)).json()
    assert [s["id"] for s in page1["data"]] == everything[:2]
    assert page1["prev_pagination_token"] is None
    token = page1["next_pagination_token"]
    page2 = (await client.get(f"{BASE}?pagination_token={token}", headers=tenant.auth)).json()
    assert [s["id"] for s in page2["data"]] == everything[2:]
    assert page2["next_pagination_token"] is None
    back = page2["prev_pagination_token"]
    again = (await client.get(f"{BASE}?pagination_token={back}", headers=tenant.auth)).json()
    assert [s["id"] for s in again["data"]] == everything[:2]
    # Another partner cannot read our pages, even with our token: its list is its own.
    theirs = await client.get(f"{BASE}?pagination_token={token}", headers=other_tenant.auth)
    assert theirs.status_code == 200
    assert everything[2] not in [s["id"] for s in theirs.json()["data"]]

    for query in ("limit=0", "limit=101", "sort=url", "object_type=invoice", "order=up"):
        bad = await client.get(f"{BASE}?{query}", headers=tenant.auth)
        assert bad.status_code == 422, query
    tampered = await client.get(f"{BASE}?pagination_token=x{token}", headers=tenant.auth)
    assert tampered.status_code == 400
