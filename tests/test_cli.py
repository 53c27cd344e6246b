"""The real ``fundline`` command, run as a subprocess on a temporary SQLite database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup

from fundline.app import create_app, shutdown
from fundline.cli import app as cli_app
from fundline.kit.security import token_digest
from fundline.operations.migrations import head_revision
from tests.support.apps import make_client, make_settings
from tests.support.factories import token_for


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            paths += _command_paths(sub, (*path, name))
    return paths


# Every command and sub-command, read from the CLI itself so a new one is checked too.
COMMANDS = _command_paths(typer.main.get_command(cli_app))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def env(db_path: Path) -> dict[str, str]:
    """The caller's environment without any FUNDLINE_ setting, plus a temporary database."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FUNDLINE_")}
    return {
        **clean,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }


def fundline(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "fundline", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_every_command_is_listed() -> None:
    assert {" ".join(p) for p in COMMANDS} >= {
        "",
        "serve",
        "migrate",
        "partner",
        "partner create",
        "operator",
        "operator create-key",
    }


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "fundline")
def test_help(path: tuple[str, ...], env: dict[str, str], tmp_path: Path) -> None:
    command = typer.main.get_command(cli_app)
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    result = fundline(*path, "--help", env=env, cwd=tmp_path)
    assert "Usage:" in result.stdout
    summary = (command.help or "").splitlines()[0]
    assert summary
    assert summary in result.stdout
    assert not (tmp_path / "cli.db").exists()  # asking for help touches nothing


def test_serve_help_shows_host_and_port(env: dict[str, str], tmp_path: Path) -> None:
    out = fundline("serve", "--help", env=env, cwd=tmp_path).stdout
    assert "--host" in out
    assert "--port" in out


def test_migrate(env: dict[str, str], db_path: Path, tmp_path: Path) -> None:
    result = fundline("migrate", env=env, cwd=tmp_path)
    assert result.stdout == ""
    assert "latest migration" in result.stderr
    with sqlite3.connect(db_path) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == head_revision()
    fundline("migrate", env=env, cwd=tmp_path)  # a second run has nothing to do


async def test_partner_create_prints_working_credentials(
    env: dict[str, str], db_path: Path, tmp_path: Path
) -> None:
    result = fundline("partner", "create", "--name", "Acme Platform", env=env, cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    created = json.loads(lines[0])
    assert set(created) == {"partner_id", "client_id", "client_secret"}
    assert all(isinstance(v, str) and v for v in created.values())

    with sqlite3.connect(db_path) as conn:
        (name,) = conn.execute(
            "SELECT name FROM partners WHERE replace(id, '-', '') = ?",
            (created["partner_id"].replace("-", ""),),
        ).fetchone()
        (secret_hash,) = conn.execute("SELECT secret_hash FROM api_clients").fetchone()
    assert name == "Acme Platform"
    assert secret_hash.startswith("$argon2")
    assert created["client_secret"] not in db_path.read_bytes().decode("latin-1")

    application = create_app(make_settings(f"sqlite+aiosqlite:///{db_path}"))
    try:
        async with make_client(application) as client:
            client_id = uuid.UUID(created["client_id"])
            token = await token_for(client, client_id, created["client_secret"])
            listed = await client.get("/v1/entities", headers={"authorization": f"Bearer {token}"})
    finally:
        await shutdown(application)
    assert listed.status_code == 200
    assert listed.json()["data"] == []


def test_operator_create_key_stores_only_a_hash(
    env: dict[str, str], db_path: Path, tmp_path: Path
) -> None:
    result = fundline("operator", "create-key", "--name", "Risk desk", env=env, cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    printed = json.loads(lines[0])
    assert set(printed) == {"operator_key"}
    key = printed["operator_key"]
    assert isinstance(key, str)
    assert len(key) >= 32

    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT * FROM operator_keys").fetchall()
        (stored,) = conn.execute(
            "SELECT key_hash FROM operator_keys WHERE name = 'Risk desk'"
        ).fetchone()
    assert len(rows) == 1
    assert stored == token_digest(key)
    assert all(key not in str(value) for value in rows[0])
    assert key not in db_path.read_bytes().decode("latin-1")


@pytest.mark.parametrize(
    "secret",
    [None, "changeme", "too-short-but-real-7f3a"],
    ids=["missing", "placeholder", "short"],
)
@pytest.mark.parametrize(
    "args",
    [
        ("migrate",),
        ("serve",),
        ("partner", "create", "--name", "X"),
        ("operator", "create-key", "--name", "X"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_production_refuses_a_weak_secret_key(
    env: dict[str, str],
    db_path: Path,
    tmp_path: Path,
    args: tuple[str, ...],
    secret: str | None,
) -> None:
    env = {**env, "FUNDLINE_MODE": "production"}
    if secret is not None:
        env["FUNDLINE_SECRET_KEY"] = secret
    result = fundline(*args, env=env, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith("Configuration error: FUNDLINE_SECRET_KEY must be set")
    assert "Traceback" not in result.stderr
    if secret:
        assert secret not in result.stderr  # a rejected key is never echoed
    assert not db_path.exists()  # refused before touching anything


def test_production_with_a_strong_key_runs(
    env: dict[str, str], db_path: Path, tmp_path: Path
) -> None:
    env = {**env, "FUNDLINE_MODE": "production", "FUNDLINE_SECRET_KEY": "k" * 8 + "Q7" * 20}
    fundline("migrate", env=env, cwd=tmp_path)
    assert db_path.exists()
    assert not list(tmp_path.glob("*.secret"))


def test_invalid_setting_names_the_variable(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "FUNDLINE_TOKEN_TTL_SECONDS": "5"}
    result = fundline("migrate", env=env, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert result.stderr.startswith("Configuration error: FUNDLINE_TOKEN_TTL_SECONDS:")


def test_operator_keys_are_listed_and_revoked(
    env: dict[str, str], db_path: Path, tmp_path: Path
) -> None:
    fundline("operator", "create-key", "--name", "Risk desk", env=env, cwd=tmp_path)
    (listed,) = json.loads(
        fundline("operator", "list-keys", "--json", env=env, cwd=tmp_path).stdout
    )
    assert (listed["name"], listed["revoked_at"]) == ("Risk desk", None)
    assert "key" not in json.dumps(listed).replace("list-keys", "")  # never the key itself
    revoked = fundline("operator", "revoke-key", listed["id"], env=env, cwd=tmp_path)
    assert revoked.stdout.strip() == f"Revoked operator key {listed['id']} (Risk desk)"
    again = fundline("operator", "revoke-key", listed["id"], env=env, cwd=tmp_path)
    assert again.stdout.strip().startswith("Already revoked:")
    (after,) = json.loads(fundline("operator", "list-keys", "--json", env=env, cwd=tmp_path).stdout)
    assert after["revoked_at"] is not None
    unknown = fundline(
        "operator", "revoke-key", str(uuid.uuid4()), env=env, cwd=tmp_path, check=False
    )
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("Error: No operator key ")
    with sqlite3.connect(db_path) as conn:
        (action,) = conn.execute(
            "SELECT action FROM audit_log WHERE action = 'revoke_key'"
        ).fetchone()
    assert action == "revoke_key"
