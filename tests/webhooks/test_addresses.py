"""Where webhooks may go: the address check (again at connect time, by the sender) and the
URL rules of a subscription, with the resolver replaced or, for ``localhost``, the real one."""

from __future__ import annotations

import pytest

from fundline.kit.errors import Unprocessable
from fundline.webhooks import addresses
from fundline.webhooks.addresses import check_url, parse_allow_list, refused
from tests.support.webhooks import PUBLIC_URL, use_resolver

REAL_RESOLVER = addresses.system_resolver  # before the autouse fixture replaces it

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("100.64.0.1", "a non-public address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
    ],
)
def test_non_public_addresses_are_refused(ip: str, reason: str) -> None:
    assert refused(ip, NONE) == reason


@pytest.mark.parametrize("ip", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(ip: str) -> None:
    assert refused(ip, NONE) is None


def test_a_listed_address_is_allowed_but_never_a_metadata_one() -> None:
    allow = parse_allow_list(" 127.0.0.1, [::1] ,Receiver.Local., 169.254.169.254")
    assert allow == {"127.0.0.1", "::1", "receiver.local", "169.254.169.254"}
    assert refused("127.0.0.1", allow) is None
    assert refused("0:0::1", allow) is None  # the same address, written otherwise
    assert refused("127.0.0.2", allow) == "a loopback address"
    assert refused("169.254.169.254", allow) == "a cloud metadata address"
    assert parse_allow_list("") == frozenset()


async def refusal(url: str, *, sandbox: bool = False, allow: frozenset[str] = NONE) -> str:
    with pytest.raises(Unprocessable) as caught:
        await check_url(url, sandbox=sandbox, allow=allow)
    assert caught.value.loc == ("body", "url")
    return caught.value.message


async def test_https_to_a_public_host_is_accepted() -> None:
    await check_url(PUBLIC_URL, sandbox=False, allow=NONE)


async def test_http_only_in_sandbox_mode_or_for_a_listed_host() -> None:
    url = PUBLIC_URL.replace("https://", "http://")
    assert "https" in await refusal(url)
    await check_url(url, sandbox=True, allow=NONE)
    await check_url(url, sandbox=False, allow=frozenset({"hooks.partner.example"}))


@pytest.mark.parametrize(
    "url", ["ftp://hooks.partner.example/x", "hooks.partner.example/x", "https:///x", "x"]
)
async def test_not_an_http_url(url: str) -> None:
    assert "absolute https URL" in await refusal(url, sandbox=True)


async def test_a_bad_port_is_refused() -> None:
    assert "port" in await refusal("https://hooks.partner.example:99999/x")


async def test_localhost_resolves_to_loopback_and_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(addresses, "system_resolver", REAL_RESOLVER)  # the machine's own
    message = await refusal("https://localhost/hook", sandbox=True)
    assert message == ("The URL's host resolves to a loopback address, where webhooks are not sent")
    await check_url("http://localhost:8080/hook", sandbox=False, allow=frozenset({"localhost"}))
    # Address literals, in any spelling getaddrinfo takes.
    for url in ("https://127.0.0.1/", "https://[::1]/", "https://2130706433/", "https://0x7f.1/"):
        assert "loopback" in await refusal(url), url
    # A listed address lets any name that resolves to it through.
    await check_url("https://localhost/hook", sandbox=False, allow=frozenset({"127.0.0.1"}))


async def test_a_name_that_resolves_to_loopback_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_resolver(
        monkeypatch,
        {
            "rebind.partner.example": ["93.184.215.14", "127.0.0.1"],  # one bad answer is enough
            "metadata.partner.example": ["169.254.169.254"],
            "zoned.partner.example": ["fe80::1%eth0"],
        },
    )
    assert "loopback" in await refusal("https://rebind.partner.example/hook")
    assert "cloud metadata" in await refusal(
        "https://metadata.partner.example/", allow=frozenset({"169.254.169.254"})
    )
    assert "link-local" in await refusal("https://zoned.partner.example/")
    # A listed host is not resolved at all.
    await check_url(
        "https://rebind.partner.example/",
        sandbox=False,
        allow=frozenset({"rebind.partner.example"}),
    )


async def test_a_name_that_does_not_resolve_is_accepted() -> None:
    # It points nowhere yet; the sender checks the address it connects to.
    await check_url("https://not-yet.partner.example/hook", sandbox=False, allow=NONE)
