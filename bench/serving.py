"""How the benchmarks run Fundline: production mode, a fresh secret, log level WARNING, no
policy file, and rate limiting on but with limits no load reaches (in process memory unless a
Redis URL is added). One place, so every benchmark measures the same server."""

from __future__ import annotations

import os
import secrets

from bench.seed import sqlalchemy_url
from fundline.config import Settings


def serve_env(dsn: str) -> dict[str, str]:
    """The environment ``fundline serve`` runs in under a benchmark."""
    env = {
        **os.environ,
        "FUNDLINE_MODE": "production",
        "FUNDLINE_DATABASE_URL": sqlalchemy_url(dsn),
        "FUNDLINE_SECRET_KEY": secrets.token_urlsafe(48),
        "FUNDLINE_RATE_LIMIT_PER_SECOND": "1000000",
        "FUNDLINE_AUTH_RATE_LIMIT_PER_SECOND": "1000000",
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }
    env.pop("FUNDLINE_REDIS_URL", None)
    env.pop("FUNDLINE_POLICY_FILE", None)
    return env


def production_settings(dsn: str, *, secret_key: str | None = None) -> Settings:
    """The same, as settings for an app built in process (``secret_key``: a served Fundline's,
    so both sign alike)."""
    return Settings(
        mode="production",
        database_url=sqlalchemy_url(dsn),
        secret_key=secret_key or secrets.token_urlsafe(48),
        rate_limit_per_second=1_000_000,
        auth_rate_limit_per_second=1_000_000,
        log_level="WARNING",
        redis_url=None,
    )
