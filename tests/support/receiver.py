"""A webhook receiver on loopback for the delivery tests: a real HTTP server (uvicorn, in the
test's event loop, or in a thread for tests that block) that records every request and answers
as the test says.

``Receiver.answer`` decides each answer from the request: a status, headers, a delay (a slow
receiver) or a gate the answer waits for (a receiver that hangs until the test opens it).
``in_flight`` and ``most_in_flight`` count the requests being answered at once. ``stop`` and
``start`` take it down and bring it back on the same port (a receiver that is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

from tests.support.live import free_port


class _QuietServer(uvicorn.Server):
    """uvicorn's server, leaving the test process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic()

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.body)
        return data

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    gate: asyncio.Event | None = None  # answer once it is set


Answer = Callable[[Received], Reply]


def always(status: int = 200, **headers: str) -> Answer:
    return lambda _: Reply(status, headers)


def always_reply(reply: Reply) -> Answer:
    return lambda _: reply


def by_path(answers: dict[str, Answer]) -> Answer:
    """Each path (``"/gone"``) its own answer: one receiver for several subscriptions."""
    return lambda request: answers[request.path](request)


def in_turn(*replies: int | Reply) -> Answer:
    """The first request gets the first reply, the second the second, …; the last repeats."""
    given = [Reply(r) if isinstance(r, int) else r for r in replies]
    count = 0

    def answer(_: Received) -> Reply:
        nonlocal count
        count += 1
        return given[min(count, len(given)) - 1]

    return answer


class Receiver:
    def __init__(self, answer: Answer | None = None, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.answer: Answer = answer or always(200)
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.unanswered: list[Received] = []  # received, their answer not sent yet (a delay)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def url_for(self, host: str) -> str:
        return f"http://{host}:{self.port}/hooks"

    def url_at(self, path: str) -> str:
        """A URL of this receiver with another path (``by_path`` answers each its own way)."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def event_ids(self) -> list[str]:
        return [r.event_id for r in self.received]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away before the whole body came: no request
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = Received(scope["path"], headers, body, time.monotonic())
        self.received.append(request)
        reply = self.answer(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.unanswered.append(request)
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.gate is not None:
                await reply.gate.wait()
        finally:
            self.in_flight -= 1
            self.unanswered.remove(request)
        # Header values as HTTP has them: bytes, read as latin-1 on both sides.
        raw_headers = [(k.encode(), v.encode("latin-1")) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def start(self) -> None:
        # No log config or level: uvicorn's would reconfigure the whole process's logging (its
        # loggers stop reaching the root handler, or drop warnings, for every later test).
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, lifespan="off", log_config=None, log_level=None
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True  # do not wait for slow answers in flight
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = None
        self._task = None


@contextlib.asynccontextmanager
async def receiving(answer: Answer | None = None) -> AsyncIterator[Receiver]:
    """A started receiver for the block, in this event loop."""
    receiver = Receiver(answer)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@contextlib.contextmanager
def receiving_in_thread(answer: Answer | None = None) -> Iterator[Receiver]:
    """A started receiver in a thread of its own, for tests that block on processes."""
    receiver = Receiver(answer)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(receiver.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the receiver did not start")
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
