"""What every server-rendered page shares: templates, content-hashed static files, and the one
place the Content-Security-Policy and the other page headers are set.

Pages load scripts and styles from Fundline itself only (no CDN, no inline script), so the
policy can be strict: ``script-src 'self'``. Pages meant to be embedded name the origins that
may frame them; every other page refuses to be framed at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import PurePosixPath

import jinja2
from fastapi import Response
from fastapi.responses import HTMLResponse

IMMUTABLE = "public, max-age=31536000, immutable"


def day(value: date) -> str:
    """A date the way the pages write one: ``15 Jan 2027``."""
    return f"{value.day} {value:%b %Y}"


def environment(package: str) -> jinja2.Environment:
    """A Jinja2 environment on ``package``'s ``templates/`` folder; escaping always on, and a
    missing variable is an error rather than an empty string."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    digest: str  # the first 12 hex digits of its SHA-256: the version in its name and ETag


MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class Assets:
    """The files of a package's ``static/`` folder, read once, each served under a name that
    carries its content hash (``frame.1a2b3c4d5e6f.js``), so it can be cached for good."""

    def __init__(self, package: str, *, url_prefix: str) -> None:
        self.url_prefix = url_prefix
        self.files: dict[str, Asset] = {}
        for item in resources.files(package).joinpath("static").iterdir():
            suffix = PurePosixPath(item.name).suffix
            if suffix in MEDIA_TYPES:
                body = item.read_bytes()
                digest = hashlib.sha256(body).hexdigest()[:12]
                self.files[item.name] = Asset(body, MEDIA_TYPES[suffix], digest)
        self._by_hashed = {self.hashed_name(name): name for name in self.files}

    def hashed_name(self, name: str) -> str:
        path = PurePosixPath(name)
        return f"{path.stem}.{self.files[name].digest}{path.suffix}"

    def url(self, name: str) -> str:
        return f"{self.url_prefix}/{self.hashed_name(name)}"

    def response(self, hashed: str) -> Response:
        """The file behind a hashed name; 404 for any other name (an old version included)."""
        name = self._by_hashed.get(hashed)
        if name is None:
            return Response(status_code=404)
        asset = self.files[name]
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={
                "cache-control": IMMUTABLE,
                "etag": f'"{asset.digest}"',
                "x-content-type-options": "nosniff",
            },
        )


def content_security_policy(
    *,
    frame_ancestors: Iterable[str] = (),
    connect_src: Iterable[str] = (),
    frame_src: Iterable[str] = (),
) -> str:
    """The policy of every page: only Fundline's own scripts, styles, images and fetches.

    ``frame_ancestors`` empty means the page may not be framed (``'none'``).
    """
    ancestors = " ".join(frame_ancestors) or "'none'"
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src " + " ".join(["'self'", *connect_src]),
        "frame-src " + (" ".join(["'self'", *frame_src])),
        "form-action 'self'",
        "base-uri 'none'",
        f"frame-ancestors {ancestors}",
    ]
    return "; ".join(directives)


def page(
    html: str,
    *,
    status_code: int = 200,
    frame_ancestors: Iterable[str] = (),
    frame_src: Iterable[str] = (),
) -> HTMLResponse:
    """An HTML response with the page headers: the CSP, no sniffing, no referrer, not stored."""
    ancestors = list(frame_ancestors)
    headers = {
        "content-security-policy": content_security_policy(
            frame_ancestors=ancestors, frame_src=frame_src
        ),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }
    if not ancestors:
        headers["x-frame-options"] = "DENY"  # for browsers that predate frame-ancestors
    return HTMLResponse(html, status_code=status_code, headers=headers)
