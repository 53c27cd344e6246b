"""``fundline serve --workers N``: N server processes answering on one port.

The supervisor (the process ``fundline serve`` started) binds the port and hands it to N
children started afresh (``spawn``: nothing of the supervisor's state is shared), each of which
builds the app itself, with its own database and Redis pools. On Linux each child gets a
listening socket of its own on the port (``SO_REUSEPORT``), and the kernel spreads new
connections evenly between them; with one socket shared, the child that woke first accepted
every connection waiting, and a burst of keep-alive connections could leave one child with
three quarters of the load (measured: a 78 % / 22 % split of the CPU). Elsewhere they share one
socket, as uvicorn's own multiprocess supervisor does. The port is first bound alone, without
``SO_REUSEPORT``, so a port in use (by anything, another Fundline included) is an error rather
than a port silently shared. The price of a socket per child: while a dead child is started
again (a second or two), the connections the kernel hands its socket wait in that socket's
queue instead of going to the others. The embedded background worker runs in the first child
only (in none with ``--no-worker``).

SIGINT or SIGTERM stops every child gracefully (requests in flight finish), then the
supervisor exits 0. A child that dies is logged and started again: the others go on serving,
so one crash (an out-of-memory kill, say) costs the requests that child had in flight, not the
service. Two cases stop everything instead, because starting again cannot help: a child that
could not start (uvicorn's exit status 3: the database unreachable at startup, a bad policy
file) and a child that died ``RESTARTS_PER_MINUTE`` times within a minute; the supervisor then
exits non-zero, for a process manager to notice. A supervisor killed outright (SIGKILL) takes
its children with it: Linux sends each SIGTERM when their parent dies.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType

import structlog
from prometheus_client import Info

from fundline.config import Settings
from fundline.kit.logging import configure_logging
from fundline.kit.metrics import registry
from fundline.operations.serving import listening_url, serve_app

log = structlog.get_logger("fundline.server")

STARTUP_FAILURE = 3  # uvicorn's exit status for a server that could not start
RESTARTS_PER_MINUTE = 5
STOP_SECONDS = 30.0  # how long children have to finish what they serve, once told to stop
BACKLOG = 2048  # uvicorn's default
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_spawn = multiprocessing.get_context("spawn")


@dataclass
class Child:
    index: int
    worker: bool  # runs the embedded background worker
    process: SpawnProcess | None = None
    deaths: list[float] = field(default_factory=list)  # time.monotonic() of each


def _child_main(
    settings: Settings,
    sock: socket.socket,
    index: int,
    worker: bool,
    host: str,
    port: int,
    supervisor: int,
) -> None:
    """A child's whole life: the app built here, served on the supervisor's socket."""
    _stop_with(supervisor)
    configure_logging(settings.log_level, settings.log_format)
    # Each process serves its own /metrics: this says which one a scrape reached.
    Info("fundline_server_process", "The server process that answered.", registry=registry).info(
        {"pid": str(os.getpid()), "process": str(index)}
    )
    try:
        serve_app(settings, host=host, port=port, worker=worker, sockets=[sock], process=index)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the stop is orderly
        pass


def _stop_with(supervisor: int) -> None:
    """Have Linux send this process SIGTERM (a graceful stop) when the supervisor dies, even
    by SIGKILL: no server is left orphaned, holding the port's connections and its pools."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG, reuse_port=reuse_port)
    sock.set_inheritable(True)
    return sock


def bind_for(host: str, port: int, processes: int) -> list[socket.socket]:
    """One listening socket per process on Linux (``SO_REUSEPORT``: the kernel balances new
    connections between them), else one socket for all; the port is checked free first."""
    if processes == 1 or sys.platform != "linux" or not hasattr(socket, "SO_REUSEPORT"):
        return [bind(host, port)] * processes
    with bind(host, port) as alone:  # fails on a port in use, whoever holds it
        port = int(alone.getsockname()[1])
    found: list[socket.socket] = []
    try:
        for _ in range(processes):
            found.append(bind(host, port, reuse_port=True))
    except OSError:
        for sock in found:
            sock.close()
        raise
    return found


class Supervisor:
    def __init__(
        self, settings: Settings, *, host: str, port: int, workers: int, worker: bool
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.children = [Child(index=i, worker=worker and i == 0) for i in range(workers)]
        self._signalled: int | None = None

    def run(self) -> int:
        """Serve until signalled (0) or until the children cannot go on (non-zero)."""
        try:
            sockets = bind_for(self.host, self.port, len(self.children))
        except OSError as exc:
            log.error("fundline_bind_failed", host=self.host, port=self.port, error=str(exc))
            return STARTUP_FAILURE
        try:
            self.port = int(sockets[0].getsockname()[1])  # the one --port 0 got
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self._on_signal)
            for child, sock in zip(self.children, sockets, strict=True):
                self._start(child, sock)
            log.info(
                "fundline_supervisor_started",
                url=listening_url(self.host, self.port),
                pid=os.getpid(),
                processes=[c.process.pid for c in self.children if c.process],
                sockets=len(set(sockets)),
            )
            status = self._watch(sockets)
            self._stop_all()
        finally:
            for sock in set(sockets):
                sock.close()
        log.info("fundline_supervisor_stopped", status=status)
        return status

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        self._signalled = signum

    def _start(self, child: Child, sock: socket.socket) -> None:
        args = (self.settings, sock, child.index, child.worker, self.host, self.port, os.getpid())
        child.process = _spawn.Process(target=_child_main, args=args, name=f"server-{child.index}")
        child.process.start()

    def _watch(self, sockets: list[socket.socket]) -> int:
        """Until signalled (0) or a child's death stops everything; a dead child is started
        again on its own socket (connections the kernel gave it wait in its queue)."""
        while self._signalled is None:
            sentinels = [c.process.sentinel for c in self.children if c.process]
            wait(sentinels, timeout=0.5)  # wakes when a child ends, or to look at signals
            for child in self.children:
                assert child.process is not None
                code = child.process.exitcode
                if code is None or self._signalled is not None:
                    continue
                status = self._died(child, code)
                if status is not None:
                    return status
                self._start(child, sockets[child.index])
        return 0

    def _died(self, child: Child, code: int) -> int | None:
        """Log a child's death; the supervisor's exit status if it must stop, else ``None``
        (start the child again)."""
        now = time.monotonic()
        child.deaths = [t for t in child.deaths if now - t < 60] + [now]
        assert child.process is not None
        fields = {"pid": child.process.pid, "process": child.index, "exit": code}
        if code == STARTUP_FAILURE:
            log.error("fundline_server_process_could_not_start", **fields)
            return STARTUP_FAILURE
        if len(child.deaths) >= RESTARTS_PER_MINUTE:
            log.error("fundline_server_process_keeps_dying", **fields, deaths=len(child.deaths))
            return 1
        log.error("fundline_server_process_died", **fields, restarting=True)
        return None

    def _stop_all(self) -> None:
        running = [c.process for c in self.children if c.process and c.process.is_alive()]
        for process in running:
            assert process.pid is not None
            os.kill(process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("fundline_server_process_killed", pid=process.pid)
                process.kill()
                process.join()
