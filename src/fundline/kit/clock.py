"""The one source of time.

``now()`` is business time: due dates, offers, repayments. The sandbox clock moves it forward by
an offset. ``system_now()`` is the real time, for credentials and housekeeping.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

_offset = timedelta()


def now() -> datetime:
    """The current time, timezone-aware UTC, including any sandbox offset."""
    return datetime.now(UTC) + _offset


def system_now() -> datetime:
    """Real time, never moved by the sandbox clock. Credentials and housekeeping run on it:
    moving a sandbox forward 60 days must not log every client out."""
    return datetime.now(UTC)


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
