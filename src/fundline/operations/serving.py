"""``fundline serve``: uvicorn, and the one line that says the server is up, where, and how
(``operations/supervisor.py`` runs several of these for ``--workers N``)."""

from __future__ import annotations

import gc
import os
import socket
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.engine import make_url

from fundline.config import Settings

log = structlog.get_logger("fundline.server")


def displayed_database_url(database_url: str) -> str:
    """The database URL without its password (in the address or as a query parameter)."""
    url = make_url(database_url)
    hidden = {key: "***" for key in url.query if key.lower() == "password"}
    return url.update_query_dict(hidden).render_as_string(hide_password=True)


def docs_path(app: object) -> str | None:
    """Where the app serves its API reference (FastAPI's page, or a route of its own), if it
    does."""
    if not isinstance(app, FastAPI):
        return None
    wanted = app.docs_url or "/docs"
    return wanted if any(c.path == wanted for c in iter_route_contexts(app.routes)) else None


def start_fields(
    settings: Settings, *, url: str, worker: bool, docs: str | None = "/docs"
) -> dict[str, Any]:
    """What the start line says, after its event name."""
    return {
        "url": url,
        "database": displayed_database_url(settings.database_url),
        "mode": settings.mode.value,
        "lender": settings.lender.value,
        "worker": worker,
        "docs": f"{url}{docs}" if docs else None,
    }


def listening_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Server(uvicorn.Server):
    """uvicorn's server, which logs ``fundline_started`` once its socket listens (so never for
    a server that could not bind its port), with the port it got."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        settings: Settings,
        worker: bool,
        process: int | None = None,
    ) -> None:
        super().__init__(config)
        self.settings = settings
        self.worker = worker
        self.process = process  # its number under ``--workers N``

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        listeners = [sock for server in self.servers for sock in server.sockets]
        port = int(listeners[0].getsockname()[1]) if listeners else self.config.port  # --port 0
        url = listening_url(self.config.host, port)
        fields = start_fields(
            self.settings, url=url, worker=self.worker, docs=docs_path(self.config.app)
        )
        if self.process is not None:
            fields.update(process=self.process, pid=os.getpid())
        log.info("fundline_started", **fields)


def serve_app(
    settings: Settings,
    *,
    host: str,
    port: int,
    worker: bool,
    sockets: list[socket.socket] | None = None,
    process: int | None = None,
) -> None:
    """Build the app and serve it in this process until a signal stops it (on ``sockets``
    when given: the listening socket the supervisor of ``--workers N`` bound and shares, this
    being its child number ``process``)."""
    from fundline.app import create_app

    application = create_app(settings, worker=worker)
    # Everything alive now lives as long as the process: keep it out of the cyclic garbage
    # collector's way, so collections only walk what requests allocate.
    gc.freeze()
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        # No logging config of uvicorn's own: its records go to the root handler, in our format.
        log_config=None,
        log_level="warning",
        access_log=False,  # Fundline logs each request itself
    )
    Server(config, settings=settings, worker=worker, process=process).run(sockets)
