"""Schemathesis against the app in-process: the objects it works on, its configuration, and a
run of its engine reduced to what a test asserts (failures) and reports (figures).

``tests/contract/test_fuzz.py`` runs it seeded and small; ``scripts/fuzz --minutes N`` runs the
same for longer. The app is driven through Schemathesis's ASGI transport, which serves every
application from one event loop of its own: the world is built on the test's loop first, then
the app's connection pool is emptied so that loop's connections are not reused on the other.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import engine
from schemathesis.engine import events
from schemathesis.python import asgi

from fundline.app import create_app
from fundline.webhooks import addresses
from tests.support import spec, tenancy_guard
from tests.support.apps import VERSION, make_client, make_settings
from tests.support.factories import (
    Tenant,
    connect_session,
    create_counterpart,
    create_entity_user,
    create_issued_invoice,
    create_payable,
    invoice_payload,
    make_operator_key,
    make_tenant,
    onboard,
)
from tests.support.webhooks import PUBLIC_ADDRESS, PUBLIC_URL

# Where requests go: Schemathesis's ASGI transport calls its host "testserver".
BASE_URL = "http://testserver"
SEED = int(os.environ.get("FUNDLINE_FUZZ_SEED", "20261201"))
# Set by scripts/fuzz: run each spec for this long instead of the CI's small, fixed budget.
SECONDS = int(os.environ.get("FUNDLINE_FUZZ_SECONDS", "0"))
# Set by scripts/fuzz: where each run appends its figures (one JSON object a line).
REPORT = os.environ.get("FUNDLINE_FUZZ_REPORT")
# The CI budget: examples per operation in the fuzzing phase; stateful scenarios (sequences).
CI_EXAMPLES = 6
CI_STATEFUL_EXAMPLES = 40

CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance")
UNIT_PHASES = ("examples", "coverage", "fuzzing")


@dataclass
class World:
    """A tenant with one object of each kind, and the credentials of every surface."""

    app: FastAPI
    guard: tenancy_guard.Guard
    ids: dict[str, str]  # path parameter name → a real object's id
    issued_receivable_id: str
    spares: dict[str, str]  # path parameter name → an object the DELETE operations may take
    bystander: Tenant  # another partner, whose sandbox the reset operations may wipe
    tokens: dict[str, str]  # security scheme → bearer token


async def _public(host: str, port: int) -> list[str]:
    """Every webhook host resolves to a public address, without DNS."""
    return [PUBLIC_ADDRESS]


async def _objects(app: FastAPI, client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    """One object of each kind the paths name, made through the API as a partner would."""
    user = await create_entity_user(client, tenant)
    counterpart = await create_counterpart(client, tenant)
    payable = await create_payable(client, tenant, status="new")
    issued = await create_issued_invoice(client, tenant, counterpart_id=counterpart["id"])
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart), headers=tenant.headers
    )
    draft = response.json()
    offer = await onboard(client, tenant)
    financing_invoice = await _financing_invoice(client, tenant, issued["id"], offer)
    response = await client.post(
        "/v1/webhook_subscriptions",
        json={"object_type": "receivable", "url": PUBLIC_URL},
        headers=tenant.auth,
    )
    subscription = response.json()
    response = await client.post(
        f"/lender/v1/partners/{tenant.partner_id}/origins",
        json={"origin": "https://app.partner.example"},
        headers={"authorization": f"Bearer {await make_operator_key(app.state.db, 'origins')}"},
    )
    origin = response.json()
    events_page = (await client.get("/v1/events", headers=tenant.headers)).json()
    return {
        "entity_id": tenant.entity_id,
        "entity_user_id": user["id"],
        "counterpart_id": counterpart["id"],
        "payable_id": payable["id"],
        "receivable_id": draft["id"],
        "issued": issued["id"],
        "offer_id": offer["id"],
        "financing_invoice_id": financing_invoice,
        "webhook_subscription_id": subscription["id"],
        "event_id": events_page["data"][0]["id"],
        "partner_id": str(tenant.partner_id),
        "origin_id": origin["id"],
    }


async def _spares(app: FastAPI, client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    """Objects for the DELETE operations, so those leave the others' objects in place."""
    counterpart = await create_counterpart(client, tenant, name="Spare Corp")
    response = await client.post(
        "/v1/receivables", json=invoice_payload(counterpart), headers=tenant.headers
    )
    subscription = await client.post(
        "/v1/webhook_subscriptions",
        json={"object_type": "payable", "url": PUBLIC_URL},
        headers=tenant.auth,
    )
    origin = await client.post(
        f"/lender/v1/partners/{tenant.partner_id}/origins",
        json={"origin": "https://spare.partner.example"},
        headers={"authorization": f"Bearer {await make_operator_key(app.state.db, 'spare')}"},
    )
    return {
        "counterpart_id": counterpart["id"],
        "entity_user_id": (await create_entity_user(client, tenant, login="spare"))["id"],
        "payable_id": (await create_payable(client, tenant, status="new"))["id"],
        "receivable_id": response.json()["id"],
        "webhook_subscription_id": subscription.json()["id"],
        "origin_id": origin.json()["id"],
    }


async def _financing_invoice(
    client: httpx.AsyncClient, tenant: Tenant, invoice_id: str, offer: dict[str, Any]
) -> str:
    """The invoice financed as the Connect widget does it: a request, then a confirmation."""
    response = await client.post(
        "/v1/financing_invoices",
        json={"invoices": [{"id": invoice_id, "type": "receivable"}]},
        headers=tenant.headers,
    )
    headers = await connect_session(client, response.json()["session_token"])
    plan = offer["pricing_plans"][0]["id"]
    response = await client.post(
        "/connect/v1/invoices/confirm",
        json={"invoices": [{"invoice_id": invoice_id, "pricing_plan_id": plan}]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["invoices"][0]["id"])


@asynccontextmanager
async def world(database_url: str) -> AsyncIterator[World]:
    """The app on ``database_url`` with a tenant and its objects; the app is shut down (its
    pools closed on the loop that opened them) when the block ends."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(addresses, "system_resolver", _public)
        app = create_app(make_settings(database_url))
        guard = tenancy_guard.watch(app)
        async with make_client(app) as client:
            tenant = await make_tenant(app, client, name=f"Fuzz {uuid.uuid4().hex[:6]}")
            ids = await _objects(app, client, tenant)
            issued = ids.pop("issued")
            spares = await _spares(app, client, tenant)
            bystander = await make_tenant(app, client, name=f"Bystander {uuid.uuid4().hex[:6]}")
            response = await client.post("/v1/financing_tokens", headers=tenant.headers)
            connect = await connect_session(client, response.json()["connect_token"])
        operator = await make_operator_key(app.state.db)
        await app.state.db.dispose()
        tokens = {
            "HTTPBearer": tenant.token,
            "ConnectSession": connect["authorization"].removeprefix("Bearer "),
            "OperatorKey": operator,
        }
        try:
            yield World(app, guard, ids, issued, spares, bystander, tokens)
        finally:
            asgi.shutdown_lifespans()


# Exclusions: Monite's request schemas of these operations put ``additionalProperties: false``
# beside an ``anyOf`` of branches whose properties it does not list, a contradiction no body
# satisfies, so Schemathesis can generate none ("Schema Error"). Fundline's own document
# describes the same operations without it, and its run fuzzes them.
MONITE_UNGENERATABLE = (
    "POST /counterparts",
    "PATCH /counterparts/{counterpart_id}",
    "POST /receivables",
    "PATCH /receivables/{receivable_id}",
)


def config(
    world: World, *, base_url: str, stateful: bool, skip: tuple[str, ...] = ()
) -> schemathesis.Config:
    """The run's configuration: the surfaces' credentials, the entity and version headers,
    and (for the examples, coverage and fuzzing phases) the ids of real objects, so requests
    reach the handlers rather than stopping at a 401 or a 404. The stateful phase finds its
    ids in the responses instead (links inferred from the schemas), which fixed ids would
    override."""
    parameters: dict[str, Any] = {
        "header.x-monite-entity-id": world.ids["entity_id"],
        "header.x-monite-version": VERSION,
    }
    operations: list[dict[str, Any]] = (
        [{"include-name": list(skip), "enabled": False}] if skip else []
    )
    if not stateful:
        parameters.update({f"path.{name}": value for name, value in world.ids.items()})
        operations += [
            # The payments and the cancel of an invoice need one that is issued.
            {
                "include-path-regex": r"/receivables/\{receivable_id\}/(mark_as_|cancel)",
                "parameters": {"path.receivable_id": world.issued_receivable_id},
            },
            {
                "include-method": "DELETE",
                "parameters": {f"path.{name}": value for name, value in world.spares.items()},
            },
        ]
    operations.append(
        # A sandbox reset wipes its partner's entities: the bystander's, not the world's.
        {
            "include-path-regex": r"^/sandbox/v1/(reset|businesses/)",
            "headers": {"authorization": f"Bearer {world.bystander.token}"},
            "parameters": {"path.entity_id": world.bystander.entity_id},
        }
    )
    budget: dict[str, Any] = {"max-time": SECONDS} if SECONDS else {}
    # Longer runs take more examples of every operation (the fuzzing phase goes operation by
    # operation: a huge count would spend the time on the first), capped by max-time.
    scale = max(1, SECONDS // 15)
    examples, stateful_examples = CI_EXAMPLES * scale, CI_STATEFUL_EXAMPLES * scale
    phases: dict[str, dict[str, Any]] = {name: {"enabled": not stateful} for name in UNIT_PHASES}
    phases["stateful"] = {
        "enabled": stateful,
        "generation": {"max-examples": stateful_examples},
    }
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "parameters": parameters,
            "operations": operations,
            "auth": {"openapi": {name: {"bearer": t} for name, t in world.tokens.items()}},
            "generation": {"max-examples": examples, "database": "none"},
            "phases": {
                **phases,
                # A method the path lacks is a 405 before any handler: one is enough.
                "coverage": {**phases["coverage"], "unexpected-methods": ["TRACE"]},
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "cache": {"enabled": False},
            **budget,
        }
    )


def monite_document() -> dict[str, Any]:
    """Monite's OpenAPI, the operations Fundline serves, with the errors it leaves implied
    written out as ``tests/support/spec.py`` reads them: a status Monite does not declare is
    a 422 in the validation shape, a 429 in its rate-limit shape, or another 4xx with
    Monite's error body; never a 2xx or 5xx it does not declare."""
    document = spec.monite_spec(additions=False)
    for operations in document["paths"].values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation["responses"]
            implied = {
                "422": "#/components/schemas/HTTPValidationError",
                "429": spec.RATE_LIMIT_SCHEMA,
                "4XX": spec.ERROR_SCHEMA,
            }
            for status, schema in implied.items():
                if status not in responses:
                    body = {"$ref": schema} if isinstance(schema, str) else schema
                    responses[status] = {
                        "description": "An error Monite answers without declaring it",
                        "content": {"application/json": {"schema": body}},
                    }
    return document


def _pointer(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links for the stateful phase, by one rule: the object a ``POST`` to a
    collection creates (its ``id``), or the first one a ``GET`` of it lists
    (``data/0/id``), is the ``{…_id}`` of every operation below ``collection/{…_id}``."""
    paths: dict[str, Any] = document["paths"]
    for base, operations in paths.items():
        below = [
            (path, method, path[len(base) + 1 :].split("/", 1)[0][1:-1])
            for path, targets in paths.items()
            if path.startswith(base + "/{")
            for method in targets
            if method in {"get", "post", "put", "patch", "delete"}
        ]
        for source, field_path in (("post", "id"), ("get", "data/0/id")):
            operation = operations.get(source)
            if operation is None or not below:
                continue
            for status, response in operation["responses"].items():
                if status.startswith("2") and "content" in response:
                    response["links"] = {
                        f"{method}{path}".replace("/", "_").replace("{", "").replace("}", ""): {
                            "operationRef": _pointer(path, method),
                            "parameters": {f"path.{name}": f"$response.body#/{field_path}"},
                        }
                        for path, method, name in below
                    }
    return document


def load(world: World, which: str, *, stateful: bool) -> Any:
    """The schema of ``which`` ("fundline": the app's /openapi.json; "monite": Monite's)."""
    if which == "fundline":
        # The document /openapi.json serves, with the links the stateful phase follows.
        document = add_links(copy.deepcopy(world.app.openapi()))
        settings = config(world, base_url=BASE_URL, stateful=stateful)
    else:
        document = add_links(monite_document())
        settings = config(
            world, base_url=f"{BASE_URL}/v1", stateful=stateful, skip=MONITE_UNGENERATABLE
        )
    schema = schemathesis.openapi.from_dict(document, config=settings)
    schema.app = world.app
    return schema


@dataclass
class Outcome:
    """What one engine run found, and its figures."""

    failures: list[str] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # per phase
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def figures(self, **labels: str) -> dict[str, Any]:
        return {
            **labels,
            "operations": len(self.operations),
            "requests": sum(self.requests.values()),
            "requests_per_phase": dict(self.requests),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": len(self.failures),
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
        }

    def report(self) -> str:
        unique = list(dict.fromkeys(self.failures))
        return f"{len(unique)} distinct failures:\n\n" + "\n\n".join(unique[:30])


def run(schema: Any) -> Outcome:
    """Run every enabled phase of ``schema``'s configuration; collect failures and figures."""
    outcome = Outcome()
    started, cpu = time.perf_counter(), time.process_time()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                outcome.requests[event.phase.value] += 1
                if interaction.response is not None:
                    outcome.statuses[interaction.response.status_code] += 1
            for node in recorder.cases.values():
                outcome.operations.add(node.value.operation.label)
            for checks in recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        outcome.failures.append(
                            f"[{event.phase.value}] {failure.operation}: {failure.title}\n"
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            outcome.failures.append(f"error in {event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            outcome.failures.append(f"fatal: {event.exception!r}")
    outcome.seconds = time.perf_counter() - started
    outcome.cpu_seconds = time.process_time() - cpu
    return outcome


def record(figures: dict[str, Any]) -> None:
    """Append ``figures`` to the report file scripts/fuzz reads, when it asked for one."""
    if REPORT:
        with Path(REPORT).open("a") as out:
            out.write(json.dumps(figures) + "\n")
