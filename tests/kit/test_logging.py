"""``configure_logging``: structlog's events and every standard-library record as one JSON line
each (or console lines), one handler however often it is called, pytest's capture untouched."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from fundline.kit.logging import LogFormat, configure_logging


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    configure_logging("WARNING")  # as the test apps have it (tests/support/apps.make_settings)


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if h.get_name() == "fundline"]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_called_again_it_keeps_one_handler() -> None:
    configure_logging("INFO")
    configure_logging("INFO", LogFormat.CONSOLE)
    configure_logging("DEBUG")
    assert len(_ours()) == 1
    assert logging.getLogger().level == logging.DEBUG


def test_foreign_records_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    logging.getLogger("alembic.runtime.migration").info("Context impl %s.", "SQLiteImpl")
    logging.getLogger("some.library").info('HTTP Request: GET http://x "HTTP/1.1 200 OK"')
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    structlog.get_logger("fundline.test").info("ours", answer=42)
    alembic, http, failed, ours = _json_lines(capsys.readouterr().err)
    assert alembic["event"] == "Context impl SQLiteImpl."
    assert alembic["logger"] == "alembic.runtime.migration"
    assert alembic["level"] == "info"
    assert alembic["timestamp"].endswith("Z")
    assert http["logger"] == "some.library"
    assert failed["level"] == "error"
    assert "RuntimeError: boom" in failed["exception"]  # the traceback inside the one line
    assert (ours["event"], ours["answer"], ours["level"]) == ("ours", 42, "info")


def test_level_applies_to_foreign_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    logging.getLogger("alembic.runtime.migration").info("Will assume non-transactional DDL.")
    logging.getLogger("uvicorn.error").warning("careful")
    [line] = _json_lines(capsys.readouterr().err)
    assert line["event"] == "careful"


def test_console_lines_are_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.CONSOLE)
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    [line] = capsys.readouterr().err.splitlines()
    assert "Context impl SQLiteImpl." in line
    assert "[alembic.runtime.migration]" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_pytest_still_captures(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("INFO")
    configure_logging("INFO")
    structlog.get_logger("fundline.test").warning("captured_event", request_id="r-1")
    logging.getLogger("alembic").warning("captured too")
    assert "captured_event" in caplog.text
    assert "r-1" in caplog.text
    assert "captured too" in caplog.text
