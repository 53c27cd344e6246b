"""The web origins each partner may embed the Connect widget from.

An origin is what a browser sends in ``Origin`` and what ``frame-ancestors`` names:
``scheme://host[:port]``. It is stored normalized (lower case, no trailing slash, no default
port), so a comparison with a browser's header is a plain string match. In sandbox mode pages
served from ``localhost`` or ``127.0.0.1`` may embed the widget without registering.

Shared by the lender API and ``fundline partner origins …``: the functions flush, the caller
commits.
"""

from __future__ import annotations

import ipaddress
import re
import uuid

from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.kit.errors import NotFound, Unprocessable
from fundline.models import Partner, PartnerOrigin

SHAPE = "origin must look like https://app.example.com (scheme, host and optional port, no path)"
DEFAULT_PORTS = {"http": 80, "https": 443}
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
MAX_LENGTH = 255  # the column's

# The whole value; the host is checked further below. Userinfo, a path other than "/", a query
# or a fragment cannot match.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?/?",
    re.ASCII,
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


def normalize_origin(value: str) -> str:
    """``value`` as a browser would send it in ``Origin``: lower case, no trailing slash, no
    default port. Raises ``ValueError`` unless it is ``http(s)://host[:port]``."""
    value = value.strip()
    # ASCII first: lower() maps a few other characters to ASCII letters (K, the Kelvin sign).
    match = _ORIGIN.fullmatch(value.lower()) if value.isascii() else None
    host = None if match is None else _host(match["host"])
    if match is None or host is None:
        raise ValueError(SHAPE)
    scheme = match["scheme"]
    origin = f"{scheme}://{host}"
    if match["port"] is not None:
        port = int(match["port"])
        if not 1 <= port <= 65535:
            raise ValueError("origin port must be between 1 and 65535")
        if port != DEFAULT_PORTS[scheme]:
            origin += f":{port}"
    if len(origin) > MAX_LENGTH:
        raise ValueError(f"origin must be at most {MAX_LENGTH} characters")
    return origin


def _host(host: str) -> str | None:
    """The host as browsers write it, or ``None`` when it is not a valid one."""
    try:
        if host.startswith("["):
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        labels = host.split(".")
        if not all(_LABEL.fullmatch(label) for label in labels):
            return None
        # Browsers read a host ending in a number as an IPv4 address: it must be a valid one.
        if labels[-1].isdigit():
            return str(ipaddress.IPv4Address(host))
    except ValueError:
        return None
    return host


def is_local_origin(origin: str) -> bool:
    """An http(s) origin on ``localhost`` or ``127.0.0.1``, any port (allowed in sandbox)."""
    try:
        normalized = normalize_origin(origin)
    except ValueError:
        return False
    host = normalized.split("://", 1)[1].rsplit(":", 1)[0]
    return host in LOCAL_HOSTS


def _normalized_or_422(origin: str) -> str:
    try:
        return normalize_origin(origin)
    except ValueError as exc:
        raise Unprocessable(str(exc), loc=("body", "origin")) from None


async def _require_partner(session: AsyncSession, partner_id: uuid.UUID) -> None:
    if await session.scalar(select(Partner.id).where(Partner.id == partner_id)) is None:
        raise NotFound("Partner not found")


def _registered(partner_id: uuid.UUID, origin: str) -> Select[PartnerOrigin]:
    return select(PartnerOrigin).where(
        PartnerOrigin.partner_id == partner_id, PartnerOrigin.origin == origin
    )


async def ensure_origin(
    session: AsyncSession, partner_id: uuid.UUID, origin: str
) -> tuple[PartnerOrigin, bool]:
    """Register ``origin`` for the partner; the row, and whether this call created it."""
    await _require_partner(session, partner_id)
    normalized = _normalized_or_422(origin)
    stmt = _registered(partner_id, normalized)
    existing = await session.scalar(stmt)
    if existing is not None:
        return existing, False
    row = PartnerOrigin(partner_id=partner_id, origin=normalized)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent call registered it first: answer with that row.
        existing = await session.scalar(stmt)
        assert existing is not None
        return existing, False
    return row, True


async def add_origin(session: AsyncSession, partner_id: uuid.UUID, origin: str) -> PartnerOrigin:
    """Register ``origin`` for the partner (normalized); one already there is returned as is.
    404 for an unknown partner, 422 for an invalid origin."""
    row, _created = await ensure_origin(session, partner_id, origin)
    return row


async def list_origins(session: AsyncSession, partner_id: uuid.UUID) -> list[PartnerOrigin]:
    """The partner's origins, ordered by origin; 404 for an unknown partner."""
    await _require_partner(session, partner_id)
    rows = await session.scalars(
        select(PartnerOrigin).where(PartnerOrigin.partner_id == partner_id)
    )
    # Sorted here: PostgreSQL's collation and SQLite's byte order disagree on punctuation.
    return sorted(rows, key=lambda row: row.origin)


async def remove_origin(session: AsyncSession, partner_id: uuid.UUID, origin: str) -> None:
    """Unregister ``origin``; 404 for an unknown partner or an origin it has not registered,
    422 for a value that is no origin at all."""
    await _require_partner(session, partner_id)
    normalized = _normalized_or_422(origin)
    row = await session.scalar(_registered(partner_id, normalized))
    if row is None:
        raise NotFound(f"{normalized} is not registered for this partner")
    await session.delete(row)
    await session.flush()


async def remove_origin_by_id(
    session: AsyncSession, partner_id: uuid.UUID, origin_id: uuid.UUID
) -> None:
    """Unregister the partner's origin ``origin_id``; 404 for an unknown partner, or an id that
    is not one of its origins (another partner's included)."""
    await _require_partner(session, partner_id)
    row = await session.scalar(
        select(PartnerOrigin).where(
            PartnerOrigin.partner_id == partner_id, PartnerOrigin.id == origin_id
        )
    )
    if row is None:
        raise NotFound("Origin not found")
    await session.delete(row)
    await session.flush()


async def origin_allowed(
    session: AsyncSession, partner_id: uuid.UUID, origin: str, *, sandbox: bool
) -> bool:
    """May a page on ``origin`` embed this partner's widget? An invalid origin may not."""
    return await _allowed(session, origin, sandbox=sandbox, partner_id=partner_id)


async def origin_known(session: AsyncSession, origin: str, *, sandbox: bool) -> bool:
    """Has any partner registered ``origin`` (or, in sandbox, is it local)?"""
    return await _allowed(session, origin, sandbox=sandbox, partner_id=None)


async def _allowed(
    session: AsyncSession, origin: str, *, sandbox: bool, partner_id: uuid.UUID | None
) -> bool:
    try:
        normalized = normalize_origin(origin)
    except ValueError:
        return False
    if sandbox and is_local_origin(normalized):
        return True
    conditions = [PartnerOrigin.origin == normalized]
    if partner_id is not None:
        conditions.append(PartnerOrigin.partner_id == partner_id)
    return bool(await session.scalar(select(exists().where(*conditions))))
