"""Logs through structlog, written by the standard library: every line JSON (or, for a human at
a terminal, structlog's console format); every request line carries its request id.

Other libraries log through the standard library (Alembic, uvicorn, httpx, asyncio): one handler
on the root logger renders their records with the same processors, so they are JSON lines too.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from typing import TextIO

import structlog
from structlog.typing import Processor


class LogFormat(StrEnum):
    JSON = "json"  # one object per line, for log collectors
    CONSOLE = "console"  # structlog's aligned, readable lines, for a human at a terminal


_HANDLER_NAME = "fundline"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes, not when logging was set up
    (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_name(_HANDLER_NAME)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _renderer(log_format: LogFormat) -> list[Processor]:
    if log_format is LogFormat.CONSOLE:
        # Its own exception rendering: format_exc_info would turn it into a plain string.
        return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), sort_keys=False)]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]


def configure_logging(level: str = "INFO", log_format: LogFormat = LogFormat.JSON) -> None:
    """Send structlog's events and every standard-library record to stderr, one line each, at
    ``level`` and above. Safe to call again: it reconfigures the one handler it installs."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # A foreign record says which library wrote it; Fundline's own events need not.
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(log_format),
        ],
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(formatter)
    root.setLevel(numeric)
