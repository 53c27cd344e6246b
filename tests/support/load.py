"""A load driver for the reliability tests: the whole financing flow over HTTP against real
``fundline serve`` processes, as a careful client would run it, keeping count of every request
and every write the servers acknowledged.

A careful client: it sends an ``Idempotency-Key`` with every ``/v1`` POST and, when a request
dies without an answer (the server was killed), sends it again with the same key; it waits
``Retry-After`` on a 429; and it never repeats a write that has no key (Connect, lender) without
first reading whether the lost one happened. So after a crash each flow knows exactly what the
server did, which the tests compare with the database.

Who sends what, and from where: each partner platform and each business's browser has an
address of its own (``X-Forwarded-For``, which uvicorn believes from 127.0.0.1, as it would
from a load balancer), so the per-address windows of the Connect API count per business as in
production; the operator's lender API calls come from one address.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.factories import (
    BUSINESS_PAYLOAD,
    counterpart_payload,
    invoice_payload,
    organization_payload,
)

VERSION = "2024-05-25"
REQUEST_TIMEOUT = 30.0
IN_FLIGHT = "still being processed"  # the 409 of an Idempotency-Key whose first request runs
# How long a flow waits for a key still claimed by a request the kill cut (the servers run with
# a short FUNDLINE_IDEMPOTENCY_LOCK_SECONDS in the crash tests).
IN_FLIGHT_PATIENCE = 60.0


def emit(line: str) -> None:
    """A line of figures in the test's output (shown with ``-s``, and on failure)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def digest(token: str) -> str:
    """How Fundline stores a token: its SHA-256 (``kit.security.token_digest``)."""
    return hashlib.sha256(token.encode()).hexdigest()


class UnexpectedAnswer(AssertionError):
    """A server answered what no rule allows (a 5xx, an unexpected 4xx)."""


@dataclass
class Figures:
    requests: int = 0  # every request sent, reads and retries included
    writes: int = 0  # POST and PUT requests sent
    acknowledged: int = 0  # writes answered 2xx
    replayed: int = 0  # ... of which from the idempotency store (Idempotency-Replayed)
    lost: int = 0  # writes whose connection died before an answer (a kill)
    lost_committed: int = 0  # lost writes that, read back or replayed, had happened
    lost_not_committed: int = 0  # lost writes that had not (sent again, or given up)
    not_sent: int = 0  # requests refused at connect (the server was down)
    throttled: int = 0  # 429 answers (waited for, sent again)
    in_flight_conflicts: int = 0  # 409: the same key still claimed (waited for, sent again)
    server_errors: int = 0  # 5xx answers: each is a failure
    refused: Counter[int] = field(default_factory=Counter)  # other 4xx answers to writes

    def line(self) -> str:
        refused = ", ".join(f"{status}: {n}" for status, n in sorted(self.refused.items()))
        return (
            f"requests sent {self.requests}, writes sent {self.writes}, "
            f"2xx acknowledged {self.acknowledged} (replayed {self.replayed}), "
            f"lost in flight {self.lost} (had happened {self.lost_committed}, "
            f"had not {self.lost_not_committed}), refused at connect {self.not_sent}, "
            f"429 {self.throttled}, key in flight 409 {self.in_flight_conflicts}, "
            f"5xx {self.server_errors}, refused writes {{{refused}}}"
        )


@dataclass(frozen=True)
class Ack:
    """A write a server answered 2xx: what the database must show from then on."""

    kind: str
    data: dict[str, Any]


class Driver:
    """HTTP to the servers at ``urls`` (round robin unless a request names one), at most
    ``concurrency`` requests in flight; ``up`` is cleared while the servers are down, and every
    request waits for it before it is sent."""

    def __init__(self, urls: Sequence[str], *, concurrency: int, seed: int) -> None:
        self.urls = list(urls)
        self.http = httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(
                max_connections=2 * concurrency, max_keepalive_connections=2 * concurrency
            ),
        )
        self.slots = asyncio.Semaphore(concurrency)
        self.up = asyncio.Event()
        self.up.set()
        self.figures = Figures()
        self.acks: list[Ack] = []
        self.rng = random.Random(seed)
        self._turn = itertools.count()
        self.unexpected: list[str] = []
        self.in_flight = 0  # requests sent and not answered yet

    async def aclose(self) -> None:
        await self.http.aclose()

    def ack(self, kind: str, **data: Any) -> None:
        self.acks.append(Ack(kind, data))

    def _url(self, server: int | None) -> str:
        index = next(self._turn) if server is None else server
        return self.urls[index % len(self.urls)]

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        server: int | None = None,
    ) -> httpx.Response | None:
        """One request; ``None`` when it may have reached a server but no answer came (the
        connection died: a kill). A request no server took (refused at connect) and a 429 are
        sent again, once ``up``."""
        write = method in ("POST", "PUT", "PATCH", "DELETE")
        while True:
            await self.up.wait()
            async with self.slots:
                self.figures.requests += 1
                self.figures.writes += write
                self.in_flight += 1
                try:
                    response = await self.http.request(
                        method, self._url(server) + path, headers=headers, json=json
                    )
                except httpx.ConnectError:  # never reached a server: safe to send again
                    self.figures.not_sent += 1
                    response = None
                except httpx.TransportError:
                    self.figures.lost += write
                    return None
                finally:
                    self.in_flight -= 1
            if response is None:
                await asyncio.sleep(0.05)
                continue
            if response.status_code == 429:
                self.figures.throttled += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if response.status_code >= 500:
                self.figures.server_errors += 1
                self._unexpected(method, path, response)
            elif write and response.status_code < 300:
                self.figures.acknowledged += 1
                if response.headers.get("idempotent-replayed") == "true":
                    self.figures.replayed += 1
            elif write and not _in_flight(response):
                self.figures.refused[response.status_code] += 1
            return response

    def _unexpected(self, method: str, path: str, response: httpx.Response) -> None:
        self.unexpected.append(f"{method} {path}: {response.status_code} {response.text[:300]}")

    def fail(self, method: str, path: str, response: httpx.Response) -> UnexpectedAnswer:
        self._unexpected(method, path, response)
        return UnexpectedAnswer(self.unexpected[-1])

    async def read(
        self, path: str, *, headers: dict[str, str], server: int | None = None
    ) -> dict[str, Any]:
        """A GET, sent again until it is answered; it must be a 200."""
        while True:
            response = await self.send("GET", path, headers=headers, server=server)
            if response is None:
                continue
            if response.status_code != 200:
                raise self.fail("GET", path, response)
            body: dict[str, Any] = response.json()
            return body

    async def keyed(
        self,
        path: str,
        *,
        headers: dict[str, str],
        key: str,
        json: Any = None,
        server: int | None = None,
    ) -> httpx.Response:
        """A POST with ``Idempotency-Key: key``, sent again with that key until it is answered
        (lost, or the key still held by a request the kill cut); the answer, 2xx or not."""
        keyed_headers = {**headers, "idempotency-key": key}
        lost = 0
        deadline = time.monotonic() + IN_FLIGHT_PATIENCE
        while True:
            response = await self.send(
                "POST", path, headers=keyed_headers, json=json, server=server
            )
            if response is None:
                lost += 1
                continue
            if _in_flight(response) and time.monotonic() < deadline:
                self.figures.in_flight_conflicts += 1
                await asyncio.sleep(0.25)
                continue
            # Of the lost attempts, one had happened if the answer is the stored one.
            self.resolved(lost, happened=response.headers.get("idempotent-replayed") == "true")
            return response

    def resolved(self, lost: int, *, happened: bool) -> None:
        """``lost`` attempts of one write, read back or replayed: one of them had happened,
        or none had."""
        if lost:
            self.figures.lost_committed += happened
            self.figures.lost_not_committed += lost - happened

    async def created(
        self,
        path: str,
        *,
        headers: dict[str, str],
        key: str,
        json: Any = None,
        expect: int = 201,
        server: int | None = None,
    ) -> dict[str, Any]:
        """``keyed`` for a write that must succeed: its body."""
        response = await self.keyed(path, headers=headers, key=key, json=json, server=server)
        if response.status_code != expect:
            raise self.fail("POST", path, response)
        body: dict[str, Any] = response.json()
        return body

    async def twice(
        self, path: str, *, headers: dict[str, str], key: str, json: Any = None
    ) -> tuple[httpx.Response, httpx.Response]:
        """The same keyed POST sent at once to the first and the second server; a 409 (the
        other still running) is sent again until the stored answer replays."""

        async def one(server: int) -> httpx.Response:
            return await self.keyed(path, headers=headers, key=key, json=json, server=server)

        first, second = await asyncio.gather(one(0), one(1))
        return first, second


def _in_flight(response: httpx.Response) -> bool:
    return response.status_code == 409 and IN_FLIGHT in response.text


# --- who takes part --------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerKeys:
    """An API client, as ``fundline partner create`` prints it."""

    client_id: str
    client_secret: str


@dataclass
class Business:
    """An entity of a partner platform, onboarded, with a CURRENT offer."""

    name: str
    address: str  # its browser's (and its platform's) address
    headers: dict[str, str]  # the platform's /v1 headers for this entity
    entity_id: str = ""
    counterpart: dict[str, Any] = field(default_factory=dict)
    offer_id: str = ""
    total_amount: int = 0
    plans: list[dict[str, Any]] = field(default_factory=list)

    def browser(self, session: str | None = None) -> dict[str, str]:
        headers = {"x-forwarded-for": self.address}
        if session is not None:
            headers["authorization"] = f"Bearer {session}"
        return headers


def operator_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def access_token(driver: Driver, keys: PartnerKeys, address: str) -> str:
    body = {
        "grant_type": "client_credentials",
        "client_id": keys.client_id,
        "client_secret": keys.client_secret,
    }
    headers = {"x-monite-version": VERSION, "x-forwarded-for": address}
    while True:
        response = await driver.send("POST", "/v1/auth/token", headers=headers, json=body)
        if response is None:
            continue
        if response.status_code != 200:
            raise driver.fail("POST", "/v1/auth/token", response)
        return str(response.json()["access_token"])


async def onboard(
    driver: Driver, keys: PartnerKeys, *, name: str, address: str, operator: dict[str, str]
) -> Business:
    """The whole onboarding over HTTP, no kill meanwhile: a token, the entity and a customer,
    a connect token, the business form in Connect, the offer accepted, then issued by the
    operator (manual review). Every write must succeed."""
    token = await access_token(driver, keys, address)
    platform = {
        "x-monite-version": VERSION,
        "authorization": f"Bearer {token}",
        "x-forwarded-for": address,
    }
    business = Business(name=name, address=address, headers=platform)
    entity = await driver.created(
        "/v1/entities",
        headers=platform,
        key=f"{name}:entity",
        json=organization_payload(f"{name} LLC"),
    )
    business.entity_id = str(entity["id"])
    business.headers = {**platform, "x-monite-entity-id": business.entity_id}
    business.counterpart = await driver.created(
        "/v1/counterparts",
        headers=business.headers,
        key=f"{name}:customer",
        json=counterpart_payload(f"{name} Customer Inc"),
    )
    tokens = await driver.created(
        "/v1/financing_tokens", headers=business.headers, key=f"{name}:connect"
    )
    session = await _must(
        driver,
        "POST",
        "/connect/v1/sessions",
        business.browser(),
        {"token": tokens["connect_token"]},
        201,
    )
    browser = business.browser(session["access_token"])
    form = await _must(driver, "PUT", "/connect/v1/business", browser, BUSINESS_PAYLOAD, 200)
    offer = form["offer"]
    if offer is None:
        raise UnexpectedAnswer(f"{name}: no offer after onboarding: {form}")
    await _must(driver, "POST", f"/connect/v1/offers/{offer['id']}/accept", browser, None, 200)
    issued = await _must(
        driver, "POST", f"/lender/v1/financing_offers/{offer['id']}/issue", operator, None, 200
    )
    if issued["status"] != "CURRENT":
        raise UnexpectedAnswer(f"{name}: the issued offer is {issued['status']}")
    business.offer_id = str(offer["id"])
    business.total_amount = int(offer["total_amount"])
    business.plans = list(offer["pricing_plans"])
    return business


async def _must(
    driver: Driver,
    method: str,
    path: str,
    headers: dict[str, str],
    json: Any,
    expect: int,
    server: int | None = None,
) -> dict[str, Any]:
    """A write without a key, where nothing is being killed: sent once, it must succeed."""
    response = await driver.send(method, path, headers=headers, json=json, server=server)
    if response is None:
        raise UnexpectedAnswer(f"{method} {path}: no answer")
    if response.status_code != expect:
        raise driver.fail(method, path, response)
    body: dict[str, Any] = response.json()
    return body


# --- one invoice, from creation to repayment, through any number of kills ----------------------

# Where a flow stops: a draft, a confirmed (NEW) invoice, a funded one, a partly repaid one, or
# repaid in full by the lender's repayments or by the invoice being marked paid.
TARGETS = ("DRAFT", "NEW", "FUNDED", "PART_REPAID", "REPAID", "INVOICE_PAID")
TARGET_WEIGHTS = (1, 1, 1, 2, 3, 3)


@dataclass
class Outcome:
    """What a flow knows happened, every lost write resolved: the database must agree."""

    business: Business
    key: str
    target: str
    receivable_id: str = ""
    status: str = ""  # the financing invoice's, "" when none is left
    financing_invoice_id: str = ""
    requested_amount: int = 0
    repayment_amount: int = 0
    repaid_amount: int = 0
    receivable_paid: bool = False
    note: str = ""  # why it stopped short of its target


async def finance_invoice(
    driver: Driver,
    business: Business,
    operator: dict[str, str],
    *,
    key: str,
    target: str,
    amount: int,
    plan: int,
) -> Outcome:
    """Create and issue an invoice, request its financing, confirm it in Connect, have the
    operator fund it and take repayments, as far as ``target``; every write lost to a kill is
    resolved (sent again with its key, or read back) before the next."""
    outcome = Outcome(business, key, target)
    invoice = await driver.created(
        "/v1/receivables",
        headers=business.headers,
        key=f"{key}:create",
        json=invoice_payload(business.counterpart, amount=amount, memo=key),
    )
    outcome.receivable_id = str(invoice["id"])
    driver.ack("receivable.created", id=outcome.receivable_id, key=key)
    await driver.created(
        f"/v1/receivables/{outcome.receivable_id}/issue",
        headers=business.headers,
        key=f"{key}:issue",
        expect=200,
    )
    driver.ack("receivable.issued", id=outcome.receivable_id)
    tokens = await driver.created(
        "/v1/financing_invoices",
        headers=business.headers,
        key=f"{key}:request",
        json={"invoices": [{"id": outcome.receivable_id, "type": "receivable"}]},
    )
    outcome.status = "DRAFT"
    driver.ack(
        "financing.requested",
        invoice_id=outcome.receivable_id,
        session_token=digest(tokens["session_token"]),
    )
    session = await _open_session(driver, business, tokens["session_token"])
    if session is None:
        outcome.note = "the session token was used by an exchange whose answer was lost"
        return outcome
    if target == "DRAFT":
        return outcome

    chosen = business.plans[plan]
    requested = amount * chosen["advance_rate_percentage"] // 10_000
    confirmed = await _confirm(driver, business, session, outcome, chosen["id"], requested)
    if not confirmed:
        return outcome
    outcome.requested_amount = requested
    if target == "NEW":
        return outcome

    funded = await _fund(driver, operator, outcome.financing_invoice_id)
    outcome.status = "FUNDED"
    outcome.repayment_amount = int(funded["repayment_amount"])
    if target == "FUNDED":
        return outcome

    await _repay(driver, operator, outcome, outcome.repayment_amount // 3 + 1)
    if target == "PART_REPAID":
        return outcome
    if target == "REPAID":
        await _repay(driver, operator, outcome, outcome.repayment_amount - outcome.repaid_amount)
        outcome.status = "PAID"
        return outcome
    await driver.created(
        f"/v1/receivables/{outcome.receivable_id}/mark_as_paid",
        headers=business.headers,
        key=f"{key}:paid",
        expect=200,
    )
    driver.ack("receivable.paid", id=outcome.receivable_id, fi=outcome.financing_invoice_id)
    outcome.receivable_paid = True
    outcome.repaid_amount = outcome.repayment_amount
    outcome.status = "PAID"
    return outcome


async def _open_session(driver: Driver, business: Business, token: str) -> str | None:
    """Exchange the session token; after a lost exchange, the same token again: a 401 then
    means the lost one went through (tokens work once), and the flow cannot go on."""
    lost = 0
    while True:
        response = await driver.send(
            "POST", "/connect/v1/sessions", headers=business.browser(), json={"token": token}
        )
        if response is None:
            lost += 1
            continue
        if response.status_code == 201:
            driver.resolved(lost, happened=False)
            access = str(response.json()["access_token"])
            driver.ack("connect.session", token=digest(access))
            return access
        if lost and response.status_code == 401:
            driver.resolved(lost, happened=True)
            return None
        raise driver.fail("POST", "/connect/v1/sessions", response)


async def _financing_of(driver: Driver, business: Business, receivable_id: str) -> dict[str, Any]:
    listed = await driver.read(
        f"/v1/financing_invoices?invoice_id={receivable_id}", headers=business.headers
    )
    live = [fi for fi in listed["data"] if fi["status"] not in ("REJECTED", "PAID", "DEFAULTED")]
    if len(live) != 1:
        raise UnexpectedAnswer(f"invoice {receivable_id}: live financings {listed['data']}")
    return dict(live[0])


async def _confirm(
    driver: Driver,
    business: Business,
    session: str,
    outcome: Outcome,
    plan_id: str,
    requested: int,
) -> bool:
    """Confirm in Connect; a lost confirmation is read back (NEW: it happened; DRAFT: again).
    A 409 (more than the offer has available) leaves the invoice a DRAFT: False."""
    path = "/connect/v1/invoices/confirm"
    item = {"invoice_id": outcome.receivable_id, "pricing_plan_id": plan_id}
    body = {"invoices": [{**item, "requested_amount": requested}]}
    while True:
        response = await driver.send("POST", path, headers=business.browser(session), json=body)
        if response is None:
            state = await _financing_of(driver, business, outcome.receivable_id)
            driver.resolved(1, happened=state["status"] != "DRAFT")
            if state["status"] == "DRAFT":
                continue
            outcome.financing_invoice_id = str(state["id"])
            break
        if response.status_code == 409:
            outcome.note = f"refused: {response.json()['error']['message']}"
            return False
        if response.status_code != 200:
            raise driver.fail("POST", path, response)
        [confirmed] = response.json()["invoices"]
        outcome.financing_invoice_id = str(confirmed["id"])
        driver.ack("financing.confirmed", fi=outcome.financing_invoice_id, requested=requested)
        break
    outcome.status = "NEW"
    return True


async def _lender_view(driver: Driver, operator: dict[str, str], fi: str) -> dict[str, Any]:
    return await driver.read(f"/lender/v1/financing_invoices/{fi}", headers=operator)


async def _fund(driver: Driver, operator: dict[str, str], fi: str) -> dict[str, Any]:
    path = f"/lender/v1/financing_invoices/{fi}/fund"
    while True:
        response = await driver.send("POST", path, headers=operator)
        if response is None:
            state = await _lender_view(driver, operator, fi)
            driver.resolved(1, happened=state["status"] != "NEW")
            if state["status"] == "NEW":
                continue
            return state
        if response.status_code != 200:
            raise driver.fail("POST", path, response)
        driver.ack("financing.funded", fi=fi)
        body: dict[str, Any] = response.json()
        return body


async def _repay(driver: Driver, operator: dict[str, str], outcome: Outcome, amount: int) -> None:
    """Record a repayment; a lost one is read back: the repaid amount says whether it counted."""
    fi = outcome.financing_invoice_id
    path = f"/lender/v1/financing_invoices/{fi}/repayments"
    before = outcome.repaid_amount
    while True:
        response = await driver.send("POST", path, headers=operator, json={"amount": amount})
        if response is None:
            repaid = int((await _lender_view(driver, operator, fi))["repaid_amount"])
            if repaid not in (before, before + amount):
                raise UnexpectedAnswer(f"{fi}: repaid {repaid}, expected {before} or {amount}")
            driver.resolved(1, happened=repaid != before)
            if repaid == before:
                continue
            break
        if response.status_code != 200:
            raise driver.fail("POST", path, response)
        driver.ack("financing.repaid", fi=fi, amount=amount)
        break
    outcome.repaid_amount = before + amount


# --- many flows at once -----------------------------------------------------------------------


class Load:
    """Keeps ``parallel`` invoice flows running over ``businesses`` until ``stop``; collects
    their outcomes and any exception."""

    def __init__(
        self,
        driver: Driver,
        businesses: Sequence[Business],
        operator: dict[str, str],
        *,
        parallel: int,
        amounts: tuple[int, int] = (20_000, 80_000),
    ) -> None:
        self.driver = driver
        self.businesses = list(businesses)
        self.operator = operator
        self.parallel = parallel
        self.amounts = amounts
        self.outcomes: list[Outcome] = []
        self.errors: list[BaseException] = []
        self.started = 0
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(parallel)
        self._spawner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._spawner = asyncio.create_task(self._spawn())

    async def _spawn(self) -> None:
        rng = self.driver.rng
        while not self._stopping.is_set():
            await self._room.acquire()
            if self._stopping.is_set():
                self._room.release()
                break
            n = self.started
            self.started += 1
            business = self.businesses[n % len(self.businesses)]
            flow = finance_invoice(
                self.driver,
                business,
                self.operator,
                key=f"{business.name}-{n}-{uuid.uuid4().hex[:8]}",
                target=rng.choices(TARGETS, TARGET_WEIGHTS)[0],
                amount=rng.randrange(*self.amounts, 100),
                plan=rng.randrange(len(business.plans)),
            )
            task = asyncio.create_task(self._run(flow))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, flow: Awaitable[Outcome]) -> None:
        try:
            self.outcomes.append(await flow)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self._room.release()

    async def drain(self, *, seconds: float) -> None:
        """Start no more flows; wait for the running ones to finish."""
        self._stopping.set()
        if self._spawner is not None:
            self._room.release()  # wake the spawner if it waits for room
            await asyncio.wait_for(self._spawner, seconds)
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*self._tasks), seconds)


async def until(condition: Callable[[], bool], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:.0f} s")
        await asyncio.sleep(0.01)
