"""Where webhooks may go: the URL rules of a subscription, and the address check the sender
makes again at connect time (a name can resolve elsewhere by then).

A URL must be ``https``; ``http`` is for sandbox mode and for the hosts
``FUNDLINE_WEBHOOK_ALLOW_PRIVATE`` lists. A host that resolves to an address inside a private,
loopback, link-local, multicast, reserved or unspecified range, or to a cloud metadata
address, is refused, unless the host (or that address) is listed there. Cloud metadata
addresses are refused even when listed: no receiver lives there.

A name that does not resolve at all is accepted: it points nowhere yet, and the check at
connect time is the one that guards what is actually reached.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from fundline.config import Settings
from fundline.kit.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Resolves a host to its addresses (as strings); a failure is an OSError.
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, …
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    }
)
METADATA_REASON = "a cloud metadata address"
RESOLVE_TIMEOUT_SECONDS = 5.0
URL_LOC = ("body", "url")

# (property, what the refusal calls it), in the order they are tried.
_RANGES = (
    ("is_loopback", "a loopback address"),
    ("is_unspecified", "an unspecified address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private address"),
)


def parse_allow_list(value: str) -> frozenset[str]:
    """``FUNDLINE_WEBHOOK_ALLOW_PRIVATE`` (comma-separated hostnames and addresses),
    normalized as ``refused`` and ``check_url`` compare them."""
    return frozenset(normal_host(item) for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class UrlRules:
    """Where an app lets subscriptions point: sandbox mode, and the allow-list, read once."""

    sandbox: bool
    allow: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> UrlRules:
        allow = parse_allow_list(settings.webhook_allow_private)
        return cls(sandbox=settings.is_sandbox, allow=allow)


def normal_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def refused(ip: IPAddress | str, allow: Collection[str]) -> str | None:
    """Why no webhook may be sent to ``ip``, or ``None`` if it may: a public address, or one
    ``allow`` (``parse_allow_list``'s set) lists. The sender asks this of the address it is
    about to connect to."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA_ADDRESSES:
        return METADATA_REASON
    if str(address) in allow:
        return None
    for attribute, reason in _RANGES:
        if getattr(address, attribute):
            return reason
    if not address.is_global:  # shared address space (100.64.0.0/10) and the like
        return "a non-public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, as a connection would find them (``getaddrinfo``)."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
    )
    return [str(info[4][0]) for info in infos]


async def check_url(
    url: str,
    *,
    sandbox: bool,
    allow: Collection[str],
    resolve: Resolver | None = None,
) -> None:
    """Refuse ``url`` as a subscription's (a 422 on ``url``) unless webhooks may go there;
    ``resolve`` defaults to ``system_resolver``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise _refusal("The URL's port is not valid") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _refusal("The URL must be an absolute https URL")
    host = normal_host(parts.hostname)
    listed = host in allow
    if parts.scheme == "http" and not (sandbox or listed):
        raise _refusal("The URL must use https (http is allowed in sandbox mode only)")
    if listed:
        return
    default_port = 443 if parts.scheme == "https" else 80
    # A name that does not resolve points nowhere yet: the sender checks when it connects.
    found = await resolve_host(host, port or default_port, resolve)
    # An IPv6 result can carry its zone ("fe80::1%eth0").
    reasons = (refused(address.split("%", 1)[0], allow) for address in found)
    reason = next((r for r in reasons if r is not None), None)
    if reason is not None:
        raise _refusal(f"The URL's host resolves to {reason}, where webhooks are not sent")


async def resolve_host(host: str, port: int, resolve: Resolver | None = None) -> list[str]:
    """What ``host`` stands for: itself if an address, else what it resolves to
    (``resolve``, by default ``system_resolver``); nothing if it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        return await (resolve or system_resolver)(host, port)
    except (OSError, TimeoutError):
        return []


def _refusal(message: str) -> Unprocessable:
    return Unprocessable(message, loc=URL_LOC)
