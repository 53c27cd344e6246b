"""When a failed delivery is tried again.

Eight attempts in all: the first, then retries about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
10 h after the attempt before (about 28 h from first to last). Each wait is spread by up to
±20 % so that a receiver coming back is not met by every retry at once. A receiver's
``Retry-After`` (seconds, or an HTTP date) lengthens a wait, never shortens it, up to a day.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2
MAX_RETRY_AFTER = timedelta(days=1)
MAX_RETRY_SECONDS = int(MAX_RETRY_AFTER.total_seconds())

# A factor in [1 - JITTER, 1 + JITTER]; tests pass one that returns 1.0.
Jitter = Callable[[], float]


def random_jitter() -> float:
    return random.uniform(1 - JITTER, 1 + JITTER)


def next_attempt_at(
    attempts_made: int,
    now: datetime,
    *,
    retry_after: timedelta | None = None,
    jitter: Jitter = random_jitter,
) -> datetime | None:
    """When to try again after ``attempts_made`` attempts (the last one failed at ``now``), or
    ``None`` when that was the last."""
    if attempts_made < 1:
        raise ValueError("a retry follows at least one attempt")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    wait = RETRY_DELAYS[attempts_made - 1] * jitter()
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return now + wait


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header as a wait from ``now``; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    # delay-seconds is ASCII digits ("²" is a digit to isdigit, not to int); any number of
    # them (more than a day is capped here, before it can overflow a timedelta).
    if value.isascii() and value.isdigit():
        return timedelta(seconds=min(int(value), MAX_RETRY_SECONDS))
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:  # an HTTP date is GMT
        return None
    return max(at - now, timedelta())
