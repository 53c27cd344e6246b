"""Signing in to the console, its session cookie, CSRF on every form, the audit log (page and
``GET /lender/v1/audit``) and the pages' headers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from fundline.app import create_app
from fundline.kit import clock
from fundline.kit.db import Database
from fundline.models import ConsoleSession, OperatorKey
from tests.console.conftest import Operator, console_client
from tests.support.apps import make_settings
from tests.support.factories import make_operator_key


async def test_pages_send_the_signed_out_to_sign_in_and_back(
    anonymous: httpx.AsyncClient, db: Database
) -> None:
    response = await anonymous.get("/lender/audit?action=fund")
    assert response.status_code == 303
    assert response.headers["location"] == "/lender/sign-in?next=/lender/audit%3Faction%3Dfund"
    key = await make_operator_key(db, "bo")
    signed = await anonymous.post(
        "/lender/sign-in", data={"key": key, "next": "/lender/audit?action=fund"}
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/lender/audit?action=fund"
    assert (await anonymous.get(signed.headers["location"])).status_code == 200


async def test_the_session_cookie_is_secure_http_only_strict_and_ends(
    anonymous: httpx.AsyncClient, db: Database
) -> None:
    key = await make_operator_key(db, "cy")
    response = await anonymous.post("/lender/sign-in", data={"key": key})
    cookie = response.headers["set-cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/lender"):
        assert attribute.lower() in cookie.lower(), cookie
    assert response.headers["location"] == "/lender/queue"
    async with db.session() as session, session.begin():
        await session.execute(
            update(ConsoleSession).values(expires_at=clock.system_now() - timedelta(seconds=1))
        )
    assert (await anonymous.get("/lender/audit")).status_code == 303


async def test_a_wrong_key_is_a_401_with_the_form_and_no_cookie(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post("/lender/sign-in", data={"key": "fok_not-a-key"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "That operator key is not valid" in response.text
    assert 'aria-invalid="true"' in response.text


async def test_a_revoked_key_ends_its_sessions(operator: Operator, db: Database) -> None:
    assert (await operator.client.get("/lender/audit")).status_code == 200
    async with db.session() as session, session.begin():
        await session.execute(update(OperatorKey).values(revoked_at=clock.system_now()))
    assert (await operator.client.get("/lender/audit")).status_code == 303


async def test_next_never_leaves_the_console(anonymous: httpx.AsyncClient, db: Database) -> None:
    key = await make_operator_key(db, "dee")
    for target in ("https://evil.example/", "//evil.example/x", "/v1/entities"):
        response = await anonymous.post("/lender/sign-in", data={"key": key, "next": target})
        assert response.headers["location"] == "/lender/queue", target


async def test_forms_need_the_sessions_csrf_token(operator: Operator, app: FastAPI) -> None:
    missing = await operator.client.post("/lender/sign-out", data={})
    assert missing.status_code == 403
    forged = await operator.client.post("/lender/sign-out", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    # Another session's token is no good either.
    async with console_client(app) as other:
        await other.post("/lender/sign-in", data={"key": operator.key})
        theirs = await Operator(other, operator.key).csrf()
    assert (
        await operator.client.post("/lender/sign-out", data={"csrf": theirs})
    ).status_code == 403
    out = await operator.post("/lender/sign-out", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/lender/sign-in"
    assert (await operator.client.get("/lender/audit")).status_code == 303


async def test_sign_ins_and_outs_are_in_the_audit_log(operator: Operator) -> None:
    page = await operator.page("/lender/audit")
    assert "sign_in" in page
    assert ">ana<" in page


async def test_pages_have_a_strict_policy(operator: Operator, anonymous: httpx.AsyncClient) -> None:
    for response in (
        await operator.client.get("/lender/audit"),
        await anonymous.get("/lender/sign-in"),
    ):
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "<script>" not in response.text  # no inline script


async def test_the_lender_api_lists_the_audit_log(
    operator: Operator, client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_operator_key(db, "api")
    response = await client.get(
        "/lender/v1/audit", headers={"authorization": f"Bearer {key}"}, params={"action": "sign_in"}
    )
    assert response.status_code == 200, response.text
    (entry,) = response.json()["data"]
    assert (entry["operator"], entry["action"], entry["object_type"]) == (
        "ana",
        "sign_in",
        "operator_key",
    )


@pytest.mark.usefixtures("app")
async def test_wrong_keys_are_rate_limited(database_url: str) -> None:
    limited = create_app(make_settings(database_url, credential_failures_per_minute=3))
    try:
        async with console_client(limited) as client:
            statuses = [
                (await client.post("/lender/sign-in", data={"key": f"wrong-{n}"})).status_code
                for n in range(5)
            ]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
    finally:
        await limited.state.limits.aclose()
        await limited.state.db.dispose()


async def test_the_audit_pages_empty_filter_fields_filter_nothing(operator: Operator) -> None:
    """The filter form sends every field, the empty ones as ``name=``: those match any entry."""
    by_operator = await operator.page("/lender/audit?operator=ana&action=")
    assert "<td>sign_in</td>" in by_operator
    by_action = await operator.page("/lender/audit?operator=+&action=sign_in+")
    assert "<td>sign_in</td>" in by_action
    nobody = await operator.page("/lender/audit?operator=bob&action=")
    assert "No action recorded yet." in nobody


async def test_a_refused_form_is_a_page_with_the_way_back(operator: Operator) -> None:
    response = await operator.client.post(
        f"/lender/invoices/{uuid.uuid4()}/approve", data={"csrf": "0" * 64}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This form has expired" in response.text
    assert "Nothing was done" in response.text
    assert '<a href="/lender/invoices/' in response.text
