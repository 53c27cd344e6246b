"""A server that answers every request at once with the same small JSON, the status the mix
expects: for measuring the load generator's own CPU without Fundline (``bench.mix
--generator-only``).

    python -m bench.fake_api --port 8900
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import uvloop

BODY = (
    b'{"id": "00000000-0000-4000-8000-000000000001", "default_billing_address_id": '
    b'"00000000-0000-4000-8000-000000000002", "session_token": "t", "access_token": "a"}'
)


class _Answer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        # POSTs create (201) except the actions (200); reads are 200.
        created = self.parser.get_method() == b"POST" and not self.url.endswith(
            (b"/issue", b"/confirm")
        )
        status = b"201 Created" if created else b"200 OK"
        head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        self.transport.write(head % (status, len(BODY)) + BODY)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Answer, "127.0.0.1", port)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_api")
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
