"""Monite API versions: the ``x-monite-version`` header and its routing rules."""

from __future__ import annotations

import functools
from datetime import date

# Monite's ``APIVersion`` enum, newest first. Fundline serves one implementation; a request for
# any of these, or a newer date, is served by it (the closest older version).
KNOWN_VERSIONS = (
    "2025-06-23",
    "2024-05-25",
    "2024-01-31",
    "2023-09-01",
    "2023-06-04",
    "2023-04-12",
    "2023-03-14",
    "2023-03-01",
    "2023-02-07",
    "2022-11-16",
)
CURRENT_VERSION = "2024-05-25"
OLDEST_VERSION = date.fromisoformat(KNOWN_VERSIONS[-1])


@functools.lru_cache(maxsize=64)  # every request parses one of a handful of dates
def parse_version(value: str) -> date | None:
    """The requested date, or ``None`` when the header is not a ``YYYY-MM-DD`` date."""
    if len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def is_served(requested: date) -> bool:
    """A date older than the oldest version matches no implementation (404)."""
    return requested >= OLDEST_VERSION
