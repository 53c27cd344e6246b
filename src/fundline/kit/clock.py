"""The one source of time. The sandbox clock moves it forward by an offset."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

_offset = timedelta()


def now() -> datetime:
    """The current time, timezone-aware UTC, including any sandbox offset."""
    return datetime.now(UTC) + _offset


def today() -> date:
    return now().date()


def set_offset(offset: timedelta) -> None:
    """Move the clock (sandbox only); tests and the sandbox API call this."""
    global _offset
    _offset = offset


def reset() -> None:
    set_offset(timedelta())


def offset() -> timedelta:
    return _offset
