"""One webhook request: a signed ``POST``, with a 15 s budget, no redirect followed, to an
address checked at the moment of connecting.

The check at connect time is the one that guards what is reached: the sender resolves the host
itself, refuses it if any address it resolves to is refused (``addresses.refused``; a listed
host only if it is a metadata address), and connects to the checked address. TLS still
verifies the certificate against the host name. An established connection is reused only for
the origin it was checked for.

The sender speaks through ``httpcore`` (the engine under httpx) rather than an httpx client,
because that is where the network backend, and so the connect step, can be replaced.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpcore

from fundline.models.webhook import RESPONSE_MAX_LENGTH
from fundline.webhooks import addresses

# httpcore asks sniffio which async library runs whenever it sets up a lock, an event or a
# semaphore, several times a request, by importing it. Nothing installs sniffio any more (anyio
# has stopped needing it), and a failed import is not remembered: each one searches sys.path
# again, a quarter to a third of the CPU time of a request to a fast receiver. A None in
# sys.modules makes the import fail at once, with the same ImportError, and httpcore carries
# on as before.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

TIMEOUT_SECONDS = 15.0
USER_AGENT = "Fundline-Webhooks/1"


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address webhooks are not sent to."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What an attempt got: the receiver's status and the start of its body, or why there was
    no answer (``error``)."""

    status_code: int | None
    body: str | None = None
    retry_after: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """The default network backend, connecting only to addresses ``addresses.refused``
    allows."""

    def __init__(self, allow: Collection[str], resolve: addresses.Resolver | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow = allow
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.checked_address(host, port)
        return await self._inner.connect_tcp(
            address, port, timeout, local_address=local_address, socket_options=socket_options
        )

    async def checked_address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; ``AddressRefused`` if there is none."""
        found = await addresses.resolve_host(host, port, self._resolve)
        if not found:
            raise AddressRefused(f"{host} does not resolve")
        listed = addresses.normal_host(host) in self._allow
        for address in found:
            reason = addresses.refused(address, self._allow)
            if reason is not None and not (listed and reason != addresses.METADATA_REASON):
                raise AddressRefused(f"{host} resolves to {reason}, where webhooks are not sent")
        return found[0]

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks are not sent to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class Sender:
    """The connections of one worker: at most ``max_connections`` open at once."""

    def __init__(
        self,
        *,
        allow: Collection[str],
        max_connections: int = 64,
        timeout_seconds: float = TIMEOUT_SECONDS,
        resolve: addresses.Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(allow, resolve),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Send one attempt; never raises for what the network or the receiver did."""
        request_headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", USER_AGENT),
            *headers.items(),
        ]
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout_seconds)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                async with self._pool.stream(
                    "POST",
                    url,
                    headers=request_headers,
                    content=body,
                    extensions={"timeout": timeouts},
                ) as response:
                    text = await _start_of(response)
                    retry_after = _header(response, b"retry-after")
                    return Answer(response.status, text, retry_after=retry_after)
        except TimeoutError:
            return Answer(None, error=f"no answer within {self.timeout_seconds:g} s")
        except AddressRefused as exc:
            return Answer(None, error=str(exc))
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            return Answer(None, error=f"could not connect: {exc or type(exc).__name__}")
        except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            return Answer(None, error=f"not a URL webhooks can be sent to: {exc}")
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            return Answer(None, error=f"the connection failed: {exc or type(exc).__name__}")


async def _start_of(response: httpcore.Response) -> str:
    """The first ``RESPONSE_MAX_LENGTH`` characters of the body (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    stream = response.aiter_stream()
    async for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_MAX_LENGTH * 4:  # UTF-8: at most 4 bytes a character
            break
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return text[:RESPONSE_MAX_LENGTH]


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
