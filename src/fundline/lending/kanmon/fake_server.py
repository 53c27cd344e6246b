"""The fake Kanmon served by uvicorn (``fundline dev fake-kanmon``): the one start line, and a
dead Kanmon played by dropping connections."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import typer
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from fundline.kit.logging import LogFormat, configure_logging
from fundline.lending.kanmon.fake import FakeKanmon, KanmonDown
from fundline.operations.serving import listening_url

# What Fundline is told to send when the fake takes any key.
ANY_KEY = "fake-kanmon-key"


async def _hang_up(send: Send) -> None:
    """Close the connection without a byte, as a server that died would.

    ASGI cannot say so (an app that returns without answering gets a 500 from uvicorn), so
    this reaches into uvicorn: ``send`` is a method of the request's cycle, which holds the
    connection's transport and learns when the connection is lost."""
    cycle = getattr(send, "__self__", None)
    abort = getattr(getattr(cycle, "transport", None), "abort", None)
    if not callable(abort):
        raise RuntimeError("not served by uvicorn as expected: cannot drop the connection")
    abort()
    # Until uvicorn has seen the connection go (a turn or two of the loop), so that it does not
    # answer 500 on it, or log an error.
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


def served(fake: FakeKanmon) -> ASGIApp:
    """The fake's app, dropping the connection where it plays a dead Kanmon."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await fake.app(scope, receive, send)
        except KanmonDown:
            await _hang_up(send)

    return application


class _Server(uvicorn.Server):
    """uvicorn's server, which prints the one start line once its socket listens."""

    def __init__(self, config: uvicorn.Config, *, api_key: str) -> None:
        super().__init__(config)
        self.api_key = api_key

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        listeners = [sock for server in self.servers for sock in server.sockets]
        port = int(listeners[0].getsockname()[1]) if listeners else self.config.port
        url = listening_url(self.config.host, port)
        typer.echo(
            f"Fake Kanmon listening on {url} (control API: {url}/_fake/); point Fundline at "
            f"it with FUNDLINE_LENDER=kanmon FUNDLINE_KANMON_BASE_URL={url} "
            f"FUNDLINE_KANMON_API_KEY={self.api_key}"
        )


def serve(*, host: str, port: int, api_keys: Iterable[str] | None) -> None:
    """Serve a new fake (not strict: its own bugs are answered 500 and logged) until stopped."""
    # Readable lines for the developer at the terminal: the fake's own bugs, uvicorn's warnings.
    configure_logging("WARNING", LogFormat.CONSOLE)
    keys = list(api_keys) if api_keys is not None else None
    fake = FakeKanmon(api_keys=keys, strict=False)
    config = uvicorn.Config(
        served(fake),
        host=host,
        port=port,
        lifespan="off",
        proxy_headers=False,
        log_config=None,  # uvicorn's records through the handler above
        log_level="warning",
        access_log=False,
    )
    _Server(config, api_key=keys[0] if keys else ANY_KEY).run()
