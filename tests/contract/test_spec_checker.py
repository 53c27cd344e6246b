"""The spec check every test client runs can fail: hand-made responses that break Monite's
contract raise ``SpecViolation``; conforming ones pass."""

from __future__ import annotations

import json
import runpy
import uuid
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.apps import make_client
from tests.support.spec import KEPT_SPEC, SpecViolation, check_response

# Kanmon's is package data, where the fake Kanmon reads it at run time.
KANMON_SPEC = resources.files("fundline.lending.kanmon") / "kanmon-openapi.json"
ENTITY_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
BASE = "http://fundline.test"


def entity_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ENTITY_ID,
        "created_at": "2024-05-25T10:00:00Z",
        "updated_at": "2024-05-25T10:00:00Z",
        "type": "organization",
        "status": "active",
        "email": "finance@acme.example",
        "address": {
            "line1": "100 Congress Ave",
            "city": "Austin",
            "postal_code": "78701",
            "country": "US",
        },
        "organization": {"legal_name": "Acme Supplies LLC"},
    }
    body.update(overrides)
    return body


def response(
    method: str,
    path: str,
    status: int,
    body: Any = None,
    *,
    content: bytes | None = None,
) -> httpx.Response:
    request = httpx.Request(method, BASE + path)
    if content is not None:
        return httpx.Response(status, content=content, request=request)
    return httpx.Response(status, json=body, request=request)


ENTITY_PATH = f"/v1/entities/{ENTITY_ID}"
USER_PATH = f"/v1/entity_users/{uuid.uuid4()}"


CONFORMING = [
    pytest.param(response("GET", ENTITY_PATH, 200, entity_body()), id="entity"),
    pytest.param(
        response("GET", ENTITY_PATH, 200, entity_body(email=None)), id="entity-null-email"
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 401, {"error": {"message": "Invalid access token"}}),
        id="undeclared-401-error-shape",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 404, {"error": {"message": "Entity not found"}}),
        id="undeclared-404-error-shape",
    ),
    pytest.param(
        response("POST", "/v1/auth/token", 401, {"error": {"message": "Invalid credentials"}}),
        id="declared-401",
    ),
    pytest.param(
        response(
            "GET",
            ENTITY_PATH,
            422,
            {"detail": [{"loc": ["header", "x-monite-version"], "msg": "bad", "type": "t"}]},
        ),
        id="validation-422",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 429, {"message": "API rate limit exceeded"}), id="429"
    ),
    pytest.param(response("DELETE", USER_PATH, 204, content=b""), id="204-no-body"),
    pytest.param(response("GET", "/v1/no_such_path", 404, {"error": {"message": "Not Found"}})),
    pytest.param(response("GET", "/health", 200, {"anything": "goes"}), id="not-v1"),
    pytest.param(response("GET", "/v1x/entities", 200, [1, 2]), id="not-v1-prefix"),
]

VIOLATIONS = [
    pytest.param(
        response(
            "GET", ENTITY_PATH, 200, {k: v for k, v in entity_body().items() if k != "status"}
        ),
        "status",
        id="entity-missing-status",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 200, entity_body(status="pending")),
        "pending",
        id="entity-status-not-in-enum",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 200, entity_body(id="not-a-uuid")),
        "uuid",
        id="entity-id-not-a-uuid",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 200, entity_body(created_at="yesterday")),
        "date-time",
        id="entity-bad-timestamp",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 200, entity_body(organization={})),
        "legal_name",
        id="entity-organization-without-legal-name",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 401, {"detail": "Not authenticated"}),
        "error",
        id="undeclared-401-without-error-shape",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 404, {"error": {"msg": "Entity not found"}}),
        "message",
        id="404-error-without-message",
    ),
    pytest.param(
        response("POST", "/v1/auth/token", 401, {"message": "Invalid credentials"}),
        "error",
        id="declared-401-wrong-shape",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 201, entity_body()),
        "not declared",
        id="2xx-not-declared",
    ),
    pytest.param(
        response("POST", "/v1/entities", 200, entity_body()),
        "not declared",
        id="create-answering-200-not-201",
    ),
    pytest.param(
        response("GET", "/v1/no_such_path", 200, {}),
        "not declared",
        id="unknown-operation-2xx",
    ),
    pytest.param(
        response("DELETE", USER_PATH, 204, content=b'{"deleted": true}'),
        "no body",
        id="204-with-body",
    ),
    pytest.param(
        response("GET", "/v1/no_such_path", 422, {}), "detail", id="undeclared-422-without-detail"
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 422, {"detail": [{"loc": ["query"], "type": "t"}]}),
        "msg",
        id="422-item-without-msg",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 429, {"error": {"message": "slow down"}}),
        "message",
        id="429-wrong-shape",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 429, {"message": "Too many requests"}),
        "API rate limit exceeded",
        id="429-wrong-message",
    ),
    pytest.param(
        response("GET", ENTITY_PATH, 500, {"detail": "Traceback ..."}),
        "error",
        id="500-leaking-detail",
    ),
]


@pytest.mark.parametrize("conforming", CONFORMING)
def test_conforming_response_passes(conforming: httpx.Response) -> None:
    check_response(conforming)


@pytest.mark.parametrize(("violating", "mentioned"), VIOLATIONS)
def test_violation_is_raised(violating: httpx.Response, mentioned: str) -> None:
    with pytest.raises(SpecViolation) as caught:
        check_response(violating)
    message = str(caught.value)
    assert mentioned in message
    request = violating.request
    assert message.startswith(f"{request.method} {request.url.path} → {violating.status_code}")


async def test_the_test_client_fails_on_a_violation() -> None:
    """The fixture's client runs the check on every response, not only when asked."""
    rogue = FastAPI()

    @rogue.get("/v1/entities/{entity_id}")
    async def get_entity(entity_id: str) -> dict[str, str]:
        return {"id": entity_id, "type": "organization"}

    async with make_client(rogue) as client:
        with pytest.raises(SpecViolation, match="'status' is a required property"):
            await client.get(ENTITY_PATH)
        # Outside /v1 nothing is checked.
        rogue.add_api_route("/plain", get_entity)
        assert (await client.get("/plain", params={"entity_id": "x"})).status_code == 200


def _refresh_spec(repo_root: Path) -> dict[str, Any]:
    """The names ``scripts/refresh-spec`` defines (it is a script, not a module)."""
    return runpy.run_path(str(repo_root / "scripts/refresh-spec"))


def test_the_script_keeps_facts_and_drops_prose(repo_root: Path) -> None:
    facts = _refresh_spec(repo_root)["facts"]
    schema = {
        "type": "object",
        "description": "A line of an invoice.",
        "example": {"description": "Widgets"},
        "required": ["description", "quantity"],
        "properties": {
            "description": {"type": "string", "description": "What was sold.", "maxLength": 9},
            "quantity": {"type": "integer", "minimum": 1, "examples": [3]},
        },
    }
    assert facts(schema) == {
        "type": "object",
        "required": ["description", "quantity"],
        "properties": {
            "description": {"type": "string", "maxLength": 9},
            "quantity": {"type": "integer", "minimum": 1},
        },
    }


@pytest.mark.parametrize("kept", [KEPT_SPEC, KANMON_SPEC], ids=["monite", "kanmon"])
def test_each_kept_spec_names_its_source(kept: Traversable) -> None:
    spec = json.loads(kept.read_text())
    source = spec["info"]["x-fundline-source"]
    assert source["source"]
    assert source["licence"]
    assert "description" not in spec["info"]
