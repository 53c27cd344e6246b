"""Fixtures of the webhook tests."""

from __future__ import annotations

import pytest

from tests.support.webhooks import PUBLIC_ADDRESS, PUBLIC_HOST, use_resolver


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the machine's DNS: the partner's host resolves to a public address,
    other names do not resolve (``localhost`` as well: tests of it resolve it themselves)."""
    use_resolver(monkeypatch, {PUBLIC_HOST: [PUBLIC_ADDRESS]})
