"""The spec check's two webhook allowances are as narrow as documented: Fundline's three
object types join ``WebhookObjectType`` and nothing else does, and the replay addition is
checked against Monite's ``WebhookDeliveryResource``."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.spec import FUNDLINE_OBJECT_TYPES, SpecViolation, check_response, check_schema

BASE = "http://fundline.test"
SUBSCRIPTION_PATH = f"/v1/webhook_subscriptions/{uuid.uuid4()}"
REPLAY_PATH = f"/v1/webhook_deliveries/{uuid.uuid4()}/replay"


def response(method: str, path: str, status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request(method, BASE + path))


def subscription(object_type: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_types": [],
        "object_type": object_type,
        "status": "enabled",
        "url": "https://hooks.partner.example/",
    }


def delivery(**overrides: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "requests_made_count": 0,
        "url": "https://hooks.partner.example/",
        **overrides,
    }


@pytest.mark.parametrize("object_type", [*FUNDLINE_OBJECT_TYPES, "receivable", "payable.line_item"])
def test_monites_and_fundlines_object_types_pass(object_type: str) -> None:
    check_response(response("GET", SUBSCRIPTION_PATH, 200, subscription(object_type)))


@pytest.mark.parametrize("object_type", ["financing", "financing_request", "invoice", ""])
def test_any_other_object_type_fails(object_type: str) -> None:
    with pytest.raises(SpecViolation, match="object_type"):
        check_response(response("GET", SUBSCRIPTION_PATH, 200, subscription(object_type)))


def test_a_replay_is_checked_as_a_delivery() -> None:
    check_response(response("POST", REPLAY_PATH, 201, delivery()))
    with pytest.raises(SpecViolation, match="Additional properties"):
        check_response(response("POST", REPLAY_PATH, 201, delivery(status="pending")))
    with pytest.raises(SpecViolation, match="status not declared"):
        check_response(response("POST", REPLAY_PATH, 200, delivery()))
    with pytest.raises(SpecViolation, match="error"):
        check_response(response("POST", REPLAY_PATH, 409, {"message": "disabled"}))


def test_a_webhook_body_is_checked_by_name() -> None:
    body = {
        "id": str(uuid.uuid4()),
        "action": "financing_offer.created",
        "api_version": "2024-05-25",
        "description": "financing_offer_created",
        "entity_id": str(uuid.uuid4()),
        "object_type": "financing_offer",
        "webhook_subscription_id": str(uuid.uuid4()),
    }
    check_schema("EventResourceForWebhookClient", body)
    with pytest.raises(SpecViolation, match="webhook_subscription_id"):
        check_schema(
            "EventResourceForWebhookClient",
            {k: v for k, v in body.items() if k != "webhook_subscription_id"},
        )
