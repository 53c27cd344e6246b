"""Checks responses against Monite's own OpenAPI: ``tests/contract/monite-openapi-subset.json``,
the schema facts of ``../shared/spec/monite-openapi-subset.json`` (no prose) that
``scripts/refresh-spec`` keeps in the repository, so that a clone with nothing beside it runs
every test (``tests/contract/test_spec_checker.py`` tells when they are stale).
``FUNDLINE_MONITE_SPEC`` names another file to check against.

Where Monite declares a schema for the status, the body must match it. Where it does not (most
401/404/409/429), the body must have Monite's error shape.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# The kept copy: tests/contract/, beside the tests of Monite's contract.
KEPT_SPEC = Path(__file__).resolve().parents[1] / "contract" / "monite-openapi-subset.json"
SPEC_PATH = Path(os.environ.get("FUNDLINE_MONITE_SPEC", KEPT_SPEC))
SPEC_URI = "urn:monite-spec"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": {"type": "string"}},
        }
    },
}
RATE_LIMIT_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"const": "API rate limit exceeded"}},
}


class SpecViolation(AssertionError):
    pass


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    responses: dict[str, Any]


# Fundline's object types beyond Monite's (docs/webhooks.md): its subscriptions and events
# name the financing objects, which Monite's ``WebhookObjectType`` enum lacks. The enum is
# extended by these three values and nothing else is loosened.
FUNDLINE_OBJECT_TYPES = (
    "financing_business",
    "financing_invoice",
    "financing_offer",
    "webhook_subscription",
)
# Operations Fundline adds under /v1 (docs/api.md), described as the spec would, with Monite's
# schemas: their responses are checked like the rest (errors: the usual shapes).
FUNDLINE_OPERATIONS: dict[str, dict[str, Any]] = {
    "/webhook_deliveries/{webhook_delivery_id}/replay": {
        "post": {
            "responses": {
                "201": {
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/WebhookDeliveryResource"}
                        }
                    }
                },
            }
        }
    },
}


def monite_spec(*, additions: bool = True) -> dict[str, Any]:
    """Monite's OpenAPI (a fresh copy) with Fundline's object types, and with its operations
    too unless ``additions`` is false (Monite's operations alone, as the fuzz tests take it)."""
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    spec["components"]["schemas"]["WebhookObjectType"]["enum"].extend(FUNDLINE_OBJECT_TYPES)
    if additions:
        for path, operations in FUNDLINE_OPERATIONS.items():
            assert path not in spec["paths"], f"{path} is Monite's now: drop it from the additions"
            spec["paths"][path] = copy.deepcopy(operations)
    return spec


@cache
def _spec() -> dict[str, Any]:
    return monite_spec()


@cache
def _registry() -> Registry:
    resource: Resource[Any] = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


@cache
def _operations() -> list[Operation]:
    ops = []
    for template, methods in _spec()["paths"].items():
        regex = re.sub(r"\{[^/]+\}", "[^/]+", template)
        for method, op in methods.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                ops.append(
                    Operation(method.upper(), template, re.compile(f"^{regex}$"), op["responses"])
                )
    # Literal segments first, so /entity_users/me would win over /entity_users/{id}.
    return sorted(ops, key=lambda o: o.template.count("{"))


def find_operation(method: str, path: str) -> Operation | None:
    for op in _operations():
        if op.method == method and op.pattern.match(path):
            return op
    return None


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _explain(error: ValidationError) -> list[ValidationError]:
    """For a ``oneOf`` with a discriminator, the errors of the branch the body names.

    Without this, a bad entity is only "not valid under any of the given schemas".
    """
    schema, instance = error.schema, error.instance
    if error.validator != "oneOf" or not error.context:
        return [error]
    if not isinstance(schema, dict) or not isinstance(instance, dict):
        return [error]
    discriminator = schema.get("discriminator")
    if not discriminator:
        return [error]
    target = discriminator.get("mapping", {}).get(instance.get(discriminator["propertyName"]))
    for index, branch in enumerate(schema["oneOf"]):
        if target and str(branch.get("$ref", "")).endswith(target):
            chosen = [e for e in error.context if e.relative_schema_path[0] == index]
            return [e for c in chosen for e in _explain(c)] or [error]
    return [error]


def _validate(schema: dict[str, Any], body: Any, where: str) -> None:
    validator = Draft202012Validator(
        _rewrite_refs(schema), registry=_registry(), format_checker=FormatChecker()
    )
    errors = sorted(
        (e for error in validator.iter_errors(body) for e in _explain(error)),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        details = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in errors[:5]
        )
        raise SpecViolation(f"{where}: {details}")


def check_schema(name: str, body: Any) -> None:
    """Raise ``SpecViolation`` unless ``body`` conforms to the spec's schema ``name`` (a webhook
    body, say, which no response carries)."""
    _validate({"$ref": f"#/components/schemas/{name}"}, body, name)


def check_response(response: httpx.Response) -> None:
    """Raise ``SpecViolation`` unless a ``/v1`` response conforms to Monite's spec."""
    path = response.request.url.path
    if not path.startswith("/v1/") and path != "/v1":
        return
    method = response.request.method
    status = str(response.status_code)
    where = f"{method} {path} → {status}"
    op = find_operation(method, path[len("/v1") :])
    declared = op.responses.get(status) if op else None
    if declared is not None:
        content = declared.get("content", {}).get("application/json")
        if content is None:
            if response.content:
                raise SpecViolation(f"{where}: Monite declares no body, got {response.text[:200]}")
            return
        _validate(content["schema"], response.json(), where)
        return
    if response.status_code < 400:
        raise SpecViolation(f"{where}: status not declared by Monite for this operation")
    body = response.json()
    if response.status_code == 422:
        _validate({"$ref": "#/components/schemas/HTTPValidationError"}, body, where)
        if "detail" not in body:
            raise SpecViolation(f"{where}: a 422 must carry `detail`")
    elif response.status_code == 429:
        _validate(RATE_LIMIT_SCHEMA, body, where)
    else:
        _validate(ERROR_SCHEMA, body, where)
