"""The Kanmon client against a fake transport: what it sends, when it tries again and waits,
when it gives up, its breaker, and what each of Kanmon's refusals becomes for a partner.

Time is fake: ``Clock.sleep`` records each wait and moves the clock the client reads, so
nothing sleeps (but the one test of a Kanmon that never answers, which needs real time).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from fundline.config import Lender, Settings
from fundline.kit.errors import (
    Conflict,
    FundlineError,
    NotFound,
    Unavailable,
    Unprocessable,
    render_error,
)
from fundline.kit.metrics import registry
from fundline.lending.kanmon import client as client_module
from fundline.lending.kanmon import errors as errors_module
from fundline.lending.kanmon.client import (
    ATTEMPT_SHARE,
    FAILURE_THRESHOLD,
    MAX_ATTEMPTS,
    OPEN_SECONDS,
    PREFIX,
    BreakerState,
    KanmonClient,
)
from fundline.lending.kanmon.errors import (
    ERRORS,
    REFUSED_MESSAGE,
    UNAVAILABLE_MESSAGE,
    KanmonError,
    LenderUnavailable,
    to_fundline_error,
)

KEY = "kmn_sk_test_5f1c0d9a7b3e4c21a8f6e2d4b9c7a1e3"
BASE_URL = "https://kanmon.test"
SPEC = resources.files("fundline.lending.kanmon").joinpath("kanmon-openapi.json")
EPOCH = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], Any]


@dataclass
class Clock:
    """The client's monotonic and wall clocks, moved only by its sleeps."""

    elapsed: float = 0.0
    waits: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return 500.0 + self.elapsed

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.elapsed += seconds


@dataclass
class Kanmon:
    """A fake Kanmon: answers from a list (the last one repeats), and keeps every request."""

    answers: list[httpx.Response | Exception]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        # A fresh response each time: one httpx has read is not sent again.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class Recorder:
    """Stands in for a module's structlog logger."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _log(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return log

    def __getattr__(self, level: str) -> Callable[..., None]:
        return self._log(level)


def ok(body: dict[str, Any] | None = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {"id": "x"})


def refusal(status: int, code: str, message: str = "An error occurred.") -> httpx.Response:
    body = {"errorCode": code, "message": message, "timestamp": "2025-03-03T12:00:00.000Z"}
    return httpx.Response(status, json=body)


def failing(status: int, **headers: str) -> httpx.Response:
    code = "InternalServerErrorException" if status >= 500 else "TooManyRequests"
    return httpx.Response(status, json={"errorCode": code, "message": "x"}, headers=headers)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(clock: Clock) -> AsyncIterator[Callable[..., KanmonClient]]:
    made: list[KanmonClient] = []

    def make(handler: Handler, **options: Any) -> KanmonClient:
        options.setdefault("random", lambda: 1.0)  # the longest backoff, to see it
        client = KanmonClient(
            base_url=BASE_URL,
            api_key=SecretStr(KEY),
            transport=httpx.MockTransport(handler),
            sleep=clock.sleep,
            monotonic=clock.monotonic,
            now=clock.now,
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


def state(client: KanmonClient) -> BreakerState:
    # Read through a call: mypy would narrow a property read twice in one test.
    return client.breaker.state


def metric(name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# What is sent.


async def test_sends_the_api_key_accept_and_a_json_body(make: Callable[..., KanmonClient]) -> None:
    kanmon = Kanmon([ok({"id": "b1", "name": "Acme"}, 201)])
    client = make(kanmon)

    business = await client.create_business({"platformBusinessId": "e1", "name": "Acme"})

    assert business == {"id": "b1", "name": "Acme"}
    [request] = kanmon.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE_URL}{PREFIX}/businesses"
    assert request.headers["authorization"] == f"ApiKey {KEY}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"platformBusinessId": "e1", "name": "Acme"}


def _spec_operations() -> dict[tuple[str, str], tuple[str, set[str]]]:
    spec = json.loads(SPEC.read_text())
    found = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "operationId" in operation:
                names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                found[(method.upper(), path)] = (operation["operationId"], names)
    return found


async def test_each_method_calls_the_operation_and_parameters_kanmon_declares(
    make: Callable[..., KanmonClient],
) -> None:
    calls: list[tuple[str, str, set[str]]] = []
    declared = {
        (method, path.replace("{id}", "ID")): names
        for (method, path), (_, names) in _spec_operations().items()
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, set(query(request))))
        return ok({"users": [], "pagination": {"totalCount": 0}})

    client = make(handler)
    two = ["a", "b"]
    await client.create_business({})
    await client.get_businesses(ids=two, platform_business_ids=two)
    await client.get_business("ID", id_type="PLATFORM")
    await client.create_user({})
    await client.get_users(
        ids=two, platform_user_ids=two, platform_business_ids=two, business_ids=two
    )
    await client.get_user("ID", id_type="PLATFORM")
    await client.create_connect_token({})
    await client.create_embedded_session({})
    await client.get_offers(ids=two, platform_business_ids=two, business_ids=two)
    await client.get_issued_products(
        ids=two, offer_ids=two, platform_business_ids=two, business_ids=two
    )
    await client.get_invoices(
        ids=two,
        statuses=two,
        platform_business_ids=two,
        business_ids=two,
        platform_invoice_ids=two,
    )
    await client.get_invoice("ID", id_type="PLATFORM")

    assert len(calls) == 12
    for method, path, sent in calls:
        assert (method, path) in declared, (method, path)
        assert sent <= declared[(method, path)], (path, sent - declared[(method, path)])
    # Every filter given was sent, each list comma-delimited.
    last = {"ids", "statuses", "platformBusinessIds", "businessIds", "platformInvoiceIds"}
    assert calls[10][2] == last | {"offset", "limit"}


async def test_lists_are_comma_delimited_and_ids_escaped(make: Callable[..., KanmonClient]) -> None:
    kanmon = Kanmon([ok({"invoices": [], "pagination": {"totalCount": 0}})])
    client = make(kanmon)

    await client.get_invoices(platform_invoice_ids=["i1", "i2"], offset=100, limit=50)
    await client.get_business("a/b c", id_type="PLATFORM")
    await client.get_invoice("k1")

    assert query(kanmon.requests[0]) == {
        "platformInvoiceIds": "i1,i2",
        "offset": "100",
        "limit": "50",
    }
    assert (
        kanmon.requests[1].url.raw_path == f"{PREFIX}/businesses/a%2Fb%20c?idType=PLATFORM".encode()
    )
    assert query(kanmon.requests[2]) == {}  # idType KANMON is Kanmon's default


async def test_an_empty_filter_matches_nothing_without_asking_kanmon(
    make: Callable[..., KanmonClient],
) -> None:
    kanmon = Kanmon([ok({"businesses": [{"id": "everyone"}], "pagination": {"totalCount": 1}})])
    client = make(kanmon)

    page = await client.get_businesses(platform_business_ids=[])

    assert page["businesses"] == []
    assert page["pagination"]["totalCount"] == 0
    assert kanmon.requests == []


async def test_bad_filters_are_refused_before_sending(make: Callable[..., KanmonClient]) -> None:
    client = make(Kanmon([ok()]))
    with pytest.raises(TypeError):
        await client.get_invoices(ids="abc")
    with pytest.raises(ValueError, match="comma"):
        await client.get_invoices(ids=["a,b"])
    with pytest.raises(ValueError, match="1 to 100"):
        await client.get_invoices(limit=101)


async def test_all_pages_reads_every_page_once(make: Callable[..., KanmonClient]) -> None:
    records = [{"id": f"i{n}"} for n in range(250)]
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        offset, limit = int(query(request)["offset"]), int(query(request)["limit"])
        page = records[offset : offset + limit]
        if len(sent) == 1:  # one is created while the pages are read: the rest shift by one
            records.insert(0, {"id": "new"})
        return ok({"invoices": page, "pagination": {"totalCount": len(records)}})

    client = make(handler)

    invoices = await client.get_all_invoices(platform_business_ids=["e1"])

    assert [query(r)["offset"] for r in sent] == ["0", "100", "200"]
    assert [i["id"] for i in invoices] == [f"i{n}" for n in range(250)]  # i99 once
    assert all(query(r)["platformBusinessIds"] == "e1" for r in sent)


# Retries.


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_a_get_is_retried_with_backoff(
    make: Callable[..., KanmonClient], clock: Clock, status: int
) -> None:
    kanmon = Kanmon([failing(status), failing(status), ok({"id": "o1"})])
    client = make(kanmon)
    reason = "rate_limited" if status == 429 else "server_error"
    retries = metric("fundline_kanmon_retries_total", operation="getInvoice", reason=reason)

    assert await client.get_invoice("o1") == {"id": "o1"}

    assert len(kanmon.requests) == 3
    assert clock.waits == [0.2, 0.4]  # BASE_BACKOFF doubling, jitter at its widest
    after = metric("fundline_kanmon_retries_total", operation="getInvoice", reason=reason)
    assert after - retries == 2


async def test_backoff_is_full_jitter_and_capped(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(503)])
    client = make(kanmon, random=lambda: 0.5, max_attempts=7, timeout=60)

    with pytest.raises(LenderUnavailable):
        await client.get_offers()

    assert clock.waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert len(kanmon.requests) == 7


async def test_retries_stop_after_max_attempts(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(500)])
    client = make(kanmon)

    with pytest.raises(LenderUnavailable) as raised:
        await client.get_business("b1")

    assert len(kanmon.requests) == MAX_ATTEMPTS
    assert raised.value.status_code == 503
    assert raised.value.message == UNAVAILABLE_MESSAGE


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_post_not_marked_safe_is_sent_once(
    make: Callable[..., KanmonClient], clock: Clock, status: int
) -> None:
    kanmon = Kanmon([failing(status)])
    client = make(kanmon)

    with pytest.raises(LenderUnavailable):
        await client.create_business({}, safe=False)
    with pytest.raises(LenderUnavailable):
        await client.request("POST", "/invoices/finance", operation="financeInvoice", json={})

    assert len(kanmon.requests) == 2
    assert clock.waits == []


@pytest.mark.parametrize(
    "create",
    [
        lambda c: c.create_business({}),
        lambda c: c.create_user({}),
        lambda c: c.create_connect_token({}),
        lambda c: c.create_embedded_session({}),
    ],
)
async def test_the_adapters_posts_are_safe_by_default(
    make: Callable[..., KanmonClient], create: Callable[[KanmonClient], Any]
) -> None:
    kanmon = Kanmon([failing(502), ok()])
    assert await create(make(kanmon)) == {"id": "x"}
    assert len(kanmon.requests) == 2


async def test_a_post_that_could_not_connect_is_sent_again(
    make: Callable[..., KanmonClient],
) -> None:
    kanmon = Kanmon([httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok()])
    client = make(kanmon)

    assert await client.request("POST", "/invoices/finance", operation="financeInvoice") == {
        "id": "x"
    }
    assert len(kanmon.requests) == 3


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut"), httpx.ReadError("x")]
)
async def test_a_post_that_may_have_arrived_is_not_sent_again(
    make: Callable[..., KanmonClient], error: Exception
) -> None:
    kanmon = Kanmon([error, ok()])
    client = make(kanmon)

    with pytest.raises(LenderUnavailable):
        await client.create_user({}, safe=False)
    assert len(kanmon.requests) == 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError("refused"), "connect_error"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.PoolTimeout("busy"), "connect_error"),
        (httpx.RemoteProtocolError("cut"), "network_error"),
    ],
)
async def test_transport_errors_become_lender_unavailable(
    make: Callable[..., KanmonClient], error: Exception, outcome: str
) -> None:
    kanmon = Kanmon([error])
    client = make(kanmon)
    before = metric("fundline_kanmon_calls_total", operation="getAllOffers", outcome=outcome)

    with pytest.raises(LenderUnavailable) as raised:
        await client.get_offers()

    assert len(kanmon.requests) == MAX_ATTEMPTS
    assert isinstance(raised.value, Unavailable)
    assert not isinstance(raised.value, httpx.HTTPError)
    after = metric("fundline_kanmon_calls_total", operation="getAllOffers", outcome=outcome)
    assert after - before == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>proxy</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(302, headers={"location": "https://elsewhere.test"}),
        httpx.Response(501, json={"errorCode": "x"}),
    ],
)
async def test_an_unusable_answer_is_unavailable_and_not_retried(
    make: Callable[..., KanmonClient], answer: httpx.Response
) -> None:
    kanmon = Kanmon([answer])
    with pytest.raises(LenderUnavailable):
        await make(kanmon).get_invoice("i1")
    assert len(kanmon.requests) == 1


# Rate limits and the budget.


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": format_datetime(EPOCH + timedelta(seconds=4), usegmt=True)}, 4.0),
        ({"Retry-After": format_datetime(EPOCH - timedelta(seconds=9), usegmt=True)}, 0.2),
        ({"RateLimit-Reset": "2"}, 2.0),
        ({"X-RateLimit-Reset": "6"}, 6.0),
        ({"X-RateLimit-Reset": str(int(EPOCH.timestamp()) + 5)}, 5.0),
        ({"Retry-After": "1", "RateLimit-Reset": "7"}, 1.0),
        ({"Retry-After": "soon", "RateLimit-Reset": "7"}, 7.0),
        ({"Retry-After": "-3"}, 0.2),
    ],
)
async def test_a_429_waits_as_long_as_kanmon_asks(
    make: Callable[..., KanmonClient], clock: Clock, headers: dict[str, str], wait: float
) -> None:
    kanmon = Kanmon([failing(429, **headers), ok()])

    await make(kanmon).get_users()

    assert clock.waits == [wait]  # never shorter than the backoff (0.2 here)


async def test_a_503_honours_retry_after_but_not_reset_headers(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon(
        [failing(503, **{"Retry-After": "2"}), failing(503, **{"RateLimit-Reset": "8"}), ok()]
    )
    await make(kanmon).get_users()
    assert clock.waits == [2.0, 0.4]


async def test_a_wait_past_the_budget_fails_at_once_with_kanmons_retry_after(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(429, **{"Retry-After": "60"}), ok()])
    client = make(kanmon, timeout=10)

    with pytest.raises(LenderUnavailable) as raised:
        await client.get_offers()

    assert clock.waits == []
    assert len(kanmon.requests) == 1
    assert raised.value.retry_after == 60


async def test_retries_never_wait_past_the_budget(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(429, **{"Retry-After": "4"})])
    client = make(kanmon, timeout=10, max_attempts=10)

    with pytest.raises(LenderUnavailable) as raised:
        await client.get_offers()

    assert clock.waits == [4.0, 4.0]  # a third wait would end at 12 s
    assert clock.elapsed < 10
    assert raised.value.retry_after == 4


async def test_a_kanmon_that_never_answers_is_given_up_within_the_budget() -> None:
    """Real time: each attempt is cut off, and the call ends by its budget."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return ok()

    budget = 0.3
    async with KanmonClient(
        base_url=BASE_URL, api_key=KEY, timeout=budget, transport=httpx.MockTransport(hang)
    ) as client:
        started = time.monotonic()
        with pytest.raises(LenderUnavailable):
            await client.get_invoices()
        took = time.monotonic() - started

    assert budget * ATTEMPT_SHARE * 0.9 < took < budget + 0.5


# The circuit breaker.


async def _fail_calls(client: KanmonClient, count: int) -> None:
    for _ in range(count):
        with pytest.raises(LenderUnavailable):
            await client.get_offers()


async def test_the_breaker_opens_after_consecutive_failures_and_fails_fast(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(500)])
    client = make(kanmon, max_attempts=1)
    opened = metric("fundline_kanmon_breaker_opened_total")

    await _fail_calls(client, FAILURE_THRESHOLD - 1)
    assert state(client) is BreakerState.CLOSED
    await _fail_calls(client, 1)
    assert state(client) is BreakerState.OPEN
    assert metric("fundline_kanmon_breaker_state") == 2
    assert metric("fundline_kanmon_breaker_opened_total") - opened == 1
    sent = len(kanmon.requests)

    clock.elapsed += 10
    with pytest.raises(LenderUnavailable) as raised:
        await client.get_invoice("i1")

    assert len(kanmon.requests) == sent  # not sent
    assert raised.value.retry_after == OPEN_SECONDS - 10
    assert raised.value.message == UNAVAILABLE_MESSAGE


async def test_the_breaker_half_opens_and_one_success_closes_it(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(503)])
    client = make(kanmon, max_attempts=1, failure_threshold=2, open_seconds=5)
    await _fail_calls(client, 2)
    assert state(client) is BreakerState.OPEN

    clock.elapsed += 5
    assert state(client) is BreakerState.HALF_OPEN
    assert metric("fundline_kanmon_breaker_state") == 1
    kanmon.answers = [ok({"id": "i1"})]

    assert await client.get_invoice("i1") == {"id": "i1"}
    assert state(client) is BreakerState.CLOSED
    assert client.breaker.failures == 0
    assert metric("fundline_kanmon_breaker_state") == 0


async def test_a_failed_probe_opens_the_breaker_again(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(503)])
    client = make(kanmon, max_attempts=1, failure_threshold=3, open_seconds=5)
    await _fail_calls(client, 3)
    clock.elapsed += 5
    sent = len(kanmon.requests)

    await _fail_calls(client, 1)  # the probe: sent, failed

    assert len(kanmon.requests) == sent + 1
    assert state(client) is BreakerState.OPEN
    assert client.breaker.retry_after() == 5


async def test_while_the_probe_is_out_other_calls_fail_fast(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    release = asyncio.Event()
    sent: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) > 1:
            await release.wait()
            return ok()
        return failing(500)

    client = make(handler, max_attempts=1, failure_threshold=1, open_seconds=5)
    await _fail_calls(client, 1)
    clock.elapsed += 5

    probe = asyncio.create_task(client.get_invoice("i1"))
    while len(sent) < 2:
        await asyncio.sleep(0)
    with pytest.raises(LenderUnavailable) as raised:
        await client.get_invoice("i2")
    assert raised.value.retry_after == 1
    release.set()

    assert await probe == {"id": "x"}
    assert len(sent) == 2
    assert state(client) is BreakerState.CLOSED


async def test_a_cancelled_probe_lets_the_next_call_probe(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    started = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/slow"):
            started.set()
            await asyncio.sleep(30)
        return failing(500) if request.url.path.endswith("/down") else ok()

    client = make(handler, max_attempts=1, failure_threshold=1, open_seconds=5)
    with pytest.raises(LenderUnavailable):
        await client.get_invoice("down")
    clock.elapsed += 5
    probe = asyncio.create_task(client.get_invoice("slow"))
    await started.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert await client.get_invoice("fine") == {"id": "x"}
    assert state(client) is BreakerState.CLOSED


async def test_a_call_that_recovered_by_retrying_is_no_failure(
    make: Callable[..., KanmonClient],
) -> None:
    kanmon = Kanmon([failing(503), ok()])
    client = make(kanmon)
    await client.get_offers()
    assert client.breaker.failures == 0


async def test_a_refusal_is_not_retried_and_does_not_count_against_the_breaker(
    make: Callable[..., KanmonClient], clock: Clock
) -> None:
    kanmon = Kanmon([failing(500)])
    client = make(kanmon, max_attempts=1)
    await _fail_calls(client, FAILURE_THRESHOLD - 1)
    kanmon.answers = [refusal(404, "BusinessNotFoundException")]
    sent = len(kanmon.requests)
    before = metric("fundline_kanmon_calls_total", operation="getBusiness", outcome="refused")

    for _ in range(FAILURE_THRESHOLD + 1):
        with pytest.raises(KanmonError) as raised:
            await client.get_business("b1")

    assert len(kanmon.requests) == sent + FAILURE_THRESHOLD + 1  # once each
    assert clock.waits == []
    assert state(client) is BreakerState.CLOSED
    assert client.breaker.failures == 0  # Kanmon answered: it is up
    assert raised.value.status == 404
    assert raised.value.error_code == "BusinessNotFoundException"
    assert raised.value.operation == "getBusiness"
    after = metric("fundline_kanmon_calls_total", operation="getBusiness", outcome="refused")
    assert after - before == FAILURE_THRESHOLD + 1


# Kanmon's refusals.


def _spec_error_codes() -> set[str]:
    schemas = json.loads(SPEC.read_text())["components"]["schemas"]
    codes = set()
    for name, schema in schemas.items():
        code = schema.get("properties", {}).get("errorCode", {})
        if name.endswith("Exception"):
            codes.update(code["enum"])
    return codes


def test_every_error_code_in_kanmons_spec_has_a_row() -> None:
    codes = _spec_error_codes()
    assert len(codes) >= 40
    assert codes - set(ERRORS) == set()
    assert set(ERRORS) - codes == set()  # no row for a code Kanmon does not send


_CLASSES: dict[int, type[FundlineError]] = {
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    503: LenderUnavailable,
}


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_each_row_maps_to_its_declared_status(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors_module, "log", Recorder())
    rule = ERRORS[code]
    error = to_fundline_error(KanmonError(400, code, f"Kanmon's text {KEY}", operation="op"))

    assert error.status_code == rule.status
    assert type(error) is _CLASSES[rule.status]
    assert error.message == rule.message
    assert "Kanmon's text" not in error.message  # partners get ours, never Kanmon's
    response = render_error(error)
    assert response is not None
    assert response.status_code == rule.status
    if rule.status == 503:
        assert json.loads(bytes(response.body)) == {"error": {"message": rule.message}}
        assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        ("InsufficientCreditLimitException", 409, "available limit is less than the amount"),
        ("InvalidInvoiceDueDateException", 409, "at least 7 days"),
        ("BusinessHasNoInvoiceFinancingProductException", 409, "no receivables financing"),
        ("BusinessHasNoAccountsPayableFinancingProductException", 409, "no payables financing"),
        ("PlatformInvoiceIdAlreadyExistsException", 409, "already been financed"),
        ("PlatformInvoiceIdAlreadyExistsForAnotherIssuedProductException", 409, "already been"),
        ("PlatformInvoiceNumberAlreadyExistsForIssuedProductException", 409, "already been"),
        ("BusinessNotFoundException", 409, "not registered"),
        ("InvoiceNotFoundException", 404, "not found"),
        ("ForbiddenException", 503, "unavailable"),
        ("BadRequestException", 503, "refused the request"),
    ],
)
def test_the_rows_a_partner_meets_most(code: str, status: int, words: str) -> None:
    error = to_fundline_error(KanmonError(400, code, ""))
    assert (error.status_code, words in error.message) == (status, True)


@pytest.mark.parametrize(
    ("code", "logged"),
    [
        ("ForbiddenException", "FUNDLINE_KANMON_API_KEY"),
        ("BadRequestException", "adapter bug"),
        ("SomethingNewException", "missing from lending/kanmon/errors.py"),
        ("", "missing"),
    ],
)
def test_our_own_faults_are_logged_for_the_operator_not_blamed_on_the_partner(
    code: str, logged: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(errors_module, "log", recorder)

    error = to_fundline_error(KanmonError(403, code, "Forbidden", operation="createBusiness"))

    assert isinstance(error, LenderUnavailable)
    assert error.message in {UNAVAILABLE_MESSAGE, REFUSED_MESSAGE}
    [(level, event, fields)] = recorder.lines
    assert level == "error"
    assert event == "kanmon.refused"
    assert logged in fields["why"]
    assert fields["operation"] == "createBusiness"


def test_a_partners_fault_is_not_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(errors_module, "log", recorder)
    to_fundline_error(KanmonError(409, "InsufficientCreditLimitException", ""))
    assert recorder.lines == []


@pytest.mark.parametrize(
    ("code", "duplicate"),
    [
        ("BusinessAlreadyExistsException", True),
        ("UserAlreadyExistsWithPlatformUserIdException", True),
        ("UserAlreadyExistsWithEmailException", True),
        ("PlatformInvoiceIdAlreadyExistsException", False),
        ("BusinessNotFoundException", False),
        ("Unknown", False),
    ],
)
def test_duplicates_on_create_are_identifiable(code: str, duplicate: bool) -> None:
    assert KanmonError(409, code, "").is_duplicate is duplicate


async def test_a_refusal_carries_kanmons_code_and_message(
    make: Callable[..., KanmonClient],
) -> None:
    kanmon = Kanmon([refusal(409, "BusinessAlreadyExistsException", "Business exists")])
    with pytest.raises(KanmonError) as raised:
        await make(kanmon).create_business({})
    assert raised.value.status == 409
    assert raised.value.error_code == "BusinessAlreadyExistsException"
    assert raised.value.message == "Business exists"
    assert raised.value.is_duplicate
    assert "createBusiness answered 409 BusinessAlreadyExistsException" in str(raised.value)


async def test_a_refusal_not_in_kanmons_shape_keeps_none_of_its_body(
    make: Callable[..., KanmonClient],
) -> None:
    kanmon = Kanmon([httpx.Response(404, text="<h1>Not Found: secret path</h1>")])
    with pytest.raises(KanmonError) as raised:
        await make(kanmon).get_invoice("i1")
    assert raised.value.error_code == ""
    assert "secret path" not in str(raised.value)
    assert isinstance(to_fundline_error(raised.value), LenderUnavailable)


# The key.


async def test_the_key_appears_in_no_error_repr_or_log(
    make: Callable[..., KanmonClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(client_module, "log", recorder)
    monkeypatch.setattr(errors_module, "log", recorder)
    kanmon = Kanmon(
        [
            refusal(403, "ForbiddenException", f"Invalid key ApiKey {KEY}"),
            httpx.ConnectError(f"refused while sending {KEY}"),
            failing(500),
        ]
    )
    client = make(kanmon, max_attempts=2)
    raised: list[BaseException] = []

    with pytest.raises(KanmonError) as refused:
        await client.get_business("b1")
    raised.append(refused.value)
    raised.append(to_fundline_error(refused.value))
    with pytest.raises(LenderUnavailable) as unavailable:
        await client.get_offers()
    raised.append(unavailable.value)

    texts = [repr(client), repr(client._http.auth), str(client._http.headers)]
    for exc in raised:
        texts += [str(exc), repr(exc)]
        if exc.__cause__ is not None or exc.__context__ is not None:
            texts += [repr(exc.__cause__), repr(exc.__context__)]
    texts += [repr(line) for line in recorder.lines]
    assert recorder.lines
    assert [t for t in texts if KEY in t] == []
    assert "**********" in str(refused.value)


async def test_a_client_needs_a_key_and_takes_its_settings() -> None:
    with pytest.raises(ValueError, match="API key"):
        KanmonClient(base_url=BASE_URL, api_key=" ")
    with pytest.raises(ValueError, match="FUNDLINE_KANMON_API_KEY"):
        KanmonClient.from_settings(Settings(kanmon_api_key=None))
    settings = Settings(
        lender=Lender.KANMON,
        kanmon_api_key=SecretStr(KEY),
        kanmon_base_url="https://api.kanmon.com/",
        kanmon_timeout_seconds=4,
    )
    async with KanmonClient.from_settings(settings) as client:
        assert repr(client) == "KanmonClient(base_url='https://api.kanmon.com', breaker='closed')"
        assert client._budget == 4
