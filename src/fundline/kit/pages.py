"""What every server-rendered page shares: templates, content-hashed static files, and the one
place the Content-Security-Policy and the other page headers are set.

Pages load scripts and styles from Fundline itself only (no CDN, no inline script), so the
policy can be strict: ``script-src 'self'``. Pages meant to be embedded name the origins that
may frame them; every other page refuses to be framed at all.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
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


MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


class Assets:
    """Static files of a package, each served under a name that carries its content hash
    (``frame.1a2b3c4d5e6f.js``), so it can be cached for good.

    ``files`` maps served names to paths inside the package; by default, every file of the
    package's ``static/`` folder under its own name. Read on first use, then kept.
    """

    def __init__(
        self, package: str, *, url_prefix: str, files: Mapping[str, str] | None = None
    ) -> None:
        self.package = package
        self.url_prefix = url_prefix
        self._paths = files

    @functools.cached_property
    def files(self) -> dict[str, Asset]:
        root = resources.files(self.package)
        paths = self._paths or {
            item.name: f"static/{item.name}"
            for item in root.joinpath("static").iterdir()
            if PurePosixPath(item.name).suffix in MEDIA_TYPES
        }
        loaded = {}
        for name, path in paths.items():
            body = root.joinpath(path).read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            loaded[name] = Asset(body, MEDIA_TYPES[PurePosixPath(name).suffix], digest)
        return loaded

    @functools.cached_property
    def _by_hashed(self) -> dict[str, str]:
        return {self.hashed_name(name): name for name in self.files}

    def hashed_name(self, name: str) -> str:
        path = PurePosixPath(name)
        return f"{path.stem}.{self.files[name].digest}{path.suffix}"

    def url(self, name: str, *, root_path: str = "") -> str:
        return f"{root_path}{self.url_prefix}/{self.hashed_name(name)}"

    def response(self, hashed: str) -> Response:
        """The file behind a hashed name; 404 for any other name (an old version included)."""
        name = self._by_hashed.get(hashed)
        if name is None:
            return Response(status_code=404)
        return self.file(name, cache_control=IMMUTABLE)

    def file(self, name: str, *, cache_control: str) -> Response:
        """The file ``name`` under its plain name (for a client that cannot be told the hash)."""
        asset = self.files[name]
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={
                "cache-control": cache_control,
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
