"""Fundline as an operator runs it with Kanmon: `fundline serve` with `FUNDLINE_LENDER=kanmon`
against `fundline dev fake-kanmon`, two processes on loopback, and the start-up refusal
without a key."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.apps import VERSION
from tests.support.live import FUNDLINE, free_port, serving
from tests.support.processes import fundline_env

KEY = "process-test-key"


@contextmanager
def fake_kanmon(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "fake-kanmon.log"
    env = fundline_env("sqlite+aiosqlite:///unused")
    with log.open("wb") as out:
        fake = subprocess.Popen(
            [FUNDLINE, "dev", "fake-kanmon", "--port", str(port), "--api-key", KEY],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert fake.poll() is None, log.read_text()
            try:
                httpx.get(f"{url}/_fake/requests", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "fake Kanmon did not come up"
                time.sleep(0.05)
        yield url
    finally:
        fake.terminate()
        fake.wait(timeout=10)


def test_fundline_serves_kanmon_through_the_fake(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'fundline.db'}"
    with fake_kanmon(tmp_path) as kanmon:
        env = fundline_env(database, lender="kanmon", kanmon_base_url=kanmon, kanmon_api_key=KEY)
        with serving(env, log=tmp_path / "serve.log") as url:
            started = (tmp_path / "serve.log").read_text()
            assert '"lender": "kanmon"' in started
            partner = subprocess.run(
                [FUNDLINE, "partner", "create", "--name", "Process Partner"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            assert partner.returncode == 0
            with httpx.Client(base_url=url, headers={"x-monite-version": VERSION}) as client:
                assert client.get("/connect/v1/connect.js").status_code == 404
                token = _partner_token(client, partner.stdout)
                headers = {"authorization": f"Bearer {token}"}
                entity = client.post(
                    "/v1/entities",
                    json={
                        "type": "organization",
                        "email": "ops@example.com",
                        "address": {
                            "country": "US",
                            "city": "Austin",
                            "postal_code": "78701",
                            "state": "TX",
                            "line1": "1 Main St",
                        },
                        "organization": {"legal_name": "Process Co"},
                    },
                    headers=headers,
                )
                assert entity.status_code == 201, entity.text
                headers["x-monite-entity-id"] = entity.json()["id"]
                minted = client.post("/v1/financing_tokens", headers=headers)
                assert minted.status_code == 201, minted.text
                offers = client.get("/v1/financing_offers", headers=headers)
                assert offers.status_code == 200, offers.text
                assert offers.json() == {"business_status": "NEW", "offers": []}
                assert "x-fundline-lender-age" in offers.headers
        logged = httpx.get(f"{kanmon}/_fake/requests").json()["requests"]
        operations = [r["operation_id"] for r in logged]
        assert operations[:3] == ["createBusiness", "createUser", "createConnectToken"]
        assert httpx.get(f"{kanmon}/_fake/violations").json()["violations"] == []


def _partner_token(client: httpx.Client, created: str) -> str:
    credentials = json.loads(created)
    response = client.post(
        "/v1/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_kanmon_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    env = fundline_env(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", lender="kanmon")
    result = subprocess.run(
        [FUNDLINE, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: FUNDLINE_LENDER=kanmon needs FUNDLINE_KANMON_API_KEY: the API key "
        "Kanmon gave this platform (sent as `Authorization: ApiKey <key>`)"
    )
