"""Settings: defaults, the FUNDLINE_ prefix, and the secret key rules of each mode."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from fundline.config import MIN_SECRET_LENGTH, PLACEHOLDER_SECRETS, Mode, Settings
from fundline.kit.logging import LogFormat

STRONG_KEY = "9f2c" * 12


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FUNDLINE_ variable from the caller's shell, and a scratch working directory."""
    for name in list(os.environ):
        if name.startswith("FUNDLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./fundline.db"
    assert settings.is_sqlite
    assert settings.redis_url is None
    assert settings.mode is Mode.SANDBOX
    assert settings.is_sandbox
    assert settings.secret_key is None
    assert settings.token_ttl_seconds == 86400
    assert settings.rate_limit_per_second == 30
    assert settings.auth_rate_limit_per_second == 10
    assert settings.idempotency_ttl_seconds == 86400
    assert settings.idempotency_lock_seconds == 90
    assert settings.log_level == "INFO"
    assert settings.log_format is LogFormat.JSON
    assert settings.policy_file is None


def test_read_from_the_environment_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNDLINE_DATABASE_URL", "postgresql+asyncpg://u@db:5432/fundline")
    monkeypatch.setenv("FUNDLINE_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("FUNDLINE_TOKEN_TTL_SECONDS", "3600")
    monkeypatch.setenv("FUNDLINE_RATE_LIMIT_PER_SECOND", "7")
    monkeypatch.setenv("FUNDLINE_MODE", "production")
    monkeypatch.setenv("FUNDLINE_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("FUNDLINE_LOG_FORMAT", "console")
    settings = Settings()
    assert settings.log_format is LogFormat.CONSOLE
    assert settings.database_url == "postgresql+asyncpg://u@db:5432/fundline"
    assert not settings.is_sqlite
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.token_ttl_seconds == 3600
    assert settings.rate_limit_per_second == 7
    assert settings.mode is Mode.PRODUCTION
    assert settings.signing_key == STRONG_KEY


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@elsewhere/db")
    monkeypatch.setenv("MODE", "production")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./fundline.db"
    assert settings.mode is Mode.SANDBOX


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FUNDLINE_MODE", "staging"),
        ("FUNDLINE_TOKEN_TTL_SECONDS", "59"),
        ("FUNDLINE_RATE_LIMIT_PER_SECOND", "0"),
        ("FUNDLINE_LOG_FORMAT", "xml"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "",
        "changeme",
        "CHANGEME",
        "  secret  ",
        "a" * (MIN_SECRET_LENGTH - 1),
        *sorted(PLACEHOLDER_SECRETS),
    ],
)
def test_production_refuses_a_missing_short_or_placeholder_key(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="FUNDLINE_SECRET_KEY"):
        Settings(mode=Mode.PRODUCTION, secret_key=secret)


def test_production_accepts_a_long_random_key(tmp_path: Path) -> None:
    settings = Settings(
        mode=Mode.PRODUCTION, secret_key=STRONG_KEY, database_url=sqlite_url(tmp_path / "p.db")
    )
    assert settings.signing_key == STRONG_KEY
    assert list(tmp_path.iterdir()) == []  # nothing generated, nothing written


def test_sandbox_generates_a_key_once_beside_the_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "data" / "fundline.db")
    first = Settings(database_url=url).signing_key
    key_file = tmp_path / "data" / "fundline.db.secret"
    assert key_file.read_text() == first + "\n"
    assert len(first) >= MIN_SECRET_LENGTH
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Settings(database_url=url).signing_key == first
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["fundline.db.secret"]


def test_sandbox_keys_differ_per_database(tmp_path: Path) -> None:
    one = Settings(database_url=sqlite_url(tmp_path / "one.db")).signing_key
    two = Settings(database_url=sqlite_url(tmp_path / "two.db")).signing_key
    assert one != two


def test_sandbox_default_database_keeps_its_key_in_the_working_directory(
    tmp_path: Path,
) -> None:
    key = Settings().signing_key
    assert (tmp_path / "fundline.db.secret").read_text().strip() == key


def test_sandbox_on_postgres_keeps_its_key_in_the_working_directory(tmp_path: Path) -> None:
    key = Settings(database_url="postgresql+asyncpg://u@db/fundline").signing_key
    assert (tmp_path / "fundline.secret").read_text().strip() == key


def test_an_existing_key_file_wins_over_a_new_one(tmp_path: Path) -> None:
    (tmp_path / "f.db.secret").write_text("kept-from-an-earlier-start\n")
    assert Settings(database_url=sqlite_url(tmp_path / "f.db")).signing_key == (
        "kept-from-an-earlier-start"
    )


def test_an_explicit_key_is_used_in_sandbox_without_a_file(tmp_path: Path) -> None:
    settings = Settings(database_url=sqlite_url(tmp_path / "f.db"), secret_key=STRONG_KEY)
    assert settings.signing_key == STRONG_KEY
    assert not (tmp_path / "f.db.secret").exists()


def test_a_key_written_meanwhile_by_another_process_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes starting together on a fresh database end up with the same key."""
    key_file = tmp_path / "f.db.secret"
    real_mkstemp = tempfile.mkstemp

    def mkstemp_while_another_process_wins(*, dir: Path, prefix: str) -> tuple[int, str]:
        key_file.write_text("written-by-the-other-process\n")
        return real_mkstemp(dir=dir, prefix=prefix)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_while_another_process_wins)
    key = Settings(database_url=sqlite_url(tmp_path / "f.db")).signing_key
    assert key == "written-by-the-other-process"
    assert [p.name for p in tmp_path.iterdir()] == ["f.db.secret"]  # no temporary file left
