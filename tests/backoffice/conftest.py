"""The ``fundline lender …`` tests' environment: the command on the test database."""

from __future__ import annotations

import pytest

from tests.support.cli import cli_env


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return cli_env(database_url)
