"""Kanmon's spec as the fake Kanmon reads it: operations found by method and path, the checks
of a request's parameters and body and of an answer's body, and Kanmon's error shape.

The spec (``kanmon-openapi.json`` beside this file, kept by ``scripts/refresh-spec``) is
OpenAPI 3.0. It is converted once, at load, to JSON Schema 2020-12 so that jsonschema checks it
as OpenAPI means it:

- ``nullable: true`` becomes a type list with ``"null"`` (or an ``anyOf`` with null around a
  ``$ref``/``allOf``);
- a ``oneOf`` with a ``discriminator`` becomes one ``if``/``then`` per mapped value: Kanmon's
  invoice-financing and accounts-payable terms have the same shape, so a plain ``oneOf`` would
  refuse both (each matches two branches);
- an object with declared ``properties`` refuses others (``unevaluatedProperties: false``).
  The spec does not say so; the fake does, in both directions, because a misspelt field would
  otherwise pass unseen: the adapter's sent to Kanmon, or the fake's sent to the adapter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILE = resources.files("fundline.lending.kanmon") / "kanmon-openapi.json"
SPEC_URI = "urn:fundline:kanmon-openapi"
METHODS = frozenset({"get", "post", "put", "patch", "delete"})

# Error codes the fake answers where the spec's operation does not list them, and why:
EXTRA_ERRORS: dict[tuple[str, str], str] = {
    # No operation refers to this component; an accounts-payable session for a business
    # without that product is the one place it can mean.
    ("createEmbeddedSession", "409"): "BusinessHasNoAccountsPayableFinancingProductException",
    # Every other operation answers a malformed request so; this one lists only its own 400s.
    ("financeInvoice", "400"): "BadRequestException",
}


class KanmonError(Exception):
    """An answer in Kanmon's error shape: ``{"errorCode", "message", "timestamp"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad_request(message: str) -> KanmonError:
    return KanmonError(400, "BadRequestException", message)


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _convert(node: Any) -> Any:
    """``node`` (any part of the spec) with its schemas in JSON Schema 2020-12's terms."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items()}
    # Only a boolean ``nullable`` is the keyword: a property may be called "nullable".
    nullable = out.get("nullable") is True
    if nullable:
        del out["nullable"]
    types = out.get("type")
    if isinstance(out.get("properties"), dict) and types == "object":
        out.setdefault("unevaluatedProperties", False)
    discriminator = out.get("discriminator")
    if isinstance(discriminator, dict) and "mapping" in discriminator and "oneOf" in out:
        name, mapping = discriminator["propertyName"], discriminator["mapping"]
        out.pop("oneOf")
        out.pop("discriminator")
        out.update(
            {
                "type": "object",
                "required": [name],
                "properties": {name: {"enum": sorted(mapping)}},
                "allOf": [
                    {"if": {"properties": {name: {"const": v}}}, "then": {"$ref": ref}}
                    for v, ref in sorted(mapping.items())
                ],
            }
        )
    if not nullable:
        return out
    if isinstance(types, str):
        out["type"] = [types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [out, {"type": "null"}]}


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    pointer: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    parameters: tuple[Parameter, ...]
    body: str | None  # pointer of the JSON request body's schema
    body_required: bool
    responses: dict[str, str] = field(default_factory=dict)  # status → schema pointer


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query string's value as the type its schema declares; left a string when it is not
    one (the check then says so)."""
    declared = schema.get("type")
    types = set(declared) if isinstance(declared, list) else {declared}
    if "array" in types:
        return [_coerce(item, schema.get("items", {})) for item in value.split(",")]
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if types & {"number", "integer"}:
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        if number.is_finite():
            # A Decimal is a JSON Schema number too; only whole ones are offsets and limits.
            return int(number) if number == number.to_integral_value() else number
    return value


def _problems(validator: Draft202012Validator, instance: Any, where: str) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [
        f"{where}{''.join(f'.{p}' for p in e.absolute_path)}: {e.message[:300]}" for e in errors[:5]
    ]


class Spec:
    """The converted spec, its operations and the validators of their schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document: dict[str, Any] = _convert(document)
        self._add_extra_errors()
        resource: Resource[Any] = Resource.from_contents(
            self.document, default_specification=DRAFT202012
        )
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self.operations = self._operations()
        self.by_id = {op.operation_id: op for op in self.operations}

    def _add_extra_errors(self) -> None:
        for (operation_id, status), code in EXTRA_ERRORS.items():
            for methods in self.document["paths"].values():
                for op in methods.values():
                    if isinstance(op, dict) and op.get("operationId") == operation_id:
                        content = op["responses"][status]["content"]["application/json"]
                        extra = {"$ref": f"#/components/schemas/{code}"}
                        content["schema"] = {"oneOf": [content["schema"], extra]}

    def _operations(self) -> list[Operation]:
        found = []
        for template, methods in self.document["paths"].items():
            regex = re.sub(r"\\\{([^/]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            for method, op in methods.items():
                if method not in METHODS:
                    continue
                where = ("paths", template, method)
                params = tuple(
                    Parameter(
                        name=p["name"],
                        location=p["in"],
                        required=bool(p.get("required")),
                        pointer=_pointer(*where, "parameters", str(i), "schema"),
                        schema=p.get("schema", {}),
                    )
                    for i, p in enumerate(op.get("parameters", []))
                )
                body = op.get("requestBody", {})
                json_body = "application/json" in body.get("content", {})
                json_schema = ("content", "application/json", "schema")
                responses = {
                    status: _pointer(*where, "responses", status, *json_schema)
                    for status, answer in op["responses"].items()
                    if "application/json" in answer.get("content", {})
                }
                found.append(
                    Operation(
                        operation_id=op["operationId"],
                        method=method.upper(),
                        template=template,
                        pattern=re.compile(f"^{regex}$"),
                        parameters=params,
                        body=_pointer(*where, "requestBody", *json_schema) if json_body else None,
                        body_required=bool(body.get("required")),
                        responses=responses,
                    )
                )
        # Literal segments first: /users/merge before /users/{id}.
        return sorted(found, key=lambda o: o.template.count("{"))

    def validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self._registry
            )
        return self._validators[pointer]

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str]]:
        """The operation at ``method path``, and its path parameters."""
        for op in self.operations:
            found = op.pattern.match(path)
            if found is not None and op.method == method:
                return op, found.groupdict()
        return None, {}

    def check_parameters(
        self, op: Operation, path: dict[str, str], query: dict[str, str]
    ) -> tuple[dict[str, Any], list[str]]:
        """The query, coerced to its declared types, and what is wrong with the parameters."""
        coerced: dict[str, Any] = {}
        declared = {p.name for p in op.parameters if p.location == "query"}
        problems = [
            f"query.{name}: not a parameter of {op.operation_id}"
            for name in query
            if name not in declared
        ]
        for param in op.parameters:
            if param.location not in ("path", "query"):
                continue  # the spec declares none; Authorization is checked apart
            source = path if param.location == "path" else query
            if param.name not in source:
                if param.required:
                    problems.append(f"{param.location}.{param.name}: required")
                continue
            value = source[param.name]
            if param.location == "query":
                value = coerced[param.name] = _coerce(value, self._resolved(param.schema))
            problems += _problems(
                self.validator(param.pointer), value, f"{param.location}.{param.name}"
            )
        return coerced, problems

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            resolved: dict[str, Any] = self.document["components"]["schemas"][ref.rsplit("/")[-1]]
            return resolved
        return schema

    def check_body(self, op: Operation, body: Any) -> list[str]:
        if op.body is None:
            return [] if body is None else [f"body: {op.operation_id} takes no body"]
        if body is None:
            return ["body: required"] if op.body_required else []
        return _problems(self.validator(op.body), body, "body")

    def check_schema(self, name: str, value: Any, where: str) -> list[str]:
        """What is wrong with ``value`` as the spec's schema ``name``."""
        return _problems(self.validator(_pointer("components", "schemas", name)), value, where)

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        pointer = op.responses.get(str(status))
        if pointer is None:
            return [f"status {status} is not an answer {op.operation_id} declares"]
        return _problems(self.validator(pointer), body, f"{status} body")


@cache
def load() -> Spec:
    """The package's Kanmon spec, converted (once per process)."""
    document: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return Spec(document)
