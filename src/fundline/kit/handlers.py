"""The request handler of every API route: its dependency tree planned once, run per request.

FastAPI solves a route's dependency tree anew on every request: it walks the tree, asks of
each callable whether it is a coroutine or a generator, works out its cache key and reads all
four parameter sources at every level. None of those answers changes while the app runs, and
on a small read they cost more than the database's work. ``PlannedRoute`` works them out once,
when the route is built, into a plan; a request runs the plan: the same calls in the same
order, the same per-request cache, the parameters and the body read and validated by FastAPI's
own functions, the same errors in the same order, the same response.

Two things take FastAPI's own handler instead: a route the plan does not cover (a form body,
a streamed response), decided when the route is built, and a request while the app overrides
dependencies (``app.dependency_overrides``), decided per request. FastAPI's opt-in
OpenTelemetry data is not filled in (Fundline does not use it).

The plan relies on FastAPI internals (its dependency model, its generator and cache-key
helpers, the route context of included routers); FastAPI is pinned, and the tests of
``tests/kit/test_handlers.py`` run a route set through both handlers and compare every answer.
"""

from __future__ import annotations

import email.message
import functools
import json
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, cast

from fastapi import params
from fastapi import routing as fastapi_routing
from fastapi._body_limit import get_body_limit_error
from fastapi._compat import (
    ModelField,
    Undefined,
    field_annotation_is_sequence,
    get_cached_model_fields,
)
from fastapi.background import BackgroundTasks
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies import models as dependency_models
from fastapi.dependencies import utils as dependency_utils
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from fastapi.utils import is_body_allowed_for_status_code
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Kind = Literal["coroutine", "sync", "generator"]
Place = Literal["path", "query", "header", "cookie"]


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A parameter read from one request key: what FastAPI's ``request_params_to_args`` works
    out for it on every request (its keys, whether it takes every value of its key)."""

    field: ModelField
    keys: tuple[str, ...]  # the request keys it may be sent as, preferred first
    many: bool  # read every value of its key (a list, and not JSON)
    sequence: bool  # an empty list counts as absent
    place: str  # "query", "header", …: the first item of an error's ``loc``

    def read(self, source: Mapping[str, Any], values: dict[str, Any]) -> tuple[Any, list[Any]]:
        key = next((key for key in self.keys if key in source), self.keys[0])
        value = _value(source, key, many=self.many, sequence=self.sequence)
        return dependency_utils._validate_value_with_model_field(
            field=self.field, value=value, values=values, loc=(self.place, key)
        )


@dataclass(frozen=True, slots=True)
class _ModelParam:
    """A model of parameters (``Annotated[Model, Query()]``): FastAPI's
    ``_request_param_model_to_args`` for a source other than headers, its fields' keys and
    shapes worked out once.

    FastAPI looks every member up in the request; this looks the request's keys up in the
    members (a list's model has 30 filters, a request sends one or two). The result is the
    same: a member sent under several of its keys reads the first it prefers, and a key no
    member read is an extra."""

    field: ModelField
    fields: tuple[tuple[tuple[tuple[str, str], ...], bool, bool], ...]  # (keys, many, sequence)
    members_of: dict[str, tuple[int, ...]]  # request key → the members that may be sent as it
    whole: bool  # the parameter is the model itself (not a union or an optional of it)
    extra_checked: bool  # the model allows or forbids extra keys
    place: str

    def read(self, source: Mapping[str, Any], values: dict[str, Any]) -> tuple[Any, list[Any]]:
        found: dict[str, Any] = {}
        sent: set[int] = set()
        for key in source:
            sent.update(self.members_of.get(key, ()))
        taken: set[str] = set()  # the request keys the members read
        for index in sorted(sent):
            pairs, many, sequence = self.fields[index]
            alias, key = next(pair for pair in pairs if pair[1] in source)
            value = _value(source, key, many=many, sequence=sequence)
            if value is not Undefined:
                found[alias] = value
            taken.add(key)
        if len(taken) < len(source):
            found.update(dependency_utils._get_multidict_extras(source, taken))
        given: Any = found
        if not self.whole and not (sent or (self.extra_checked and found)):
            given = Undefined
        return dependency_utils._validate_value_with_model_field(
            field=self.field, value=given, values={}, loc=(self.place,)
        )


def _value(source: Mapping[str, Any], key: str, *, many: bool, sequence: bool) -> Any:
    """FastAPI's ``_get_multidict_value`` for a source that is not a form."""
    if many and isinstance(source, ImmutableMultiDict | Headers):
        value: Any = source.getlist(key)
    else:
        value = source.get(key, None)
    if value is None or (sequence and len(value) == 0):
        return Undefined
    return value


def _reader(field: ModelField, place: str) -> _Scalar | _ModelParam | None:
    """How to read ``field`` from its source, or None where FastAPI's reading must serve (a
    model of headers, whose names are converted)."""
    model = dependency_utils._get_param_model(field)
    if model is None:
        many, sequence = _shape(field)
        keys = tuple(key for _, key in dependency_utils._get_param_aliases(field))
        return _Scalar(field=field, keys=keys, many=many, sequence=sequence, place=place)
    if place == "header":
        return None
    fields = []
    members_of: dict[str, list[int]] = {}
    for index, member in enumerate(get_cached_model_fields(model)):
        pairs = tuple(dependency_utils._get_param_aliases(member, convert_underscores=False))
        for _, key in pairs:
            members_of.setdefault(key, []).append(index)
        fields.append((pairs, *_shape(member)))
    return _ModelParam(
        field=field,
        fields=tuple(fields),
        members_of={key: tuple(indexes) for key, indexes in members_of.items()},
        whole=field.field_info.annotation is model,
        extra_checked=model.model_config.get("extra") in ("allow", "forbid"),
        place=place,
    )


def _shape(field: ModelField) -> tuple[bool, bool]:
    sequence = field_annotation_is_sequence(field.field_info.annotation)
    return sequence and not dependency_utils._is_json_field(field), sequence


@dataclass(frozen=True, slots=True)
class _Source:
    """The parameters one level reads from one part of the request."""

    name: Place
    fields: list[ModelField]
    readers: tuple[_Scalar | _ModelParam, ...] | None  # None: FastAPI's own reading

    def read(self, request: Request) -> tuple[dict[str, Any], list[Any]]:
        source = _source(request, self.name)
        if self.readers is None:
            return dependency_utils.request_params_to_args(self.fields, source)
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for reader in self.readers:
            value, failed = reader.read(source, values)
            if failed:
                errors.extend(failed)
            else:
                values[reader.field.name] = value
        return values, errors


def _source_of(name: Place, fields: list[ModelField]) -> _Source:
    readers = [_reader(field, name) for field in fields]
    planned = tuple(reader for reader in readers if reader is not None)
    return _Source(
        name=name, fields=fields, readers=planned if len(planned) == len(fields) else None
    )


def _source(request: Request, name: str) -> Mapping[str, Any]:
    if name == "path":
        return request.path_params
    if name == "query":
        return request.query_params
    if name == "header":
        return request.headers
    return request.cookies


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one level of the tree takes: its dependencies first, then its own parameters."""

    steps: tuple[_Step, ...]
    sources: tuple[_Source, ...]  # path, query, header, cookie: those it reads
    body_params: list[ModelField]
    request_names: tuple[str, ...]  # ``Request`` and ``HTTPConnection`` parameters
    response_name: str | None
    background_name: str | None
    security_scopes: tuple[str, list[str]] | None


@dataclass(frozen=True, slots=True)
class _Step:
    """One dependency: how to call it, what it is cached under, what it takes."""

    dependant: Dependant
    kind: Kind
    cache_key: Any
    plan: _Plan


class _Solving:
    """A request's state while its plan runs (FastAPI's dependency cache and sub-response)."""

    __slots__ = ("background", "cache", "response")

    def __init__(self) -> None:
        self.cache: dict[Any, Any] = {}
        self.background: BackgroundTasks | None = None
        response = Response()
        del response.headers["content-length"]
        response.status_code = None  # type: ignore[assignment]  # as FastAPI's: unset
        self.response = response


def _plan(dependant: Dependant) -> _Plan:
    """The plan of ``dependant`` and its tree."""
    steps: list[_Step] = []
    for sub in dependant.dependencies:
        call = sub.call
        if dependency_models._is_gen_callable(call) or dependency_models._is_async_gen_callable(
            call
        ):
            kind: Kind = "generator"
        elif dependency_models._is_coroutine_callable(call):
            kind = "coroutine"
        else:
            kind = "sync"
        steps.append(
            _Step(
                dependant=sub,
                kind=kind,
                cache_key=dependency_models._get_cache_key(dependant=sub),
                plan=_plan(sub),
            )
        )
    security = None
    if dependant.security_scopes_param_name:
        scopes = dependency_models._get_oauth_scopes(dependant=dependant)
        security = (dependant.security_scopes_param_name, scopes)
    places: tuple[tuple[Place, list[ModelField]], ...] = (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("header", dependant.header_params),
        ("cookie", dependant.cookie_params),
    )
    sources = tuple(_source_of(name, fields) for name, fields in places if fields)
    return _Plan(
        steps=tuple(steps),
        sources=sources,
        body_params=dependant.body_params,
        request_names=tuple(
            name
            for name in (dependant.http_connection_param_name, dependant.request_param_name)
            if name
        ),
        response_name=dependant.response_param_name,
        background_name=dependant.background_tasks_param_name,
        security_scopes=security,
    )


async def _solve(
    plan: _Plan, request: Request, body: Any, solving: _Solving, embed_body_fields: bool
) -> tuple[dict[str, Any], list[Any]]:
    """FastAPI's ``solve_dependencies`` for one level, its answers worked out beforehand."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    cache = solving.cache
    for step in plan.steps:
        sub_values, sub_errors = await _solve(step.plan, request, body, solving, embed_body_fields)
        if sub_errors:
            errors.extend(sub_errors)
            continue
        if step.dependant.use_cache and step.cache_key in cache:
            solved = cache[step.cache_key]
        elif step.kind == "generator":
            stack_name = (
                "fastapi_function_astack"
                if step.dependant.scope == "function"
                else "fastapi_inner_astack"
            )
            solved = await dependency_utils._solve_generator(
                request=request,
                dependant=step.dependant,
                stack=request.scope[stack_name],
                sub_values=sub_values,
            )
        elif step.dependant.concurrency is not None:
            async with step.dependant.concurrency.get_semaphore():
                solved = await _call(step, sub_values)
        else:
            solved = await _call(step, sub_values)
        if step.dependant.name is not None:
            values[step.dependant.name] = solved
        if step.cache_key not in cache:
            cache[step.cache_key] = solved
    for source in plan.sources:
        found, failed = source.read(request)
        values.update(found)
        errors += failed
    if plan.body_params:
        found, failed = await dependency_utils.request_body_to_args(
            body_fields=plan.body_params, received_body=body, embed_body_fields=embed_body_fields
        )
        values.update(found)
        errors.extend(failed)
    for name in plan.request_names:
        values[name] = request
    if plan.background_name:
        if solving.background is None:
            solving.background = BackgroundTasks()
        values[plan.background_name] = solving.background
    if plan.response_name:
        values[plan.response_name] = solving.response
    if plan.security_scopes is not None:
        name, scopes = plan.security_scopes
        values[name] = SecurityScopes(scopes=scopes)
    return values, errors


async def _call(step: _Step, values: dict[str, Any]) -> Any:
    call = cast(Callable[..., Any], step.dependant.call)
    if step.kind == "coroutine":
        return await call(**values)
    return await run_in_threadpool(call, **values)


@functools.lru_cache(maxsize=256)
def _is_json(content_type: str) -> bool:
    """FastAPI's test of a body's content type (``application/json`` or ``…+json``),
    remembered per header value: parsing it costs more than the rest of a small request."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class PlannedRoute(APIRoute):
    """An API route served by its plan (see the module's docstring)."""

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()
        # As APIRoute's: an included route is built once per inclusion, with the dependencies
        # and settings the inclusion adds.
        context = fastapi_routing._effective_route_context_var.get()
        route: Any = self
        if context is not None and context.original_route is self:
            route = context
        return _planned_handler(route, fastapi_handler) or fastapi_handler


def _planned_handler(route: Any, fastapi_handler: Handler) -> Handler | None:
    """``route``'s handler run by its plan, or None when FastAPI's own handler must serve it."""
    dependant: Dependant = route.dependant
    body_field: ModelField | None = route.body_field
    response_class = route.response_class
    actual_class: type[Response] = (
        response_class.value if isinstance(response_class, DefaultPlaceholder) else response_class
    )
    if (
        route.stream_item_field is not None
        or route.is_json_stream
        or (body_field is not None and isinstance(body_field.field_info, params.Form))
        or dependency_models._is_gen_callable(dependant.call)
        or dependency_models._is_async_gen_callable(dependant.call)
        or issubclass(actual_class, StreamingResponse)
    ):
        return None
    plan = _plan(dependant)
    call = cast(Callable[..., Any], dependant.call)
    is_coroutine = dependency_models._is_coroutine_callable(call)
    strict = route.strict_content_type
    strict_content_type = strict.value if isinstance(strict, DefaultPlaceholder) else strict
    overrides = route.dependency_overrides_provider
    embed_body_fields: bool = route._embed_body_fields
    status_code: int | None = route.status_code
    response_field: ModelField | None = route.response_field
    dump_json = response_field is not None and isinstance(response_class, DefaultPlaceholder)
    serialize = functools.partial(
        fastapi_routing.serialize_response,
        field=response_field,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        is_coroutine=is_coroutine,
        dump_json=dump_json,
    )

    def endpoint_context(request: Request) -> Any:
        found = dict(fastapi_routing._extract_endpoint_context(call))
        if dependant.path:
            mount_path = request.scope.get("root_path", "").rstrip("/")
            found["path"] = f"{request.method} {mount_path}{dependant.path}"
        return found

    async def read_body(request: Request) -> Any:
        """The body as FastAPI's handler reads it: parsed JSON when declared so, else bytes."""
        try:
            body_bytes = await request.body()
            if not body_bytes:
                return Undefined
            content_type = request.headers.get("content-type")
            if content_type is None:
                return body_bytes if strict_content_type else await request.json()
            return await request.json() if _is_json(content_type) else body_bytes
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError(
                [error], body=exc.doc, endpoint_ctx=endpoint_context(request)
            ) from exc
        except HTTPException:
            raise
        except Exception as exc:
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (
                limit_error := get_body_limit_error(exc)
            ):
                raise limit_error from exc
            raise HTTPException(
                status_code=400, detail="There was an error parsing the body"
            ) from exc

    async def handler(request: Request) -> Response:
        if overrides is not None and overrides.dependency_overrides:
            return await fastapi_handler(request)
        assert isinstance(request.scope.get("fastapi_inner_astack"), AsyncExitStack)
        body = await read_body(request) if body_field is not None else Undefined
        solving = _Solving()
        values, errors = await _solve(plan, request, body, solving, embed_body_fields)
        if errors:
            raise RequestValidationError(
                errors,
                body=None if body is Undefined else body,
                endpoint_ctx=endpoint_context(request),
            )
        raw = await fastapi_routing.run_endpoint_function(
            dependant=dependant, values=values, is_coroutine=is_coroutine
        )
        if isinstance(raw, Response):
            if raw.background is None:
                raw.background = solving.background
            return raw
        response_args: dict[str, Any] = {"background": solving.background}
        chosen_status = status_code or solving.response.status_code
        if chosen_status is not None:
            response_args["status_code"] = chosen_status
        if solving.response.status_code:
            response_args["status_code"] = solving.response.status_code
        content = await serialize(response_content=raw, endpoint_ctx=endpoint_context(request))
        if dump_json:
            response = Response(content=content, media_type="application/json", **response_args)
        else:
            response = actual_class(content, **response_args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        response.headers.raw.extend(solving.response.headers.raw)
        return response

    return handler
