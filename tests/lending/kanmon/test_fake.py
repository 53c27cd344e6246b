"""The fake Kanmon: it checks what it is sent against Kanmon's spec, answers what the spec says
(checked here again, by a validator of the tests' own: openapi-schema-validator's OAS 3.0 one,
not the fake's conversion), keeps its state through a whole financing story, plays each failure,
and serves over loopback as ``fundline dev fake-kanmon``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

import fundline
from fundline.lending.kanmon import fake_spec
from fundline.lending.kanmon.fake import FakeKanmon, FakeKanmonBug
from fundline.lending.kanmon.fake_spec import SPEC_FILE, KanmonError
from fundline.lending.kanmon.fake_state import Call
from tests.support.live import FUNDLINE, free_port

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
API = "/api/platform/v2"
KEY = {"Authorization": "ApiKey test-key"}

# --- the tests' own check of every answer -------------------------------------------------------

SPEC: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
URI = "urn:test:kanmon"
REGISTRY: Registry[Any] = Registry().with_resource(
    URI, Resource.from_contents(SPEC, default_specification=DRAFT4)
)
# Answers the fake gives beyond what an operation lists (fake_spec.EXTRA_ERRORS, reviewed here).
EXTENDED = {
    ("createEmbeddedSession", 409): "BusinessHasNoAccountsPayableFinancingProductException",
    ("financeInvoice", 400): "BadRequestException",
}


def _nullable_all_of(
    validator: Any, all_of: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # Kanmon writes a nullable object as {"allOf": [ref], "nullable": true}, and requires some
    # (User.address): OAS 3.0.3 would refuse their null, which the spec plainly means to allow.
    if instance is None and schema.get("nullable") is True:
        return
    yield from OAS30Validator.VALIDATORS["allOf"](validator, all_of, instance, schema)


# jsonschema's stubs leave extend() unannotated.
KanmonValidator = extend(OAS30Validator, {"allOf": _nullable_all_of})  # type: ignore[no-untyped-call]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _operation(method: str, path: str) -> tuple[str, str, dict[str, Any]] | None:
    for template, methods in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in methods:
            return template, methods[method.lower()]["operationId"], methods[method.lower()]
    return None


def spec_errors(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with an answer, by Kanmon's spec read without the fake's help."""
    found = _operation(method, path)
    if found is None:
        return [] if status == 404 else [f"{method} {path}: not in the spec, answered {status}"]
    template, operation_id, op = found
    if status == 429:  # the spec declares none; the fake answers in Kanmon's error shape
        shaped = set(body) == {"errorCode", "message", "timestamp"}
        return [] if shaped else [f"429 body not in Kanmon's error shape: {body}"]
    extra = EXTENDED.get((operation_id, status))
    if extra is not None and body.get("errorCode") == extra:
        pointer = f"/components/schemas/{extra}"
    elif str(status) in op["responses"]:
        pointer = "/" + "/".join(
            _escape(p)
            for p in ("paths", template, method.lower(), "responses", str(status), "content")
        )
        pointer += "/application~1json/schema"
    else:
        return [f"{operation_id} declares no {status}"]
    validator = KanmonValidator({"$ref": f"{URI}#{pointer}"}, registry=REGISTRY)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


async def conforms(response: httpx.Response) -> None:
    """An event hook: every Kanmon answer the tests get is checked."""
    if response.request.url.path.startswith("/_fake"):
        return
    await response.aread()
    body = response.json()
    errors = spec_errors(
        response.request.method, response.request.url.path, response.status_code, body
    )
    assert not errors, f"{response.request.method} {response.request.url.path}: {errors}"


# --- fixtures and makers ------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeKanmon:
    return FakeKanmon(now=lambda: NOW)


@pytest.fixture
async def kanmon(fake: FakeKanmon) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=fake.transport(),
        base_url="http://kanmon.test",
        headers=KEY,
        event_hooks={"response": [conforms]},
    ) as client:
        yield client


def session_invoice(platform_id: str = "inv-1", **overrides: Any) -> dict[str, Any]:
    invoice: dict[str, Any] = {
        "platformInvoiceId": platform_id,
        "platformInvoiceNumber": f"INV-{platform_id}",
        "invoiceAmountCents": 100_000,
        "invoiceDueDate": "2026-04-30",
        "invoiceIssuedDate": "2026-03-01",
        "payorType": "BUSINESS",
        "payorBusinessName": "Globex Corp",
        "payorEmail": "ap@globex.example",
        "description": "Widgets",
    }
    invoice.update(overrides)
    return invoice


async def business(kanmon: httpx.AsyncClient, platform_id: str = "biz-1") -> dict[str, Any]:
    response = await kanmon.post(f"{API}/businesses", json={"platformBusinessId": platform_id})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def financed_business(
    fake: FakeKanmon, kanmon: httpx.AsyncClient, *, limit: int = 1_000_000, **offer: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A business onboarded, with an invoice-financing product issued."""
    made = await business(kanmon)
    fake.onboard_business(made["id"])
    product = fake.issue_offer(
        fake.extend_offer(made["id"], total_limit_cents=limit, **offer)["id"]
    )
    return made, product


async def session(
    kanmon: httpx.AsyncClient, *invoices: dict[str, Any], flow: str = "SESSION_INVOICE_FLOW"
) -> httpx.Response:
    body = {
        "platformBusinessId": "biz-1",
        "data": {"component": flow, "invoices": list(invoices or [session_invoice()])},
    }
    return await kanmon.post(f"{API}/embedded-session", json=body)


# --- checked requests ---------------------------------------------------------------------------


async def test_a_bad_body_is_a_400_and_a_recorded_violation(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    response = await kanmon.post(f"{API}/businesses", json={"platformBusinessID": "typo"})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "BadRequestException"
    messages = [v.message for v in fake.violations()]
    assert any("'platformBusinessId' is a required property" in m for m in messages)
    assert any("'platformBusinessID' was unexpected" in m for m in messages)
    assert {v.kind for v in fake.violations()} == {"request"}
    assert fake.businesses == {}
    (logged,) = fake.requests
    assert (logged.method, logged.path, logged.status) == ("POST", f"{API}/businesses", 400)
    assert logged.body == {"platformBusinessID": "typo"}


async def test_queries_are_coerced_then_checked(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    await business(kanmon)
    assert (await kanmon.get(f"{API}/businesses", params={"limit": "1"})).status_code == 200
    assert fake.violations() == []
    bad: list[Any] = [
        {"limit": "many"},
        {"platformBusinessId": "biz-1"},  # the parameter is platformBusinessIds
        [("ids", "a"), ("ids", "b")],  # Kanmon takes a comma list, not repeats
    ]
    for params in bad:
        response = await kanmon.get(f"{API}/businesses", params=params)
        assert response.status_code == 400, params
    messages = [v.message for v in fake.violations()]
    assert messages == [
        "query.limit: 'many' is not of type 'number'",
        "query.platformBusinessId: not a parameter of getAllBusinesses",
        "query.ids: repeated (Kanmon takes one value, a comma list)",
    ]
    response = await kanmon.get(f"{API}/businesses/biz-1", params={"idType": "SOMETIMES"})
    assert response.status_code == 400


async def test_the_api_key_is_required(fake: FakeKanmon, kanmon: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer x"}):
        response = await kanmon.get(f"{API}/offers", headers=headers)
        assert response.status_code == 403
        assert response.json()["errorCode"] == "ForbiddenException"
    assert [v.message for v in fake.violations()] == ["Authorization: not 'ApiKey <key>'"] * 2

    picky = FakeKanmon(api_keys=["right"])
    async with httpx.AsyncClient(transport=picky.transport(), base_url="http://k") as client:
        wrong = await client.get(f"{API}/offers", headers={"Authorization": "ApiKey wrong"})
        right = await client.get(f"{API}/offers", headers={"Authorization": "ApiKey right"})
    assert (wrong.status_code, right.status_code) == (403, 200)
    assert picky.violations() == []  # a wrong key is a fair request, refused


async def test_an_unknown_operation_is_a_404_and_a_violation(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    assert (await kanmon.get(f"{API}/loans")).status_code == 404
    assert (await kanmon.delete(f"{API}/offers")).status_code == 404
    assert [v.operation_id for v in fake.violations()] == [None, None]
    assert "not an operation of Kanmon's spec" in fake.violations()[0].message


# --- answers and state --------------------------------------------------------------------------


async def test_a_whole_financing_story(fake: FakeKanmon, kanmon: httpx.AsyncClient) -> None:
    made = await business(kanmon)
    user = await kanmon.post(
        f"{API}/users",
        json={
            "platformUserId": "user-1",
            "platformBusinessId": "biz-1",
            "email": "owner@acme.example",
            "firstName": "Ada",
            "roles": ["PRIMARY_OWNER"],
        },
    )
    assert user.status_code == 201
    assert user.json()["businessId"] == made["id"]
    token = await kanmon.post(f"{API}/connect-tokens", json={"platformUserId": "user-1"})
    assert token.status_code == 201
    assert fake.connect_tokens[token.json()["connectToken"]] == user.json()["id"]

    onboarded = fake.onboard_business(made["id"], name="Acme Supplies LLC", ein="12-3456789")
    assert onboarded["address"]["state"] == "TX"
    assert (await kanmon.get(f"{API}/businesses/{made['id']}")).json()["name"] == (
        "Acme Supplies LLC"
    )
    offer = fake.extend_offer(made["id"], total_limit_cents=500_000)
    listed = (await kanmon.get(f"{API}/offers", params={"platformBusinessIds": "biz-1"})).json()
    assert [o["id"] for o in listed["offers"]] == [offer["id"]]
    assert fake.select_offer(offer["id"])["selectedAt"] == "2026-03-02T10:00:00.000Z"
    product = fake.issue_offer(offer["id"])
    got = (await kanmon.get(f"{API}/issued-products/{product['id']}")).json()
    assert got["loanStatus"] == "CURRENT"
    assert got["servicingData"]["availableLimitCents"] == 500_000

    created = await session(kanmon, session_invoice("inv-1"), session_invoice("inv-2"))
    assert created.status_code == 201
    session_token = created.json()["sessionToken"]
    assert [i["platformInvoiceId"] for i in fake.sessions[session_token]["invoices"]] == [
        "inv-1",
        "inv-2",
    ]
    (invoice,) = fake.submit_session(session_token, [{"platformInvoiceId": "inv-1"}])
    # 90 % of 1,000.00 at 2.5 %: the fake's arithmetic (fake_terms.py).
    assert {k: invoice[k] for k in invoice if k.endswith("Cents") or k == "status"} == {
        "invoiceAmountCents": 100_000,
        "amountRequestedForFinancingCents": 90_000,
        "feeAmountCents": 2_250,
        "principalAmountCents": 87_750,
        "invoiceAdvanceAmountCents": 87_750,
        "repaymentAmountCents": 90_000,
        "status": "INVOICE_CREATED",
    }
    assert invoice["repaymentSchedule"] == {
        "schedule": [
            {
                "repaymentDate": "2026-05-01",
                "repaymentAmountCents": 90_000,
                "repaymentFeeAmountCents": 2_250,
                "repaymentPrincipalAmountCents": 87_750,
            }
        ]
    }
    limit = f"{API}/issued-products/{product['id']}"
    assert (await kanmon.get(limit)).json()["servicingData"]["availableLimitCents"] == 410_000

    fake.set_invoice_status(invoice["id"], "INVOICE_FUNDED")
    funded = await kanmon.get(f"{API}/invoices", params={"statuses": "INVOICE_FUNDED,LATE"})
    assert [i["id"] for i in funded.json()["invoices"]] == [invoice["id"]]
    by_platform = await kanmon.get(f"{API}/invoices/inv-1", params={"idType": "PLATFORM"})
    assert by_platform.json()["status"] == "INVOICE_FUNDED"
    fake.set_invoice_status(invoice["id"], "INVOICE_PAID_IN_FULL")
    assert (await kanmon.get(limit)).json()["servicingData"]["availableLimitCents"] == 500_000
    (second,) = fake.submit_session(session_token)  # the rest: inv-2
    assert second["platformInvoiceId"] == "inv-2"
    assert fake.violations() == []


async def test_each_played_operation_answers_its_success(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    """Every operation the fake plays, answered 2xx once (and checked by the hook)."""
    made, product = await financed_business(fake, kanmon)
    offer_id = product["offerId"]
    plan_id = product["servicingData"]["pricingPlans"][0]["id"]
    user = {
        "platformUserId": "u-1",
        "businessId": made["id"],
        "address": fake.onboard_business(made["id"])["address"],
    }
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{API}/businesses/{made['id']}", {}),
        ("GET", f"{API}/businesses", {"params": {"ids": made["id"]}}),
        (
            "PATCH",
            f"{API}/businesses/biz-1",
            {"params": {"idType": "PLATFORM"}, "json": {"website": "https://acme.example"}},
        ),
        ("POST", f"{API}/users", {"json": user}),
        ("GET", f"{API}/users/u-1", {"params": {"idType": "PLATFORM"}}),
        ("GET", f"{API}/users", {"params": {"platformBusinessIds": "biz-1"}}),
        ("POST", f"{API}/connect-tokens", {"json": {"platformUserId": "u-1"}}),
        (
            "POST",
            f"{API}/embedded-session",
            {
                "json": {
                    "businessId": made["id"],
                    "data": {"component": "SESSION_INVOICE_FLOW", "invoices": [session_invoice()]},
                }
            },
        ),
        ("GET", f"{API}/offers/{offer_id}", {}),
        ("GET", f"{API}/offers", {"params": {"businessIds": made["id"]}}),
        ("GET", f"{API}/issued-products", {"params": {"offerIds": offer_id}}),
        ("GET", f"{API}/issued-products/{product['id']}", {}),
        (
            "POST",
            f"{API}/invoices/finance",
            {
                "json": {
                    **session_invoice("inv-2"),
                    "issuedProductId": product["id"],
                    "invoicePaymentPlanId": plan_id,
                    "amountRequestedForFinancingCents": 10_000,
                }
            },
        ),
        ("GET", f"{API}/invoices", {"params": {"platformInvoiceIds": "inv-2"}}),
    ]
    for method, path, options in calls:
        response = await kanmon.request(method, path, **options)
        assert response.is_success, (method, path, response.text)
    (invoice_id,) = fake.invoices
    assert (await kanmon.get(f"{API}/invoices/{invoice_id}")).status_code == 200
    answered = {r.operation_id for r in fake.requests if r.status is not None and r.status < 300}
    assert answered == set(fake.operations())
    assert fake.businesses[made["id"]]["website"] == "https://acme.example"
    assert fake.violations() == []


async def test_every_played_list_filters_and_paginates(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    for n in range(3):
        await business(kanmon, f"biz-{n}")
    page = (await kanmon.get(f"{API}/businesses", params={"offset": 1, "limit": 1})).json()
    assert page["pagination"] == {"limit": 1, "offset": 1, "totalCount": 3}
    assert [b["platformBusinessId"] for b in page["businesses"]] == ["biz-1"]
    wanted = await kanmon.get(f"{API}/businesses", params={"platformBusinessIds": "biz-0,biz-2"})
    assert wanted.json()["pagination"]["totalCount"] == 2
    window = {"createdAtStart": "2026-03-02T09:00:00Z", "createdAtEnd": "2026-03-02T09:59:59Z"}
    assert (await kanmon.get(f"{API}/businesses", params=window)).json()["businesses"] == []
    assert (await kanmon.get(f"{API}/businesses", params={"limit": 500})).json()["pagination"][
        "limit"
    ] == 100
    for path in ("users", "offers", "issued-products", "invoices"):
        listed = await kanmon.get(f"{API}/{path}", params={"businessIds": "none", "limit": 5})
        assert listed.json()["pagination"] == {"limit": 5, "offset": 0, "totalCount": 0}


async def test_kanmons_own_errors(fake: FakeKanmon, kanmon: httpx.AsyncClient) -> None:
    await business(kanmon)
    again = await kanmon.post(f"{API}/businesses", json={"platformBusinessId": "biz-1"})
    assert (again.status_code, again.json()["errorCode"]) == (409, "BusinessAlreadyExistsException")
    user = {"platformUserId": "u-1", "platformBusinessId": "biz-1"}
    assert (await kanmon.post(f"{API}/users", json=user)).status_code == 201
    twice = await kanmon.post(f"{API}/users", json=user)
    assert (twice.status_code, twice.json()["errorCode"]) == (
        409,
        "UserAlreadyExistsWithPlatformUserIdException",
    )
    missing = {
        f"{API}/businesses/nope": "BusinessNotFoundException",
        f"{API}/users/nope": "UserNotFoundException",
        f"{API}/offers/nope": "OfferNotFoundException",
        f"{API}/issued-products/nope": "IssuedProductNotFoundException",
        f"{API}/invoices/nope": "InvoiceNotFoundException",
    }
    for path, code in missing.items():
        response = await kanmon.get(path)
        assert (response.status_code, response.json()["errorCode"]) == (404, code)
    token = await kanmon.post(f"{API}/connect-tokens", json={"userId": "nope"})
    assert (token.status_code, token.json()["errorCode"]) == (404, "UserNotFoundException")
    orphan = await kanmon.post(
        f"{API}/users", json={"platformUserId": "u-2", "platformBusinessId": "nope"}
    )
    assert orphan.json()["errorCode"] == "BusinessNotFoundException"
    assert fake.violations() == []


@pytest.mark.parametrize(
    ("flow", "code"),
    [
        ("SESSION_INVOICE_FLOW", "BusinessHasNoInvoiceFinancingProductException"),
        (
            "SESSION_ACCOUNTS_PAYABLE_INVOICE_FLOW",
            "BusinessHasNoAccountsPayableFinancingProductException",
        ),
    ],
)
async def test_a_session_needs_its_flows_product(
    fake: FakeKanmon, kanmon: httpx.AsyncClient, flow: str, code: str
) -> None:
    made = await business(kanmon)
    invoice = session_invoice()
    if flow.startswith("SESSION_ACCOUNTS_PAYABLE"):
        invoice = {k.replace("payor", "payee"): v for k, v in invoice.items()}
        del invoice["invoiceIssuedDate"]
    response = await session(kanmon, invoice, flow=flow)
    assert (response.status_code, response.json()["errorCode"]) == (409, code)
    product = "ACCOUNTS_PAYABLE_FINANCING" if "PAYABLE" in flow else "INVOICE_FINANCING"
    fake.issue_offer(fake.extend_offer(made["id"], total_limit_cents=1, product_type=product)["id"])
    assert (await session(kanmon, invoice, flow=flow)).status_code == 201


async def test_a_due_date_under_7_days_ahead_is_refused(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    _, product = await financed_business(fake, kanmon)
    body = {
        **session_invoice("inv-9", invoiceDueDate="2026-03-08"),
        "issuedProductId": product["id"],
        "invoicePaymentPlanId": product["servicingData"]["pricingPlans"][0]["id"],
        "amountRequestedForFinancingCents": 50_000,
    }
    response = await kanmon.post(f"{API}/invoices/finance", json=body)
    assert (response.status_code, response.json()["errorCode"]) == (
        400,
        "InvalidInvoiceDueDateException",
    )
    body["invoiceDueDate"] = "2026-03-09"  # 7 days ahead: accepted
    assert (await kanmon.post(f"{API}/invoices/finance", json=body)).status_code == 201

    token = (await session(kanmon, session_invoice(invoiceDueDate="2026-03-03"))).json()
    with pytest.raises(KanmonError, match="invoiceDueDate 2026-03-03") as refused:
        fake.submit_session(token["sessionToken"])
    assert (refused.value.status, refused.value.code) == (400, "InvalidInvoiceDueDateException")


async def test_a_short_limit_refuses_the_whole_submission(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    _, product = await financed_business(fake, kanmon, limit=150_000)
    token = (await session(kanmon, session_invoice("a"), session_invoice("b"))).json()
    with pytest.raises(KanmonError, match="180000 cents asked, 150000 available") as refused:
        fake.submit_session(token["sessionToken"])
    assert (refused.value.status, refused.value.code) == (409, "InsufficientCreditLimitException")
    assert fake.invoices == {}
    one = [{"platformInvoiceId": "a", "amountRequestedForFinancingCents": 60_000}]
    (invoice,) = fake.submit_session(token["sessionToken"], one)
    assert fake.issued_products[product["id"]]["servicingData"]["availableLimitCents"] == 90_000
    fake.set_invoice_status(invoice["id"], "REJECTED")
    fake.set_invoice_status(invoice["id"], "IN_REVIEW")  # back from rejected: drawn again
    assert fake.issued_products[product["id"]]["servicingData"]["availableLimitCents"] == 90_000


async def test_schedules_follow_the_repayment_window(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    plans = [
        {
            "advanceRatePercentage": 80,
            "transactionFeePercentage": 3,
            "repaymentWindow": {
                "repaymentType": "MULTIPLE_DURATION",
                "repaymentSchedule": {
                    "schedule": [
                        {"repaymentDurationDays": 30, "repaymentPercentage": 50},
                        {"repaymentDurationDays": 60, "repaymentPercentage": 50},
                    ]
                },
            },
        },
        {
            "advanceRatePercentage": 90,
            "transactionFeePercentage": 2,
            "repaymentWindow": {"repaymentType": "FIXED_DATE", "monthlyRepaymentDay": 31},
        },
    ]
    _, product = await financed_business(fake, kanmon, pricing_plans=plans)
    multiple, fixed = (p["id"] for p in product["servicingData"]["pricingPlans"])
    token = (
        await session(
            kanmon,
            session_invoice("m", invoiceAmountCents=100_001),
            session_invoice("f", invoiceDueDate="2026-04-15"),
        )
    ).json()["sessionToken"]
    first, second = fake.submit_session(
        token,
        [
            {"platformInvoiceId": "m", "pricingPlanId": multiple},
            {"platformInvoiceId": "f", "pricingPlanId": fixed},
        ],
    )
    # 80 % of 1,000.01 is 800.008, half-even 800.01; 3 % fee 24.00; principal 776.01 in halves.
    assert (first["amountRequestedForFinancingCents"], first["feeAmountCents"]) == (80_001, 2_400)
    assert [
        (i["repaymentDate"], i["repaymentPrincipalAmountCents"], i["repaymentFeeAmountCents"])
        for i in first["repaymentSchedule"]["schedule"]
    ] == [("2026-04-01", 38_800, 1_200), ("2026-05-01", 38_801, 1_200)]
    # The first 31st (April's last day) on or after the due date.
    assert second["repaymentSchedule"]["schedule"][0]["repaymentDate"] == "2026-04-30"


async def test_the_fakes_extra_errors_are_the_reviewed_ones() -> None:
    assert {(op, int(status)): code for (op, status), code in fake_spec.EXTRA_ERRORS.items()} == (
        EXTENDED
    )


# --- failures -----------------------------------------------------------------------------------


async def test_429_says_when_to_retry(fake: FakeKanmon, kanmon: httpx.AsyncClient) -> None:
    fake.fail("429", count=1, seconds=2.5)
    limited = await kanmon.get(f"{API}/offers")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) >= int(time.time()) + 2
    assert (await kanmon.get(f"{API}/offers")).status_code == 200


async def test_500_for_one_operation_until_cleared(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    fake.fail("500", operation_id="createBusiness")
    for n in range(2):
        failed = await kanmon.post(f"{API}/businesses", json={"platformBusinessId": f"b{n}"})
        assert failed.json()["errorCode"] == "InternalServerErrorException"
    assert (await kanmon.get(f"{API}/businesses")).status_code == 200
    assert fake.businesses == {}
    fake.clear_failures()
    assert (await kanmon.post(f"{API}/businesses", json={"platformBusinessId": "b"})).is_success


async def test_slow_answers_late_after_changing_the_state(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    fake.fail("slow", count=2, seconds=0.3)
    with pytest.raises(httpx.ReadTimeout):
        await kanmon.post(f"{API}/businesses", json={"platformBusinessId": "b"}, timeout=0.05)
    assert len(fake.businesses) == 1  # handled, then the answer was lost
    started = time.monotonic()
    assert (await kanmon.get(f"{API}/businesses")).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert fake.failures == []


async def test_down_refuses_to_connect(fake: FakeKanmon, kanmon: httpx.AsyncClient) -> None:
    fake.fail("down", count=1, operation_id="getAllOffers")
    assert (await kanmon.get(f"{API}/businesses")).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await kanmon.get(f"{API}/offers")
    assert fake.requests[-1].status is None
    assert (await kanmon.get(f"{API}/offers")).status_code == 200


async def test_an_answer_outside_the_spec_is_the_fakes_bug() -> None:
    class Broken(FakeKanmon):
        def get_all_offers(self, call: Call) -> tuple[int, Any]:
            return 200, {"offers": []}  # no pagination

    broken = Broken()
    async with httpx.AsyncClient(transport=broken.transport(), base_url="http://k") as client:
        with pytest.raises(FakeKanmonBug, match="'pagination' is a required property"):
            await client.get(f"{API}/offers", headers=KEY)
        with pytest.raises(FakeKanmonBug, match="does not play getAllDrawRequests"):
            await client.get(f"{API}/draw-requests", headers=KEY)
    assert [v.kind for v in broken.violations()] == ["response", "unplayed"]

    served = Broken(strict=False)  # as `fundline dev fake-kanmon` runs it: a 500, logged
    async with httpx.AsyncClient(transport=served.transport(), base_url="http://k") as client:
        answer = await client.get(f"{API}/offers", headers=KEY)
    assert answer.status_code == 500
    assert answer.json()["message"].startswith("fake Kanmon bug: ")


# --- the control API ----------------------------------------------------------------------------


async def test_the_control_api_plays_the_widget_over_http(
    fake: FakeKanmon, kanmon: httpx.AsyncClient
) -> None:
    made = await business(kanmon)

    async def control(method: str, path: str, body: Any = None) -> Any:
        response = await kanmon.request(method, f"/_fake{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    assert (await control("POST", f"/businesses/{made['id']}/onboard", {"name": "Acme"}))[
        "name"
    ] == "Acme"
    offer = await control("POST", "/offers", {"businessId": made["id"], "totalLimitCents": 900_000})
    await control("POST", f"/offers/{offer['id']}/select")
    product = await control(
        "POST", f"/offers/{offer['id']}/issue", {"availableLimitCents": 500_000}
    )
    assert product["servicingData"]["availableLimitCents"] == 500_000
    late = await control(
        "POST", f"/issued-products/{product['id']}/loan-status", {"loanStatus": "LATE"}
    )
    assert late["loanStatus"] == "LATE"
    await control(
        "POST", f"/issued-products/{product['id']}/loan-status", {"loanStatus": "CURRENT"}
    )
    await session(kanmon)
    (listed,) = (await control("GET", "/sessions"))["sessions"]
    (invoice,) = (await control("POST", f"/sessions/{listed['sessionToken']}/submit"))["invoices"]
    paid = await control("POST", f"/invoices/{invoice['id']}/status", {"status": "INVOICE_FUNDED"})
    assert paid["status"] == "INVOICE_FUNDED"
    assert (await control("POST", "/failures", {"mode": "500", "count": 1}))["count"] == 1
    assert (await control("DELETE", "/failures")) == {"failures": []}
    logged = (await control("GET", "/requests"))["requests"]
    assert [r["status"] for r in logged] == [201, 201]
    assert (await control("GET", "/violations")) == {"violations": []}

    typo = await kanmon.post("/_fake/offers", json={"businessId": made["id"], "limitCents": 1})
    assert typo.status_code == 400
    assert "unknown fields ['limitCents']" in typo.json()["message"]
    assert (await kanmon.post("/_fake/failures", json={"mode": "flaky"})).status_code == 400
    await control("POST", "/reset")
    assert (fake.businesses, fake.requests) == ({}, [])


# --- served ------------------------------------------------------------------------------------


def test_fundline_dev_fake_kanmon_serves_over_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDLINE_")}
    src = str(Path(fundline.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    log = tmp_path / "fake-kanmon.log"
    args = [FUNDLINE, "dev", "fake-kanmon", "--port", str(port), "--api-key", "dev-key"]
    with log.open("wb") as out:
        server = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"Authorization": "ApiKey dev-key"}) as client:
            deadline = time.monotonic() + 20
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    client.get("/_fake/requests")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "fake Kanmon did not come up"
                    time.sleep(0.05)
            created = client.post(f"{API}/businesses", json={"platformBusinessId": "biz-1"})
            assert created.status_code == 201
            assert errors_of(created) == []
            assert (
                client.get(f"{API}/offers", headers={"Authorization": "ApiKey no"}).status_code
                == 403
            )
            client.post("/_fake/failures", json={"mode": "down", "count": 1})
            with pytest.raises(httpx.TransportError):  # the connection closed, no answer
                client.get(f"{API}/businesses")
            listed = client.get(f"{API}/businesses")
            assert listed.json()["pagination"]["totalCount"] == 1
            logged = client.get("/_fake/requests").json()["requests"]
            assert [r["status"] for r in logged] == [201, 403, None, 200]
    finally:
        server.terminate()
        server.wait(timeout=10)
    output = log.read_text()
    assert output.splitlines()[0] == (
        f"Fake Kanmon listening on {url} (control API: {url}/_fake/); point Fundline at it with "
        f"FUNDLINE_LENDER=kanmon FUNDLINE_KANMON_BASE_URL={url} FUNDLINE_KANMON_API_KEY=dev-key"
    )
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output


def errors_of(response: httpx.Response) -> list[str]:
    return spec_errors(
        response.request.method, response.request.url.path, response.status_code, response.json()
    )
