"""What a newcomer does after ``fundline demo``: paste the printed commands, in order, into a
shell while ``fundline serve`` runs, and see what the comments say they will see."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.live import FUNDLINE, serving
from tests.support.services import REQUIRE_SERVICES


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("walkthrough")
    env = {
        **os.environ,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'fundline.db'}",
        "FUNDLINE_MODE": "sandbox",
        "FUNDLINE_LOG_LEVEL": "WARNING",
    }
    env.pop("FUNDLINE_SECRET_KEY", None)
    with serving(env, log=folder / "server.log") as url:
        yield url, env


def _tools() -> None:
    missing = [tool for tool in ("bash", "curl", "python3") if shutil.which(tool) is None]
    if missing:
        message = f"the printed commands need {', '.join(missing)}, not installed here"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message + "; skipped on this developer machine")


def _demo(url: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [FUNDLINE, "demo", "--base-url", url],
        env={**env, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _paste(script: str) -> list[str]:
    """Run the script as a reader pasting it would (one bash), keeping the status lines."""
    ran = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return [line for line in ran.stdout.splitlines() if line.startswith("INV-")]


def test_the_printed_commands_show_late_then_defaulted(
    sandbox: tuple[str, dict[str, str]],
) -> None:
    _tools()
    url, env = sandbox
    printed = _demo(url, env)
    assert "Sandbox date: " in printed
    assert f"{url}/demo" in printed
    script = printed[printed.index("BASE=") :]
    promised = re.findall(r"^#   (INV-\S+ \S+)$", script, flags=re.MULTILINE)
    assert promised == [
        "INV-00001 FUNDED",
        "INV-00002 PAID",
        "INV-00001 LATE",
        "INV-00002 PAID",
        "INV-00001 DEFAULTED",
        "INV-00002 PAID",
    ]
    assert _paste(script) == promised

    # With the clock now two months on, the demo runs again, dated by that clock: its own
    # commands still hold (the wall clock would make its invoices ineligible).
    again = _demo(url, env)
    assert "the sandbox clock is 61 days ahead of real time" in again
    script = again[again.index("BASE=") :]
    assert _paste(script) == re.findall(r"^#   (INV-\S+ \S+)$", script, flags=re.MULTILINE)


def test_the_printed_reset_starts_the_partner_over(sandbox: tuple[str, dict[str, str]]) -> None:
    _tools()
    url, env = sandbox
    printed = _demo(url, env)
    script = printed[printed.index("BASE=") :]
    setup = script[: script.index("\n\n")]  # BASE, TOKEN, H, STATUS, ADVANCE
    reset = re.search(r"^#   (curl .*/sandbox/v1/reset)$", script, flags=re.MULTILINE)
    assert reset is not None
    listing = """curl -s -o /dev/null -w '%{http_code}' "${H[@]}" $BASE/v1/financing_invoices"""
    ran = subprocess.run(
        ["bash", "-e", "-c", f"{setup}\n{reset.group(1)}\necho\n{listing}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '"offset_seconds":0' in ran.stdout
    assert '"financing_invoices":2' in ran.stdout
    # The partner's entity went with its financing; the partner's token still works.
    assert ran.stdout.rstrip().endswith("404")
