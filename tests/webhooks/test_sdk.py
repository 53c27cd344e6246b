"""The official Monite Python SDK (PyPI ``monite``), unmodified, manages webhook subscriptions
on a live Fundline server: create, list, get, update, disable, enable, regenerate, delete; and
reads the deliveries log.

The server is ``fundline serve`` in a subprocess (``tests/live.py``, as ``test_monite_sdk``
runs it), in sandbox mode, with its own SQLite database and the machine's own resolver.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from monite import EntityAddressSchema, Monite, OrganizationSchema
from monite.core.api_error import ApiError

from tests.support.live import FUNDLINE, serving

VERSION = "2024-05-25"
# Public, or not resolvable at all where the tests run: accepted either way.
URL = "https://hooks.fundline-sdk.example/webhooks"


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """``(server URL, client id, client secret)`` of a partner on a live server."""
    database = tmp_path_factory.mktemp("sdk-webhooks") / "fundline.db"
    env = {
        **os.environ,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }
    created = subprocess.run(
        [FUNDLINE, "partner", "create", "--name", "SDK Webhooks"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    credentials = json.loads(created.stdout)
    with serving(env, log=database.parent / "server.log") as url:
        yield url, credentials["client_id"], credentials["client_secret"]


def test_sdk_manages_webhook_subscriptions(partner: tuple[str, str, str]) -> None:
    url, client_id, client_secret = partner
    base_url = f"{url}/v1"
    with httpx.Client(timeout=30) as http:
        token = Monite(base_url=base_url, monite_version=VERSION, httpx_client=http).access_tokens
        access = token.create(
            client_id=client_id, client_secret=client_secret, grant_type="client_credentials"
        )
        sdk = Monite(
            base_url=base_url,
            monite_version=VERSION,
            token=access.access_token,
            httpx_client=http,
        )
        subscriptions = sdk.webhook_subscriptions

        created = subscriptions.create(
            object_type="financing_invoice", url=URL, event_types=["status_changed"]
        )
        assert created.status == "enabled"
        assert created.object_type == "financing_invoice"
        assert created.event_types == ["status_changed"]
        assert created.secret.startswith("whsec_")
        second = subscriptions.create(object_type="receivable", url=URL)
        assert second.event_types == []

        listed = subscriptions.get()
        assert [s.id for s in listed.data] == [created.id, second.id]
        only = subscriptions.get(object_type="receivable", limit=10)
        assert [s.id for s in only.data] == [second.id]
        first_page = subscriptions.get(limit=1)
        assert first_page.next_pagination_token is not None
        next_page = subscriptions.get(pagination_token=first_page.next_pagination_token)
        assert [s.id for s in next_page.data] == [second.id]

        got = subscriptions.get_by_id(created.id)
        assert (got.id, got.url, got.status) == (created.id, URL, "enabled")
        assert "secret" not in got.model_dump()

        updated = subscriptions.update_by_id(
            created.id, url=f"{URL}/v2", event_types=["created", "status_changed"]
        )
        assert updated.url == f"{URL}/v2"
        assert updated.event_types == ["created", "status_changed"]
        assert updated.object_type == "financing_invoice"

        assert subscriptions.disable_by_id(created.id).status == "disabled"
        assert subscriptions.get_by_id(created.id).status == "disabled"
        assert subscriptions.enable_by_id(created.id).status == "enabled"

        regenerated = subscriptions.regenerate_secret_by_id(created.id)
        assert regenerated.secret.startswith("whsec_")
        assert regenerated.secret != created.secret

        subscriptions.delete_by_id(created.id)
        with pytest.raises(ApiError) as missing:
            subscriptions.get_by_id(created.id)
        assert missing.value.status_code == 404
        assert [s.id for s in subscriptions.get().data] == [second.id]

        with pytest.raises(ApiError) as refused:
            subscriptions.create(object_type="receivable", url="https://localhost/hook")
        assert refused.value.status_code == 422

        # The deliveries log is per entity, as Monite's takes x-monite-entity-id.
        entity = sdk.entities.create(
            type="organization",
            email="owner@sdk-webhooks.example",
            address=EntityAddressSchema(
                line1="1 Congress Ave", city="Austin", postal_code="78701", state="TX", country="US"
            ),
            organization=OrganizationSchema(legal_name="SDK Webhooks LLC"),
        )
        scoped = Monite(
            base_url=base_url,
            monite_version=VERSION,
            token=access.access_token,
            monite_entity_id=entity.id,
            httpx_client=http,
        )
        assert scoped.webhook_deliveries.get(event_action="created").data == []
        # The entity header changes nothing for the partner's subscriptions.
        assert [s.id for s in scoped.webhook_subscriptions.get().data] == [second.id]
