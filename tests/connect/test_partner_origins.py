"""Partners' embedding origins: normalization, the allowed/known checks (sandbox localhost
included), ``fundline partner origins …`` and ``/lender/v1/partners/{id}/origins``."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner, Result

from fundline.cli import app as cli_app
from fundline.connect import origins
from fundline.kit.db import Database
from fundline.kit.errors import NotFound, Unprocessable
from fundline.models import PartnerOrigin
from tests.support.apps import make_settings
from tests.support.cli import fundline
from tests.support.factories import Tenant, new_partner

SHAPE = "origin must look like https://app.example.com (scheme, host and optional port, no path)"
PORT = "origin port must be between 1 and 65535"
APP = "https://app.example.com"


@pytest.fixture
async def partner(db: Database) -> uuid.UUID:
    partner_id, _client, _secret = await new_partner(db, "Partner A")
    return partner_id


@pytest.fixture
async def other_partner(db: Database) -> uuid.UUID:
    partner_id, _client, _secret = await new_partner(db, "Partner B")
    return partner_id


async def stored(db: Database, partner_id: uuid.UUID | None = None) -> list[str]:
    """The origins in the table, straight from it (of one partner, or of all)."""
    stmt = select(PartnerOrigin.origin).order_by(PartnerOrigin.origin)
    if partner_id is not None:
        stmt = stmt.where(PartnerOrigin.partner_id == partner_id)
    async with db.session() as session:
        return list(await session.scalars(stmt))


async def add(db: Database, partner_id: uuid.UUID, origin: str) -> PartnerOrigin:
    async with db.session() as session, session.begin():
        return await origins.add_origin(session, partner_id, origin)


# --- normalization ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (APP, APP),
        ("HTTPS://App.Example.COM", APP),
        ("https://app.example.com/", APP),
        ("https://app.example.com:443", APP),
        ("https://app.example.com:443/", APP),
        ("  https://app.example.com\n", APP),
        ("http://app.example.com:80", "http://app.example.com"),
        ("https://app.example.com:80", "https://app.example.com:80"),
        ("http://app.example.com:443", "http://app.example.com:443"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("https://app.example.com:00443", APP),
        ("https://app.example.com:65535", "https://app.example.com:65535"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("https://my-app.example", "https://my-app.example"),
    ],
)
def test_valid_origins_are_normalized(value: str, expected: str) -> None:
    assert origins.normalize_origin(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://app.example.com", SHAPE),
        ("ws://app.example.com", SHAPE),
        ("javascript:alert(1)", SHAPE),
        ("app.example.com", SHAPE),
        ("//app.example.com", SHAPE),
        ("https:/app.example.com", SHAPE),
        ("null", SHAPE),  # what a sandboxed iframe sends
        ("", SHAPE),
        ("https://", SHAPE),
        ("https://:443", SHAPE),
        ("https://user@app.example.com", SHAPE),
        ("https://user:secret@app.example.com", SHAPE),
        ("https://app.example.com/app", SHAPE),
        ("https://app.example.com//", SHAPE),
        ("https://app.example.com/?", SHAPE),
        ("https://app.example.com?a=1", SHAPE),
        ("https://app.example.com?", SHAPE),
        ("https://app.example.com#top", SHAPE),
        ("https://app.example.com:", SHAPE),
        ("https://app.example.com:https", SHAPE),
        ("https://app.example.com:123456", SHAPE),
        ("https://app example.com", SHAPE),
        ("https://app..example.com", SHAPE),
        ("https://.example.com", SHAPE),
        ("https://app.example.com.", SHAPE),
        ("https://-app.example.com", SHAPE),
        ("https://app_1.example.com", SHAPE),
        ("https://bücher.example", SHAPE),
        ("https://\u212aelvin.example", SHAPE),  # the Kelvin sign lower-cases to "k"
        ("https://999.1.1.1", SHAPE),
        ("https://[::g]", SHAPE),
        ("https://app.example.com:0", PORT),
        ("https://app.example.com:65536", PORT),
        ("https://" + ".".join(["a" * 60] * 5), "origin must be at most 255 characters"),
    ],
)
def test_invalid_origins_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^origin ") as raised:
        origins.normalize_origin(value)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("origin", "local"),
    [
        ("http://localhost", True),
        ("http://localhost:3000", True),
        ("HTTP://LOCALHOST:5173/", True),
        ("https://127.0.0.1:8443", True),
        ("http://127.0.0.1", True),
        ("https://localhost.example.com", False),
        ("https://app.localhost.example", False),
        ("http://127.0.0.2", False),
        ("http://[::1]:3000", False),
        (APP, False),
        ("localhost:3000", False),
        ("ftp://localhost", False),
        ("http://localhost/app", False),
        ("http://user@localhost", False),
    ],
)
def test_is_local_origin(origin: str, local: bool) -> None:
    assert origins.is_local_origin(origin) is local


# --- the service --------------------------------------------------------------------------------


async def test_add_normalizes_and_is_idempotent(db: Database, partner: uuid.UUID) -> None:
    first = await add(db, partner, "HTTPS://App.Example.com:443/")
    assert first.origin == APP
    assert first.partner_id == partner
    again = await add(db, partner, APP)
    assert again.id == first.id
    async with db.session() as session, session.begin():
        row, created = await origins.ensure_origin(session, partner, "https://APP.example.com")
    assert (row.id, created) == (first.id, False)
    async with db.session() as session, session.begin():
        _row, created = await origins.ensure_origin(session, partner, "http://app.example.com")
    assert created is True
    assert await stored(db, partner) == ["http://app.example.com", APP]


async def test_the_same_origin_for_two_partners(
    db: Database, partner: uuid.UUID, other_partner: uuid.UUID
) -> None:
    mine = await add(db, partner, APP)
    theirs = await add(db, other_partner, APP)
    assert mine.id != theirs.id
    assert await stored(db) == [APP, APP]


async def test_add_refuses_an_unknown_partner_and_an_invalid_origin(
    db: Database, partner: uuid.UUID
) -> None:
    with pytest.raises(NotFound, match="Partner not found"):
        await add(db, uuid.uuid4(), APP)
    with pytest.raises(Unprocessable) as raised:
        await add(db, partner, "https://app.example.com/path")
    assert raised.value.message == SHAPE
    assert raised.value.loc == ("body", "origin")
    assert await stored(db) == []


async def test_the_database_refuses_a_duplicate(db: Database, partner: uuid.UUID) -> None:
    await add(db, partner, APP)
    with pytest.raises(IntegrityError):
        async with db.session() as session, session.begin():
            session.add(PartnerOrigin(partner_id=partner, origin=APP))


async def test_list_is_ordered_by_origin_and_scoped_to_the_partner(
    db: Database, partner: uuid.UUID, other_partner: uuid.UUID
) -> None:
    # "http://z…" sorts before "https://a…" byte by byte, after it in a linguistic collation.
    for origin in ("https://b.example", "http://z.example", "https://a.example"):
        await add(db, partner, origin)
    await add(db, other_partner, "https://other.example")
    async with db.session() as session:
        listed = await origins.list_origins(session, partner)
        assert [row.origin for row in listed] == [
            "http://z.example",
            "https://a.example",
            "https://b.example",
        ]
    async with db.session() as session:
        with pytest.raises(NotFound):
            await origins.list_origins(session, uuid.uuid4())


async def test_remove(db: Database, partner: uuid.UUID, other_partner: uuid.UUID) -> None:
    await add(db, partner, APP)
    await add(db, other_partner, APP)
    async with db.session() as session, session.begin():
        await origins.remove_origin(session, partner, "HTTPS://app.example.com:443/")
    assert await stored(db, partner) == []
    assert await stored(db, other_partner) == [APP]  # the other partner's stays
    with pytest.raises(NotFound, match=rf"^{re.escape(APP)} is not registered"):
        async with db.session() as session, session.begin():
            await origins.remove_origin(session, partner, APP)
    with pytest.raises(NotFound, match="Partner not found"):
        async with db.session() as session, session.begin():
            await origins.remove_origin(session, uuid.uuid4(), APP)
    with pytest.raises(Unprocessable):
        async with db.session() as session, session.begin():
            await origins.remove_origin(session, other_partner, "app.example.com")
    assert await stored(db, other_partner) == [APP]


async def test_remove_by_id_is_scoped_to_the_partner(
    db: Database, partner: uuid.UUID, other_partner: uuid.UUID
) -> None:
    row = await add(db, partner, APP)
    with pytest.raises(NotFound, match="Origin not found"):
        async with db.session() as session, session.begin():
            await origins.remove_origin_by_id(session, other_partner, row.id)
    assert await stored(db, partner) == [APP]
    async with db.session() as session, session.begin():
        await origins.remove_origin_by_id(session, partner, row.id)
    assert await stored(db) == []


@pytest.mark.parametrize("sandbox", [False, True])
async def test_origin_allowed(
    db: Database, partner: uuid.UUID, other_partner: uuid.UUID, sandbox: bool
) -> None:
    await add(db, partner, APP)
    async with db.session() as session:

        async def allowed(partner_id: uuid.UUID, origin: str) -> bool:
            return await origins.origin_allowed(session, partner_id, origin, sandbox=sandbox)

        assert await allowed(partner, APP)
        assert await allowed(partner, "HTTPS://APP.example.com:443")
        assert not await allowed(other_partner, APP)
        assert not await allowed(uuid.uuid4(), APP)
        assert not await allowed(partner, "https://app.example.com:8443")
        assert not await allowed(partner, "http://app.example.com")
        assert not await allowed(partner, "https://evil.example")
        assert not await allowed(partner, "null")
        assert not await allowed(partner, "https://app.example.com/path")
        # Local pages may embed any partner's widget in sandbox mode only.
        assert await allowed(partner, "http://localhost:3000") is sandbox
        assert await allowed(other_partner, "http://127.0.0.1:8000") is sandbox
        assert not await allowed(partner, "http://localhost.example.com")


@pytest.mark.parametrize("sandbox", [False, True])
async def test_origin_known(
    db: Database, partner: uuid.UUID, other_partner: uuid.UUID, sandbox: bool
) -> None:
    await add(db, other_partner, APP)
    async with db.session() as session:

        async def known(origin: str) -> bool:
            return await origins.origin_known(session, origin, sandbox=sandbox)

        assert await known(APP)
        assert await known("https://app.example.com/")
        assert not await known("https://other.example")
        assert not await known("https://app.example.com:8443")
        assert not await known("not an origin")
        assert await known("http://localhost:5173") is sandbox
        assert await known("https://127.0.0.1") is sandbox


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def env(db: Database, database_url: str) -> dict[str, str]:
    """The CLI on the test database (``db``: emptied before each test)."""
    settings = make_settings(database_url)
    assert settings.secret_key is not None
    return {
        "FUNDLINE_DATABASE_URL": database_url,
        "FUNDLINE_SECRET_KEY": settings.secret_key,
        "FUNDLINE_MODE": "sandbox",
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    assert result.stderr == ""
    return result.stdout


def failed(result: Result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    return result.stderr


async def test_cli_add_list_remove(env: dict[str, str], db: Database, partner: uuid.UUID) -> None:
    pid = str(partner)
    assert ok(await fundline(env, "partner", "origins", "list", pid)) == ""
    empty = json.loads(ok(await fundline(env, "partner", "origins", "list", pid, "--json")))
    assert empty == {"partner_id": pid, "origins": []}

    added = ok(await fundline(env, "partner", "origins", "add", pid, "HTTPS://App.Example.com/"))
    assert added == f"Added {APP} for partner {pid}\n"
    again = ok(await fundline(env, "partner", "origins", "add", pid, APP))
    assert again == f"{APP} was already registered for partner {pid}\n"
    ok(await fundline(env, "partner", "origins", "add", pid, "http://localhost:3000"))
    assert await stored(db, partner) == ["http://localhost:3000", APP]

    listed = ok(await fundline(env, "partner", "origins", "list", pid))
    assert listed == f"http://localhost:3000\n{APP}\n"
    as_json = json.loads(ok(await fundline(env, "partner", "origins", "list", pid, "--json")))
    assert as_json == {"partner_id": pid, "origins": ["http://localhost:3000", APP]}

    removed = ok(await fundline(env, "partner", "origins", "remove", pid, "http://LOCALHOST:3000"))
    assert removed == f"Removed http://localhost:3000 for partner {pid}\n"
    assert await stored(db, partner) == [APP]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "{partner}", "ftp://app.example.com"), f"Error: {SHAPE}"),
        (("add", "{partner}", "https://app.example.com:0"), f"Error: {PORT}"),
        (("add", "{unknown}", APP), "Error: Partner not found"),
        (("list", "{unknown}"), "Error: Partner not found"),
        (("list", "{unknown}", "--json"), "Error: Partner not found"),
        (("remove", "{partner}", APP), f"Error: {APP} is not registered for this partner"),
        (("remove", "{partner}", "https://app.example.com/x"), f"Error: {SHAPE}"),
        (("remove", "{unknown}", APP), "Error: Partner not found"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, tuple) else "",
)
async def test_cli_errors_print_one_line_and_exit_1(
    env: dict[str, str], db: Database, partner: uuid.UUID, args: tuple[str, ...], message: str
) -> None:
    filled = [a.format(partner=partner, unknown=uuid.uuid4()) for a in args]
    stderr = failed(await fundline(env, "partner", "origins", *filled))
    assert stderr == message + "\n"
    assert await stored(db) == []


async def test_cli_remove_leaves_other_partners_alone(
    env: dict[str, str], db: Database, partner: uuid.UUID, other_partner: uuid.UUID
) -> None:
    await add(db, other_partner, APP)
    failed(await fundline(env, "partner", "origins", "remove", str(partner), APP))
    assert await stored(db, other_partner) == [APP]


def test_cli_help_names_the_commands() -> None:
    result = CliRunner().invoke(cli_app, ["partner", "origins", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Connect widget" in result.stdout
    for command in ("add", "list", "remove"):
        assert command in result.stdout


# --- the lender API -----------------------------------------------------------------------------


def path(partner_id: uuid.UUID | str, origin_id: uuid.UUID | None = None) -> str:
    base = f"/lender/v1/partners/{partner_id}/origins"
    return base if origin_id is None else f"{base}/{origin_id}"


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert isinstance(message, str)
    return message


def validation(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


async def test_api_add_list_remove(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, partner: uuid.UUID
) -> None:
    listed = await client.get(path(partner), headers=operator)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"data": []}

    created = await client.post(
        path(partner), json={"origin": "HTTPS://App.Example.com:443/"}, headers=operator
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "partner_id", "origin", "created_at"}
    assert body["origin"] == APP
    assert body["partner_id"] == str(partner)

    existing = await client.post(path(partner), json={"origin": APP}, headers=operator)
    assert existing.status_code == 200, existing.text
    assert existing.json() == body

    await client.post(path(partner), json={"origin": "http://localhost:3000"}, headers=operator)
    listed = await client.get(path(partner), headers=operator)
    assert [o["origin"] for o in listed.json()["data"]] == ["http://localhost:3000", APP]
    assert listed.json()["data"][1] == body

    deleted = await client.delete(path(partner, uuid.UUID(body["id"])), headers=operator)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert await stored(db, partner) == ["http://localhost:3000"]
    again = await client.delete(path(partner, uuid.UUID(body["id"])), headers=operator)
    assert error(again, 404) == "Origin not found"


async def test_api_unknown_partner_is_404(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database
) -> None:
    unknown = uuid.uuid4()
    responses = [
        await client.get(path(unknown), headers=operator),
        await client.post(path(unknown), json={"origin": APP}, headers=operator),
        await client.delete(path(unknown, uuid.uuid4()), headers=operator),
    ]
    for response in responses:
        assert error(response, 404) == "Partner not found"
    assert await stored(db) == []


async def test_api_another_partners_origin_is_404(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    db: Database,
    partner: uuid.UUID,
    other_partner: uuid.UUID,
) -> None:
    theirs = await add(db, other_partner, APP)
    response = await client.delete(path(partner, theirs.id), headers=operator)
    assert error(response, 404) == "Origin not found"
    assert await stored(db, other_partner) == [APP]
    mine = await client.get(path(partner), headers=operator)
    assert mine.json() == {"data": []}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"origin": "https://app.example.com/app"}, SHAPE),
        ({"origin": "ftp://app.example.com"}, SHAPE),
        ({"origin": "https://user@app.example.com"}, SHAPE),
        ({"origin": "https://app.example.com:70000"}, PORT),
        ({"origin": "https://app.example.com:0"}, PORT),
        ({}, None),
        ({"origin": 42}, None),
        ({"origin": APP, "partner_id": str(uuid.uuid4())}, None),
    ],
)
async def test_api_invalid_origin_is_422_naming_the_field(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    db: Database,
    partner: uuid.UUID,
    payload: dict[str, Any],
    message: str | None,
) -> None:
    detail = validation(await client.post(path(partner), json=payload, headers=operator))
    assert len(detail) == 1
    field = "partner_id" if "partner_id" in payload else "origin"
    assert detail[0]["loc"] == ["body", field]
    if message is not None:
        assert detail[0]["msg"] == message
    assert await stored(db) == []


async def test_api_malformed_ids_are_422(
    client: httpx.AsyncClient, operator: dict[str, str], partner: uuid.UUID
) -> None:
    detail = validation(await client.get(path("not-a-uuid"), headers=operator))
    assert detail[0]["loc"] == ["path", "partner_id"]
    detail = validation(await client.delete(f"{path(partner)}/not-a-uuid", headers=operator))
    assert detail[0]["loc"] == ["path", "origin_id"]


async def test_api_needs_an_operator_key(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    row = await add(db, tenant.partner_id, APP)
    attempts = [
        ("GET", path(tenant.partner_id)),
        ("POST", path(tenant.partner_id)),
        ("DELETE", path(tenant.partner_id, row.id)),
    ]
    for headers in ({}, tenant.auth):  # nothing, then a partner's own token
        for method, url in attempts:
            response = await client.request(
                method, url, json={"origin": "https://other.example"}, headers=headers
            )
            assert response.status_code == 401, (method, url, response.text)
    assert await stored(db) == [APP]


def test_api_documents_both_success_statuses(app: FastAPI) -> None:
    operations = app.openapi()["paths"]["/lender/v1/partners/{partner_id}/origins"]
    post = operations["post"]
    assert {"200", "201"} <= set(post["responses"])
    assert "200" in post["description"]
    assert "201" in post["description"]
    assert operations["get"]["description"]
    delete = app.openapi()["paths"]["/lender/v1/partners/{partner_id}/origins/{origin_id}"]
    assert set(delete["delete"]["responses"]) >= {"204"}
