"""A fast local webhook receiver for ``bench/webhooks.py``: answers every POST 200 at once and
notes, for each, when it arrived, its path and its ``webhook-id``.

    python -m bench.receiver --port 8700

A bare asyncio protocol on uvloop (HTTP/1.1, keep-alive, ``Content-Length`` bodies: what the
delivery worker's sender sends), in a process of its own so that it takes as little CPU from
the workers as a receiver can. Two control requests serve the benchmark:

- ``GET /stats``: ``{"received": <n>}``, the requests noted since the last ``/take``;
- ``POST /take``: the notes as lines ``<arrival unix time>\\t<path>\\t<webhook-id>``, and a
  fresh start.

Arrival times are ``time.time()`` when the whole request has been read: the same clock the
producer reads after each commit (one machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import cast

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Notes:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []


class Receiver(asyncio.Protocol):
    """One connection: requests parsed as they come, answered in order."""

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            webhook_id = "-"
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "webhook-id":
                    webhook_id = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            method, path, _ = head[0].split(" ", 2)
            self.answer(method, path, webhook_id)

    def answer(self, method: str, path: str, webhook_id: str) -> None:
        assert self.transport is not None
        if path == "/stats":
            self.reply(json.dumps({"received": len(self.notes.arrivals)}).encode())
        elif path == "/take":
            taken, self.notes.arrivals = self.notes.arrivals, []
            self.reply("".join(f"{t:.6f}\t{p}\t{w}\n" for t, p, w in taken).encode())
        else:
            self.notes.arrivals.append((time.time(), path, webhook_id))
            self.transport.write(OK)

    def reply(self, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))


async def serve(host: str, port: int) -> None:
    notes = Notes()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(notes), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.receiver", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # plain asyncio is slower but measures the same thing
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
