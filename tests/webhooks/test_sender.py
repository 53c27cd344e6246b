"""The sender's address check at connect time: a name that resolved to a public address when
the subscription was made can point inside the network by the time of an attempt (DNS
rebinding); the sender resolves it itself and refuses before connecting."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import timedelta

import httpx
import pytest

from fundline.kit.db import Database
from fundline.models.webhook import WebhookDeliveryStatus
from fundline.webhooks.addresses import Resolver
from fundline.webhooks.sender import AddressRefused, Answer, GuardedBackend, Sender
from tests.support.factories import Tenant
from tests.support.receiver import Receiver, receiving
from tests.support.webhooks import (
    PUBLIC_ADDRESS,
    FakeClock,
    a_worker,
    deliveries_of,
    record_event,
    subscribe,
    use_resolver,
)

NAME = "rebind.partner.example"
NONE: frozenset[str] = frozenset()
METADATA = "169.254.169.254"


def resolving(*found: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if not found:
            raise OSError(f"{host} does not resolve")
        return list(found)

    return resolve


async def checked(host: str, *found: str, allow: Collection[str] = NONE) -> str:
    return await GuardedBackend(allow, resolving(*found)).checked_address(host, 443)


async def test_a_public_address_is_the_one_connected_to() -> None:
    """A name resolving to public addresses is connected to at the first of them."""
    assert await checked(NAME, PUBLIC_ADDRESS, "2606:2800:21f:cb07:6820:80da:af6b:8b2c") == (
        PUBLIC_ADDRESS
    )
    assert await checked(PUBLIC_ADDRESS) == PUBLIC_ADDRESS  # an address is not resolved


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (["127.0.0.1"], "a loopback address"),
        (["10.0.0.1"], "a private address"),
        ([METADATA], "a cloud metadata address"),
        (["::ffff:127.0.0.1"], "a loopback address"),
        ([PUBLIC_ADDRESS, "10.0.0.1"], "a private address"),  # any refused address refuses
        (["10.0.0.1", PUBLIC_ADDRESS], "a private address"),
    ],
)
async def test_a_name_resolving_inside_is_refused(found: list[str], reason: str) -> None:
    """Any address inside (loopback, private, metadata, IPv4-mapped) refuses the name."""
    with pytest.raises(AddressRefused) as refused:
        await checked(NAME, *found)
    assert str(refused.value) == f"{NAME} resolves to {reason}, where webhooks are not sent"


async def test_an_address_in_the_url_is_checked_too() -> None:
    """An address in the URL is checked as a resolved one; metadata even when listed."""
    with pytest.raises(AddressRefused, match=r"^127\.0\.0\.1 resolves to a loopback address"):
        await checked("127.0.0.1")
    with pytest.raises(AddressRefused, match="a cloud metadata address"):
        await checked(METADATA, allow={METADATA})


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    """No address, no connection: the refusal says so."""
    with pytest.raises(AddressRefused, match=f"^{re.escape(NAME)} does not resolve$"):
        await checked(NAME)


async def test_the_allow_list_admits_a_listed_name_or_address_but_never_metadata() -> None:
    """A listed name admits what it resolves to, a listed address itself; metadata never."""
    assert await checked(NAME, "10.0.0.1", allow={NAME}) == "10.0.0.1"
    assert await checked(NAME, "127.0.0.1", allow={"127.0.0.1"}) == "127.0.0.1"
    assert await checked("127.0.0.1", allow={"127.0.0.1"}) == "127.0.0.1"
    # Listing the name admits what it resolves to; listing an address admits that one only.
    with pytest.raises(AddressRefused, match="a private address"):
        await checked(NAME, "127.0.0.1", "10.0.0.1", allow={"127.0.0.1"})
    for allow in ({NAME}, {NAME, METADATA}):
        with pytest.raises(AddressRefused, match="a cloud metadata address"):
            await checked(NAME, METADATA, allow=allow)


async def post(receiver: Receiver, allow: Collection[str]) -> Answer:
    async with Sender(allow=allow, timeout_seconds=1.0) as sender:
        return await sender.post(receiver.url_for(NAME), body=b"{}", headers={})


async def test_a_sender_reaches_a_listed_name_or_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real request goes through when the name or its address is listed, not otherwise."""
    use_resolver(monkeypatch, {NAME: ["127.0.0.1"]})
    async with receiving() as receiver:
        assert (await post(receiver, {NAME})).status_code == 200
        assert (await post(receiver, {"127.0.0.1"})).status_code == 200
        refused = await post(receiver, NONE)
    assert len(receiver.received) == 2
    assert refused == Answer(
        None, error=f"{NAME} resolves to a loopback address, where webhooks are not sent"
    )


async def test_a_metadata_address_is_refused_even_when_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing the metadata address and the name does not let a request reach it."""
    use_resolver(monkeypatch, {NAME: [METADATA]})
    async with receiving() as receiver:
        answer = await post(receiver, {NAME, METADATA})
    assert receiver.received == []
    assert answer.status_code is None
    assert (
        answer.error == f"{NAME} resolves to a cloud metadata address, where webhooks are not sent"
    )


# Where each name points by the time of the attempt, and what the refusal calls it.
REBOUND = {
    "loopback.partner.example": ("127.0.0.1", "a loopback address"),
    "private.partner.example": ("10.0.0.1", "a private address"),
    "metadata.partner.example": (METADATA, "a cloud metadata address"),
}


async def test_a_name_rebound_inside_after_subscribing_is_refused_at_connect_time(
    client: httpx.AsyncClient,
    db: Database,
    tenant: Tenant,
    loopback: None,
    fake_clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subscriptions were accepted while their names resolved to a public address; once
    they resolve inside, each attempt is refused before connecting: nothing reaches the
    receiver, the log says why, and the retry is scheduled."""
    use_resolver(monkeypatch, {name: [PUBLIC_ADDRESS] for name in REBOUND})
    async with receiving() as receiver, a_worker(db, allow=NONE, now=fake_clock.now) as worker:
        for name in REBOUND:
            await subscribe(client, tenant, url=receiver.url_for(name))
        use_resolver(monkeypatch, {name: [address] for name, (address, _) in REBOUND.items()})
        event = await record_event(db, tenant)
        await worker.run_until_idle()
    assert receiver.received == []
    deliveries = await deliveries_of(db, event.id)
    assert len(deliveries) == len(REBOUND)
    for delivery in deliveries:
        name = httpx.URL(delivery.url).host
        reason = REBOUND[name][1]
        assert delivery.status is WebhookDeliveryStatus.PENDING
        assert (delivery.requests_made_count, delivery.last_response_status_code) == (1, None)
        assert delivery.last_response == f"{name} resolves to {reason}, where webhooks are not sent"
        assert delivery.next_attempt_at == fake_clock.now() + timedelta(seconds=5)
