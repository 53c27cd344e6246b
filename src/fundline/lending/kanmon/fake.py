"""The fake Kanmon: a local stand-in for Kanmon's platform API (Public V2), for the adapter's
tests (in process) and for developers (``fundline dev fake-kanmon --port N``).

In a test::

    fake = FakeKanmon()
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://kanmon") as c:
        ...  # the adapter's calls
    assert fake.violations() == []

**Checked.** Every request on Kanmon's paths is checked against the spec
(``fake_spec.py``): the operation exists, ``Authorization: ApiKey <key>`` is there (any
non-empty key, or one of ``api_keys``; else 403 ForbiddenException), no query parameter is
repeated or unknown, the query (coerced from strings by its declared types) and the JSON body
match their schemas. A request that fails is answered Kanmon's 400 BadRequestException (404 for
an operation the spec lacks) and its violations are recorded. Every answer is checked against
the operation's schema for its status: one that does not match is the fake's bug, raised as
``FakeKanmonBug`` when ``strict`` (in tests), answered 500 and logged when not (served).
``requests`` logs every Kanmon request: method, path, query, body, status, violations.

**Failures** (``fail``), each for the next ``count`` requests (or until cleared), optionally of
one operationId; a slow one and one other can apply to the same request:

- ``429``: Retry-After ``seconds`` (whole, rounded up; default 1), X-RateLimit-Remaining 0,
  X-RateLimit-Reset (Unix time of the reset), body ``TooManyRequestsException`` (the spec
  declares no 429, so that body is the fake's);
- ``500``: InternalServerErrorException;
- ``slow``: the request is handled at once and its answer held back ``seconds`` (default 1),
  so a client that gives up has still changed the state, as with a slow real server;
- ``error``: Kanmon's refusal ``error_code`` with ``status``, as its spec declares it for the
  operation (an undeclared pair is the fake's bug, as any answer off the spec);
- ``down``: no answer at all. In process, ``transport()`` raises ``httpx.ConnectError``;
  served, the connection is closed without a byte (the client sees a ``RemoteProtocolError``
  or ``ReadError``: the TCP connect itself still succeeds, unlike a dead host).

**Control API**, not Kanmon's: JSON in and out, a body's camelCase fields being the Python
method's keyword arguments (``fake_widget.py`` says what each action does); errors in
Kanmon's shape. Never checked against the spec, never logged, never failed.

- ``GET /_fake/requests``: ``fake.requests`` (``{"requests": [...]}``);
  ``GET /_fake/violations``: ``fake.violations()``; ``POST /_fake/reset``: ``fake.reset()``;
  ``GET /_fake/sessions``: ``fake.sessions`` (each with its invoices, and those submitted);
- ``POST /_fake/businesses/{id}/onboard``: ``onboard_business(id, name=, ein=, address=)``;
- ``POST /_fake/offers``: ``extend_offer(business_id, total_limit_cents=, product_type=,
  pricing_plans=, expired_at=)``; ``POST /_fake/offers/{id}/select``: ``select_offer(id)``;
  ``POST /_fake/offers/{id}/issue``: ``issue_offer(id, available_limit_cents=)``;
- ``POST /_fake/issued-products/{id}/loan-status``: ``set_loan_status(id, loan_status)``;
- ``POST /_fake/sessions/{token}/submit``: ``submit_session(token, invoices=)``;
- ``POST /_fake/invoices/{id}/status``: ``set_invoice_status(id, status)``;
- ``GET``/``POST``/``DELETE /_fake/failures``: ``fake.failures``, ``fail(mode, count=,
  operation_id=, seconds=)``, ``clear_failures()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from fundline.kit import clock
from fundline.lending.kanmon import fake_spec
from fundline.lending.kanmon.fake_spec import KanmonError, Operation, bad_request
from fundline.lending.kanmon.fake_state import JSON, Call
from fundline.lending.kanmon.fake_widget import KanmonWidget

log = logging.getLogger("fundline.fake_kanmon")

FAILURE_MODES = ("429", "500", "slow", "down", "error")


class FakeKanmonBug(AssertionError):
    """The fake answered outside Kanmon's spec, or was asked an operation it does not play:
    the fake's fault or gap, never the adapter's."""


class KanmonDown(Exception):
    """Raised by the app instead of answering while the fake plays a dead Kanmon."""


@dataclass(frozen=True)
class Violation:
    kind: str  # "request": the client broke the spec; "response"/"unplayed": the fake did
    method: str
    path: str
    operation_id: str | None
    message: str


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    operation_id: str | None
    status: int | None = None  # None: never answered (down)
    violations: list[Violation] = field(default_factory=list)

    def wire(self) -> JSON:
        return asdict(self)


@dataclass
class Failure:
    mode: str
    count: int | None  # requests left; None: until cleared
    operation_id: str | None
    seconds: float
    error_code: str | None = None  # mode "error"
    status: int | None = None

    def wire(self) -> JSON:
        return {
            "mode": self.mode,
            "count": self.count,
            "operationId": self.operation_id,
            "seconds": self.seconds,
            "errorCode": self.error_code,
            "status": self.status,
        }


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers, media_type="application/json")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _args(body: JSON, *names: str, required: Iterable[str] = ()) -> JSON:
    """The control body's fields as keyword arguments; 400 for one unknown or missing."""
    unknown = sorted(set(body) - set(names))
    missing = sorted(set(required) - set(body))
    if unknown or missing:
        raise bad_request(f"unknown fields {unknown}, missing fields {missing}")
    return {_snake(name): value for name, value in body.items()}


class FakeKanmon(KanmonWidget):
    """Kanmon's API over an in-memory state (``app``: ASGI; ``transport()``: httpx)."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None = None,
        strict: bool = True,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.strict = strict
        self._spec = fake_spec.load()
        super().__init__(now=now)
        self._handlers = self.operations()
        self._control = Router(routes=self._control_routes())

    def reset(self) -> None:
        """Forget every object, request and failure: a new fake."""
        super().reset()
        self.requests: list[RecordedRequest] = []
        self.failures: list[Failure] = []

    def violations(self) -> list[Violation]:
        return [v for r in self.requests for v in r.violations]

    def transport(self) -> httpx.AsyncBaseTransport:
        return FakeTransport(self)

    # --- failures ---------------------------------------------------------------------------

    def fail(
        self,
        mode: str,
        *,
        count: int | None = None,
        operation_id: str | None = None,
        seconds: float | None = None,
        error_code: str | None = None,
        status: int | None = None,
    ) -> Failure:
        """Fail the next ``count`` Kanmon requests (all, until ``clear_failures``, when None),
        or only those of ``operation_id``, as ``mode`` says (the module's docstring)."""
        if mode not in FAILURE_MODES:
            raise bad_request(f"mode must be one of {FAILURE_MODES}, not {mode!r}")
        if count is not None and (type(count) is not int or count < 1):
            raise bad_request(f"count must be a whole number, 1 or more: {count!r}")
        if operation_id is not None and operation_id not in self._spec.by_id:
            raise bad_request(f"{operation_id!r} is not an operationId of Kanmon's spec")
        wait = 1.0 if seconds is None else seconds
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 600:
            raise bad_request(f"seconds must be 0 to 600: {seconds!r}")
        if (mode == "error") != (error_code is not None and status is not None):
            raise bad_request("mode error takes an errorCode and a status, and only it does")
        if status is not None and (type(status) is not int or not 400 <= status < 600):
            raise bad_request(f"status must be a 4xx or 5xx code: {status!r}")
        failure = Failure(mode, count, operation_id, float(wait), error_code, status)
        self.failures.append(failure)
        return failure

    def clear_failures(self) -> None:
        self.failures.clear()

    def _take_failures(self, operation_id: str | None) -> tuple[Failure | None, Failure | None]:
        """The slow failure and the other failure the next request meets, each used once."""
        slow = other = None
        for failure in self.failures:
            if failure.operation_id not in (None, operation_id):
                continue
            if failure.mode == "slow":
                slow = slow or failure
            else:
                other = other or failure
        for taken in (slow, other):
            if taken is not None and taken.count is not None:
                taken.count -= 1
        self.failures = [f for f in self.failures if f.count != 0]
        return slow, other

    # --- Kanmon's API -----------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: ``/_fake/…`` is the control API, everything else is Kanmon's."""
        if scope["type"] != "http":
            return
        if scope["path"] == "/_fake" or scope["path"].startswith("/_fake/"):
            await self._control(scope, receive, send)
            return
        request = Request(scope, receive)
        raw = await request.body()
        op, path_params = self._spec.match(request.method, request.url.path)
        pairs = request.query_params.multi_items()
        entry = RecordedRequest(
            request.method,
            request.url.path,
            dict(pairs),
            raw.decode(errors="replace") or None,
            op.operation_id if op else None,
        )
        self.requests.append(entry)
        slow, failure = self._take_failures(entry.operation_id)
        if failure is not None and failure.mode == "down":
            if slow is not None:
                await asyncio.sleep(slow.seconds)
            raise KanmonDown(f"{request.method} {request.url.path}")
        status, body, headers = self._answer(entry, request, op, path_params, raw, failure)
        entry.status = status
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        await _json(status, body, headers)(scope, receive, send)

    def _violation(self, entry: RecordedRequest, kind: str, message: str) -> None:
        entry.violations.append(
            Violation(kind, entry.method, entry.path, entry.operation_id, message)
        )

    def _request_problems(
        self, entry: RecordedRequest, request: Request, op: Operation | None, raw: bytes
    ) -> tuple[Any, list[str]]:
        """The JSON body, and what is wrong with the request apart from its schemas."""
        problems = [
            f"query.{name}: repeated (Kanmon takes one value, a comma list)"
            for name in dict.fromkeys(request.query_params)
            if len(request.query_params.getlist(name)) > 1
        ]
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "ApiKey" or not key.strip():
            problems.append("Authorization: not 'ApiKey <key>'")
        body: Any = None
        if raw:
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                problems.append("Content-Type: not application/json")
            try:
                body = entry.body = json.loads(raw)
            except ValueError:
                problems.append("body: not JSON")
        if op is None:
            problems.append(f"{entry.method} {entry.path}: not an operation of Kanmon's spec")
        return body, problems

    def _answer(
        self,
        entry: RecordedRequest,
        request: Request,
        op: Operation | None,
        path_params: dict[str, str],
        raw: bytes,
        failure: Failure | None,
    ) -> tuple[int, Any, dict[str, str]]:
        body, problems = self._request_problems(entry, request, op, raw)
        query: dict[str, Any] = {}
        if op is not None:
            query, wrong = self._spec.check_parameters(op, path_params, entry.query)
            problems += wrong + self._spec.check_body(op, body)
        for problem in problems:
            self._violation(entry, "request", problem)
        if failure is not None and failure.mode == "429":
            retry = math.ceil(failure.seconds)
            headers = {
                "Retry-After": str(retry),
                "X-RateLimit-Remaining": "0",
                # Real time, not Kanmon's (possibly moved) clock: a client waits in real time.
                "X-RateLimit-Reset": str(int(clock.system_now().timestamp()) + retry),
            }
            error = KanmonError(429, "TooManyRequestsException", "Too many requests")
            return 429, self.error_body(error), headers
        if op is None:
            error = KanmonError(404, "NotFoundException", f"Cannot {entry.method} {entry.path}")
            return 404, self.error_body(error), {}
        key = request.headers.get("authorization", "").partition(" ")[2].strip()
        try:
            if failure is not None and failure.mode == "error":
                assert failure.status is not None
                assert failure.error_code is not None
                raise KanmonError(failure.status, failure.error_code, "Refused, as the test asked")
            if failure is not None:  # a 500: the rest were dealt with above
                raise KanmonError(500, "InternalServerErrorException", "Internal server error")
            if any(p.startswith("Authorization") for p in problems) or (
                self.api_keys is not None and key not in self.api_keys
            ):
                raise KanmonError(403, "ForbiddenException", "Forbidden resource")
            if problems:
                raise bad_request("; ".join(problems))
            handler = self._handlers.get(op.operation_id)
            if handler is None:
                return self._fake_bug(
                    entry, "unplayed", f"the fake does not play {op.operation_id}"
                )
            status, answer = handler(Call(path_params, query, body))
        except KanmonError as error:
            status, answer = error.status, self.error_body(error)
        wrong = self._spec.check_response(op, status, answer)
        if wrong:
            return self._fake_bug(entry, "response", "; ".join(wrong))
        return status, answer, {}

    def _fake_bug(
        self, entry: RecordedRequest, kind: str, message: str
    ) -> tuple[int, Any, dict[str, str]]:
        self._violation(entry, kind, message)
        if self.strict:
            raise FakeKanmonBug(f"{entry.method} {entry.path}: {message}")
        log.error("fake Kanmon bug: %s %s: %s", entry.method, entry.path, message)
        error = KanmonError(500, "InternalServerErrorException", f"fake Kanmon bug: {message}")
        return 500, self.error_body(error), {}

    # --- control API ------------------------------------------------------------------------

    def _control_routes(self) -> list[Route]:
        """``ROUTES``: each is one of the Python methods, with the body's camelCase fields as
        its keyword arguments (an unknown field is a 400, so a typo is not ignored)."""

        def route(path: str, method: str, action: Callable[[dict[str, str], JSON], Any]) -> Route:
            async def endpoint(request: Request) -> Response:
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = None
                try:
                    if not isinstance(body, dict):
                        raise bad_request("the body must be a JSON object")
                    return _json(200, action(dict(request.path_params), body))
                except KanmonError as error:
                    return _json(error.status, self.error_body(error))

            return Route(path, endpoint, methods=[method])

        return [
            route("/_fake/requests", "GET", lambda p, b: {"requests": self._log()}),
            route("/_fake/violations", "GET", lambda p, b: {"violations": self._violations()}),
            route("/_fake/reset", "POST", lambda p, b: self._reset(b)),
            route(
                "/_fake/sessions", "GET", lambda p, b: {"sessions": list(self.sessions.values())}
            ),
            route(
                "/_fake/businesses/{id}/onboard",
                "POST",
                lambda p, b: self.onboard_business(p["id"], **_args(b, "name", "ein", "address")),
            ),
            route(
                "/_fake/offers",
                "POST",
                lambda p, b: self.extend_offer(
                    **_args(
                        b,
                        "businessId",
                        "totalLimitCents",
                        "productType",
                        "pricingPlans",
                        "expiredAt",
                        required=("businessId", "totalLimitCents"),
                    )
                ),
            ),
            route("/_fake/offers/{id}/select", "POST", lambda p, b: self.select_offer(p["id"])),
            route(
                "/_fake/offers/{id}/issue",
                "POST",
                lambda p, b: self.issue_offer(p["id"], **_args(b, "availableLimitCents")),
            ),
            route(
                "/_fake/issued-products/{id}/loan-status",
                "POST",
                lambda p, b: self.set_loan_status(
                    p["id"], **_args(b, "loanStatus", required=("loanStatus",))
                ),
            ),
            route(
                "/_fake/sessions/{token}/submit",
                "POST",
                lambda p, b: {"invoices": self.submit_session(p["token"], **_args(b, "invoices"))},
            ),
            route(
                "/_fake/invoices/{id}/status",
                "POST",
                lambda p, b: self.set_invoice_status(
                    p["id"], **_args(b, "status", required=("status",))
                ),
            ),
            route("/_fake/failures", "GET", lambda p, b: self._failures()),
            route(
                "/_fake/failures",
                "POST",
                lambda p, b: self.fail(
                    **_args(
                        b,
                        "mode",
                        "count",
                        "operationId",
                        "seconds",
                        "errorCode",
                        "status",
                        required=("mode",),
                    )
                ).wire(),
            ),
            route("/_fake/failures", "DELETE", lambda p, b: self._clear_failures()),
        ]

    def _log(self) -> list[JSON]:
        return [r.wire() for r in self.requests]

    def _violations(self) -> list[JSON]:
        return [asdict(v) for v in self.violations()]

    def _reset(self, body: JSON) -> JSON:
        _args(body)
        self.reset()
        return {}

    def _failures(self) -> JSON:
        return {"failures": [f.wire() for f in self.failures]}

    def _clear_failures(self) -> JSON:
        self.clear_failures()
        return self._failures()


class FakeTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` over the fake, with what a network adds: ``httpx.ConnectError``
    while the fake is down, and ``httpx.ReadTimeout`` when an answer comes later than the
    request's read timeout (``ASGITransport`` alone never times out)."""

    def __init__(self, fake: FakeKanmon) -> None:
        self._asgi = httpx.ASGITransport(app=fake.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            async with asyncio.timeout(timeout):
                return await self._asgi.handle_async_request(request)
        except KanmonDown as exc:
            raise httpx.ConnectError(f"fake Kanmon is down: {exc}", request=request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"fake Kanmon took over {timeout} s", request=request) from exc

    async def aclose(self) -> None:
        await self._asgi.aclose()
