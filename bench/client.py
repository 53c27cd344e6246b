"""A small HTTP/1.1 client for load generators: keep-alive connections in a pool, requests
written as prepared bytes, answers parsed by httptools (uvicorn's own parser, in C).

It does only what a benchmark against ``fundline serve`` needs (no TLS, no redirects, no
cookies, bodies in memory), so its CPU per request is a fraction of httpx's: the generator
shares the machine with the server it measures.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools


class TransportError(Exception):
    """The connection failed or closed before a whole answer came."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.reusable = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.reusable = False
            self._fail(TransportError(f"bad answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(TransportError(f"connection closed: {exc}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        answer, body = self.answer, b"".join(self.body)
        self.answer, self.body = None, []
        if answer is not None and not answer.done():
            answer.set_result((self.parser.get_status_code(), body))

    def _fail(self, exc: Exception) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        assert self.answer is None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.answer

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class Client:
    """Requests to one ``host:port``, at most ``max_connections`` at once (others wait for a
    connection: with an open-loop load, that wait is part of their latency)."""

    def __init__(self, host: str, port: int, *, max_connections: int = 512) -> None:
        self.host, self.port = host, port
        self._host_line = f"Host: {host}:{port}\r\n".encode()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    def prepare(self, method: str, path: str, headers: bytes = b"", body: bytes = b"") -> bytes:
        """The request's bytes: ``headers`` are whole header lines (``Name: value\\r\\n``)."""
        length = b"Content-Length: %d\r\n" % len(body) if body or method != "GET" else b""
        kind = b"Content-Type: application/json\r\n" if body else b""
        start = f"{method} {path} HTTP/1.1\r\n".encode()
        return start + self._host_line + headers + kind + length + b"\r\n" + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Status and body of the answer to ``request`` (from ``prepare``)."""
        async with self._slots:
            conn = self._take_idle() or await self._connect()
            try:
                answer = await conn.send(request)
            except BaseException:
                conn.close()
                raise
            if conn.reusable:
                self._idle.append(conn)
            else:
                conn.close()
            return answer

    def _take_idle(self) -> _Connection | None:
        while self._idle:  # skip those the server closed while they waited (keep-alive timeout)
            conn = self._idle.pop()
            if conn.reusable:
                return conn
        return None

    async def request(
        self, method: str, path: str, headers: bytes = b"", body: bytes = b""
    ) -> tuple[int, bytes]:
        return await self.send(self.prepare(method, path, headers, body))

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise TransportError(f"cannot connect: {exc}") from exc
        return conn

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
