"""Starting the sandbox over: ``POST /sandbox/v1/reset`` (the caller partner's data, its sign-in
kept) and ``fundline sandbox reset`` (everything, after a confirmation); the clock goes back to
real time either way."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from fundline.cli import app as cli_app
from fundline.kit import clock
from fundline.kit.db import Base, Database
from fundline.lending.policy import Policy
from fundline.models import Entity, FinancingInvoice, Partner, SandboxClock
from tests.support.apps import make_settings
from tests.support.factories import Tenant, create_entity_user, create_issued_invoice, token_for
from tests.support.lending import make_financing_invoice


async def _advance(client: httpx.AsyncClient, tenant: Tenant, days: int) -> None:
    response = await client.post(
        "/sandbox/v1/clock/advance", json={"days": days}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text


async def _count(db: Database, model: type[Base]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_partner_reset_removes_its_data_and_keeps_its_sign_in(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
) -> None:
    await create_issued_invoice(client, tenant)
    mine = await make_financing_invoice(db, tenant, policy, status="FUNDED")
    theirs = await make_financing_invoice(db, other_tenant, policy, status="FUNDED")
    await _advance(client, tenant, 40)

    response = await client.post("/sandbox/v1/reset", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clock"]["offset_seconds"] == 0
    assert body["deleted"]["entities"] == 1
    assert body["deleted"]["financing_invoices"] == 1
    assert body["deleted"]["receivables"] >= 1
    assert clock.offset().total_seconds() == 0
    async with db.session() as session:
        assert await session.scalar(select(SandboxClock.offset_seconds)) == 0
        assert await session.get(FinancingInvoice, mine) is None
        assert await session.get(FinancingInvoice, theirs) is not None  # another partner's
        assert await session.get(Entity, uuid.UUID(other_tenant.entity_id)) is not None

    # The same credentials go on working, on an empty partner.
    listed = await client.get("/v1/entities", headers=tenant.auth)
    assert listed.status_code == 200
    assert listed.json()["data"] == []
    gone = await client.get(f"/v1/entities/{tenant.entity_id}", headers=tenant.auth)
    assert gone.status_code == 404
    assert (await token_for(client, tenant.client_id, tenant.client_secret)).strip()


async def test_an_entity_user_cannot_reset_the_sandbox(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    user = await create_entity_user(client, tenant)
    token = await token_for(
        client, tenant.client_id, tenant.client_secret, entity_user_id=user["id"]
    )
    response = await client.post("/sandbox/v1/reset", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Only a partner token can reset the sandbox"
    assert await _count(db, Entity) == 1


async def test_a_reset_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/sandbox/v1/reset")).status_code == 401


async def _cli(database_url: str, *args: str, answer: str | None = None) -> Result:
    settings = make_settings(database_url)
    assert settings.secret_key is not None
    env = {
        "FUNDLINE_DATABASE_URL": database_url,
        "FUNDLINE_SECRET_KEY": settings.secret_key,
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }

    def invoke() -> Result:
        return CliRunner().invoke(cli_app, ["sandbox", "reset", *args], env=env, input=answer)

    return await asyncio.to_thread(invoke)


async def test_the_command_asks_first_and_a_no_changes_nothing(
    client: httpx.AsyncClient, database_url: str, db: Database, tenant: Tenant
) -> None:
    await _advance(client, tenant, 10)
    result = await _cli(database_url, answer="n\n")
    assert result.exit_code == 1
    assert "This deletes every partner, entity, invoice and financing" in result.output
    assert "Nothing was changed." in result.output
    assert await _count(db, Partner) == 1
    async with db.session() as session:
        assert await session.scalar(select(SandboxClock.offset_seconds)) == 10 * 86_400


async def test_the_command_starts_everything_over(
    client: httpx.AsyncClient,
    database_url: str,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    policy: Policy,
) -> None:
    await make_financing_invoice(db, tenant, policy, status="FUNDED")
    await _advance(client, tenant, 10)
    result = await _cli(database_url, answer="y\n")
    assert result.exit_code == 0, result.output
    assert "The sandbox starts over:" in result.output
    assert "the clock is back at now" in result.output
    for model in (Partner, Entity, FinancingInvoice):
        assert await _count(db, model) == 0
    async with db.session() as session:
        assert await session.scalar(select(SandboxClock.offset_seconds)) == 0
    # And --yes asks nothing (on what is now an empty sandbox).
    again = await _cli(database_url, "--yes", "--json")
    assert again.exit_code == 0, again.output
    assert '"deleted": {}' in again.output


async def test_the_command_refuses_production(database_url: str, db: Database) -> None:
    settings = make_settings(database_url)
    assert settings.secret_key is not None

    def invoke() -> Result:
        return CliRunner().invoke(
            cli_app,
            ["sandbox", "reset", "--yes"],
            env={
                "FUNDLINE_DATABASE_URL": database_url,
                "FUNDLINE_SECRET_KEY": settings.secret_key,
                "FUNDLINE_MODE": "production",
            },
        )

    result = await asyncio.to_thread(invoke)
    assert result.exit_code == 2
    assert "only in sandbox mode" in result.output
