"""Settings, read once from the environment (prefix ``FUNDLINE_``)."""

from __future__ import annotations

import os
import secrets
import tempfile
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from fundline.kit.logging import LogFormat

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "test"}
MIN_SECRET_LENGTH = 32


class Mode(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class Lender(StrEnum):
    BUILTIN = "builtin"
    KANMON = "kanmon"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUNDLINE_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./fundline.db"
    # PostgreSQL connections per process: SQLAlchemy's pool keeps ``pool_size`` and opens up to
    # ``max_overflow`` more under load; the plain-read pool of hot paths up to ``pool_size``;
    # the token cache listens on one more. At most 2 * pool_size + max_overflow + 1 (51).
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    database_max_overflow: int = Field(default=10, ge=0, le=1000)
    redis_url: str | None = None
    redis_key_prefix: str = "fundline"
    mode: Mode = Mode.SANDBOX
    secret_key: str | None = None
    token_ttl_seconds: int = Field(default=86400, ge=60)
    rate_limit_per_second: int = Field(default=30, ge=1)
    auth_rate_limit_per_second: int = Field(default=10, ge=1)
    # Failed credentials (401/403) per client address and minute on the Connect token exchange
    # and the lender API, before that address is refused for the rest of the minute.
    credential_failures_per_minute: int = Field(default=20, ge=1)
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)
    idempotency_lock_seconds: int = Field(default=90, ge=1)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON
    worker_interval_seconds: float = Field(default=30.0, gt=0)
    # Who lends (lending/provider.py): Fundline's own lender, or Kanmon over its Public V2 API.
    lender: Lender = Lender.BUILTIN
    # Sent as Kanmon's ``Authorization: ApiKey <key>``; required when the lender is Kanmon.
    kanmon_api_key: SecretStr | None = None
    kanmon_base_url: str = "https://api.kanmon.dev"  # Kanmon's sandbox
    # The whole budget of one call to Kanmon, retries included, and how often the worker
    # re-reads every business's offers and invoices.
    kanmon_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    kanmon_sync_seconds: float = Field(default=300.0, gt=0)
    # The credit policy (TOML); unset: the mode's default shipped in fundline/lending/policies.
    policy_file: Path | None = None
    # Hostnames and addresses (comma-separated) webhooks may reach although they are private or
    # loopback, and over http: a local receiver in development and tests (webhooks/addresses.py).
    webhook_allow_private: str = ""
    # The delivery worker (webhooks/worker.py): attempts in flight per worker, and per
    # subscription; how long a claim is held before another worker may take it; how often an
    # idle worker looks for work; how long a receiver has to answer.
    webhook_concurrency: int = Field(default=32, ge=1, le=1024)
    webhook_concurrency_per_subscription: int = Field(default=4, ge=1, le=1024)
    webhook_lease_seconds: float = Field(default=60.0, ge=1)
    webhook_poll_seconds: float = Field(default=0.25, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=60)

    @model_validator(mode="after")
    def _secret_key_in_production(self) -> Settings:
        if self.mode is Mode.PRODUCTION:
            key = self.secret_key or ""
            if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    "FUNDLINE_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production mode"
                )
        return self

    @model_validator(mode="after")
    def _kanmon_needs_a_key(self) -> Settings:
        if self.lender is Lender.KANMON and not (
            self.kanmon_api_key and self.kanmon_api_key.get_secret_value().strip()
        ):
            raise ValueError(
                "FUNDLINE_LENDER=kanmon needs FUNDLINE_KANMON_API_KEY: the API key Kanmon "
                "gave this platform (sent as `Authorization: ApiKey <key>`)"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Settings:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                "FUNDLINE_WEBHOOK_LEASE_SECONDS must be longer than "
                "FUNDLINE_WEBHOOK_TIMEOUT_SECONDS: a claim must outlast the attempt it covers"
            )
        return self

    @property
    def is_sandbox(self) -> bool:
        return self.mode is Mode.SANDBOX

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @cached_property
    def signing_key(self) -> str:
        """The key that signs pagination and Connect tokens.

        Production requires ``FUNDLINE_SECRET_KEY``. Sandbox generates one on first use and
        keeps it in a file beside the database, so tokens survive a restart.
        """
        if self.secret_key:
            return self.secret_key
        path = self._key_file()
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(48)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a private (0600) temporary file, then linked into place: the key is never
        # readable by others, and a process starting at the same moment keeps the first key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_text().strip()
        finally:
            os.unlink(tmp)
        return key

    def _key_file(self) -> Path:
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            db = Path(url.database)
            return db.with_name(db.name + ".secret")
        return Path("fundline.secret")
