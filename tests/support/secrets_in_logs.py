"""No secret reaches a log: every token and secret Fundline mints while the suite runs is
remembered, every log line written (in-process, and the log files of the servers the tests
start) is kept, and at the end of the session no line may hold one of them.

Tokens are ``prefix + secrets.token_urlsafe(32)`` (``kit.security.new_token``: client secrets,
access tokens, Connect tokens and sessions, operator keys) and webhook secrets are ``whsec_`` and
base64 (``webhooks.signing.new_secret``). The check looks for the random part, so a token
logged without its prefix, or inside a URL, is found too.
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from types import SimpleNamespace

from fundline.kit import security
from fundline.webhooks import signing

MINTED: set[str] = set()
LOG_FILES: list[Path] = []
_LINES: list[str] = []
# Runs of characters a token or secret is made of (URL-safe and standard base64).
_CANDIDATE = re.compile(r"[A-Za-z0-9_\-+/]{16,}")
# Fundline's prefixed tokens and secrets, whoever minted them (a server the tests started).
_PREFIXED = re.compile(r"\b(?:fko|fct|fst|fcs)_[A-Za-z0-9_-]{40,}|\bwhsec_[A-Za-z0-9+/]{40,}")


class _Collector(logging.Handler):
    """Keeps every record as the log would show it (message and structlog's fields)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _LINES.append(f"{record.getMessage()} {record.__dict__!r}")
        except Exception:  # a record that cannot render is not a leak
            _LINES.append(str(record.msg))


def _token_urlsafe(nbytes: int | None = None) -> str:
    value = secrets.token_urlsafe(nbytes)
    MINTED.add(value)
    return value


def install() -> None:
    """Remember what is minted from now on, and keep every log record."""
    security.secrets = SimpleNamespace(token_urlsafe=_token_urlsafe)  # type: ignore[attr-defined,assignment]
    minting = signing.new_secret

    def new_secret() -> str:
        value = minting()
        # Its base64 without the padding, which the search's runs of characters leave out.
        MINTED.add(value.removeprefix(signing.SECRET_PREFIX).rstrip("="))
        return value

    signing.new_secret = new_secret
    collector = _Collector(level=logging.DEBUG)
    logging.getLogger().addHandler(collector)


def leaks() -> list[str]:
    """Where a secret appears in the logs kept: ``"<where>: <start of the secret>…"``."""
    sources: list[tuple[str, str]] = [("in-process log", line) for line in _LINES]
    for path in LOG_FILES:
        if path.exists():
            text = path.read_text(errors="replace")
            sources.extend((str(path), line) for line in text.splitlines())
    return find_leaks(sources)


def find_leaks(sources: list[tuple[str, str]]) -> list[str]:
    """The secrets in ``(where, line)`` pairs: minted ones, and prefixed tokens."""
    found = []
    for where, line in sources:
        for candidate in _CANDIDATE.findall(line):
            if _holds_secret(candidate):
                found.append(f"{where}: {candidate[:10]}…")
        found.extend(f"{where}: {token[:10]}…" for token in _PREFIXED.findall(line))
    return found


def _holds_secret(candidate: str) -> bool:
    """Whether ``candidate`` is a minted secret, bare or after its prefix (``fct_…``,
    ``whsec_…``; the random part may hold ``_`` itself, the prefix does not)."""
    if candidate in MINTED:
        return True
    _, _, rest = candidate.partition("_")
    return rest in MINTED


def summary() -> str:
    files = sum(1 for path in LOG_FILES if path.exists())
    return f"{len(MINTED)} secrets minted, {len(_LINES)} log records and {files} server logs read"
