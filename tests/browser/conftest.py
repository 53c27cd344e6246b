"""Browser tests: a live ``fundline serve`` (sandbox mode, its own SQLite file) and Debian's
Chromium, driven by Playwright. No browser is downloaded: the executable is the system's.

Without Chromium these tests skip on a developer machine, saying so; with
``FUNDLINE_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets) they fail instead. Each step's screenshot
is kept under ``test-output/browser/`` when a test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Frame, Page, async_playwright

from tests.support.apps import VERSION
from tests.support.live import FUNDLINE, serving
from tests.support.services import REQUIRE_SERVICES

CHROMIUM = os.environ.get("FUNDLINE_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
# Flags for a closed network (no background calls home) and for running as root in CI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Other sites for the origin tests: any *.test name is this machine.
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@dataclass
class Live:
    url: str
    database: Path
    log: Path
    env: dict[str, str]

    def fundline(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FUNDLINE, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def demo(self) -> dict[str, Any]:
        """The newest demo platform's ids and credentials, read as a test reads a database."""
        with sqlite3.connect(self.database) as db:
            row = db.execute(
                "SELECT partner_id, client_id, client_secret, entity_id FROM sandbox_demos "
                "ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
        assert row is not None, "no demo platform was set up"
        ids = [str(_uuid(v)) for v in row[:2]] + [row[2], str(_uuid(row[3]))]
        return dict(
            zip(("partner_id", "client_id", "client_secret", "entity_id"), ids, strict=True)
        )

    def partner_api(self) -> httpx.Client:
        """A /v1 client signed in as the demo platform, on its entity."""
        demo = self.demo()
        token = httpx.post(
            f"{self.url}/v1/auth/token",
            headers={"x-monite-version": VERSION},
            json={
                "grant_type": "client_credentials",
                "client_id": demo["client_id"],
                "client_secret": demo["client_secret"],
            },
            timeout=30,
        ).json()["access_token"]
        return httpx.Client(
            base_url=self.url,
            timeout=30,
            headers={
                "x-monite-version": VERSION,
                "authorization": f"Bearer {token}",
                "x-monite-entity-id": demo["entity_id"],
            },
        )


def _uuid(value: Any) -> str:
    """SQLite keeps UUIDs as 32 hex digits."""
    text = value.hex() if isinstance(value, bytes) else str(value).replace("-", "")
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (Debian package chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + "; FUNDLINE_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message + "; skipped on this developer machine")
    return CHROMIUM


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Live]:
    """``fundline serve`` in sandbox mode on a fresh database, logging at INFO (the tests
    read the log for tokens)."""
    folder = tmp_path_factory.mktemp("browser")
    database = folder / "fundline.db"
    env = {
        **os.environ,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "FUNDLINE_MODE": "sandbox",
        "FUNDLINE_LOG_LEVEL": "INFO",
    }
    env.pop("FUNDLINE_SECRET_KEY", None)
    log_path = folder / "server.log"
    with serving(env, log=log_path) as url:
        yield Live(url, database, log_path, env)


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@dataclass
class Shots:
    """Screenshots of each step, written out only if the test fails."""

    folder: Path
    taken: list[tuple[str, bytes]] = field(default_factory=list)

    async def take(self, page: Page, step: str) -> None:
        self.taken.append((step, await page.screenshot(full_page=True)))

    def save(self) -> Path:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        for index, (step, png) in enumerate(self.taken, start=1):
            (self.folder / f"{index:02d}-{step}.png").write_bytes(png)
        return self.folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Iterator[Shots]:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    kept = Shots(OUTPUT / name)
    yield kept
    if request.node.stash.get(FAILED, False) and kept.taken:
        folder = kept.save()
        print(f"\nScreenshots of each step: {folder}")  # noqa: T201 (the failure report)


@pytest.fixture
async def context(
    browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserContext]:
    viewport = getattr(request, "param", "desktop")
    made = await browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    yield made
    await made.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


SERIOUS = frozenset({"serious", "critical"})


async def accessibility_problems(target: Page | Frame) -> list[str]:
    """axe-core's serious and critical violations on a page or frame, one line each."""
    results = await Axe().run(target)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


class HostPage:
    """A partner's page on another origin, served from this machine (``*.test`` names map to
    127.0.0.1 in the browser): it loads connect.js from Fundline and records what it gets."""

    def __init__(self, fundline_url: str) -> None:
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Partner page</title></head><body><main><h1>Partner page</h1></main>
<script>window.received = []; window.errors = [];</script>
<script src="{fundline_url}/connect/v1/connect.js"></script>
</body></html>""".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def host_page(live: Live) -> Iterator[HostPage]:
    served = HostPage(live.url)
    yield served
    served.close()


# --- The lender console (test_console.py) -----------------------------------------------------

CONSOLE_OPERATOR = "Grace Hopper"


@dataclass
class ConsoleLive(Live):
    """A live server under manual review, and an operator key for its console."""

    operator_key: str = ""
    operator: str = CONSOLE_OPERATOR

    def lender_api(self) -> httpx.Client:
        """A /lender/v1 client with the operator's key."""
        return httpx.Client(
            base_url=self.url,
            timeout=30,
            headers={"authorization": f"Bearer {self.operator_key}"},
        )


def manual_review_policy(folder: Path) -> Path:
    """The shipped sandbox policy with production's review: an operator approves each
    confirmed invoice and issues each accepted offer, and funds separately."""
    from fundline.config import Mode
    from fundline.lending.policy import default_policy_file

    text = default_policy_file(Mode.SANDBOX).read_text()
    for line, manual in (
        ('mode = "auto"', 'mode = "manual"'),
        ("auto_fund = true", "auto_fund = false"),
    ):
        assert text.count(f"\n{line}\n") == 1, f"the sandbox policy has no line {line!r}"
        text = text.replace(f"\n{line}\n", f"\n{manual}\n")
    path = folder / "policy.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def console_live(
    tmp_path_factory: pytest.TempPathFactory, chromium_path: str
) -> Iterator[ConsoleLive]:
    """``fundline serve`` in sandbox mode under manual review (``FUNDLINE_POLICY_FILE``), on a
    fresh database, with an operator key made by ``fundline operator create-key``."""
    import json

    folder = tmp_path_factory.mktemp("console")
    database = folder / "fundline.db"
    env = {
        **os.environ,
        "FUNDLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "FUNDLINE_MODE": "sandbox",
        "FUNDLINE_LOG_LEVEL": "INFO",
        "FUNDLINE_POLICY_FILE": str(manual_review_policy(folder)),
    }
    env.pop("FUNDLINE_SECRET_KEY", None)
    log_path = folder / "server.log"
    with serving(env, log=log_path) as url:
        live = ConsoleLive(url, database, log_path, env)
        made = live.fundline("operator", "create-key", "--name", CONSOLE_OPERATOR)
        assert made.returncode == 0, made.stderr
        live.operator_key = json.loads(made.stdout)["operator_key"]
        yield live
