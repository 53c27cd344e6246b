"""The Fundline ASGI application: routers, middleware, error handlers, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI

from fundline import models  # noqa: F401  (registers every table)
from fundline.auth.cache import TokenCache
from fundline.auth.middleware import AuthenticationMiddleware
from fundline.auth.router import router as auth_router
from fundline.backoffice.router import LENDER_PREFIX
from fundline.backoffice.router import router as lender_router
from fundline.config import Lender, Settings
from fundline.connect.router import CONNECT_PREFIX
from fundline.connect.router import router as connect_router
from fundline.connect.views import router as connect_views
from fundline.connect.widget import EMBEDS_PATH
from fundline.connect.widget import router as connect_widget
from fundline.console.pages import PREFIX as CONSOLE_PREFIX
from fundline.console.pages import FormExpired, form_expired
from fundline.console.router import SECTIONS as console_sections
from fundline.console.router import router as console_router
from fundline.counterparts.router import router as counterparts_router
from fundline.entities.router import entities, entity_users
from fundline.financing.router import router as financing_router
from fundline.kit.db import Database
from fundline.kit.dispatch import RouteIndex
from fundline.kit.errors import install_error_handlers
from fundline.kit.headers import (
    API_PREFIX,
    ApiVersionMiddleware,
    RequestContextMiddleware,
)
from fundline.kit.inputs import RequestLimitsMiddleware
from fundline.kit.logging import configure_logging
from fundline.kit.ratelimit import LimitStore, RateLimitMiddleware, Rule
from fundline.kit.security import Signer
from fundline.kit.versions import CURRENT_VERSION
from fundline.lending.lenders import build_lender
from fundline.lending.policy import load_policy
from fundline.operations import metrics
from fundline.operations import worker as background
from fundline.operations.openapi import install_api_reference
from fundline.operations.router import router as operations_router
from fundline.payables.router import router as payables_router
from fundline.receivables.router import router as receivables_router
from fundline.sandbox import router as sandbox
from fundline.sandbox.demo_page import router as demo_page
from fundline.sandbox.service import restore_clock
from fundline.webhooks.addresses import UrlRules
from fundline.webhooks.deliveries import router as webhook_deliveries_router
from fundline.webhooks.router import router as events_router
from fundline.webhooks.subscriptions import router as webhook_subscriptions_router

Lifespan = AbstractAsyncContextManager[None]


def create_app(settings: Settings | None = None, *, worker: bool = False) -> FastAPI:
    """The application. With ``worker``, its lifespan also runs the background worker (the
    embedded default of ``fundline serve``)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="Fundline",
        version=CURRENT_VERSION,
        description=(
            "Invoice financing with the Monite API on the wire. `/v1` follows Monite's "
            "contract: `x-monite-version` on every request, bearer tokens from "
            "`/v1/auth/token`, `x-monite-entity-id` on entity-scoped operations."
        ),
        lifespan=_lifespan(settings, worker=worker),
        docs_url=None,  # served by install_api_reference, from local files
        redoc_url=None,
        # Fundline's metrics are Prometheus's (operations/metrics); FastAPI's OpenTelemetry
        # bridge, off, asks nothing of each request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    app.state.signer = Signer(settings.signing_key)
    app.state.limits = LimitStore(settings.redis_url, key_prefix=settings.redis_key_prefix)
    app.state.tokens = TokenCache(app.state.db.driver_dsn)
    # The built-in lender's credit policy; the lender reads it from here at each use.
    app.state.policy = load_policy(settings) if settings.lender is Lender.BUILTIN else None
    app.state.lender = build_lender(
        settings, app.state.db.sessions, policy=lambda: app.state.policy
    )
    app.state.webhook_urls = UrlRules.of(settings)
    _include_routes(app, settings)
    install_api_reference(app)
    # Requests find their route by the index; FastAPI's own matching is its fallback.
    app.state.route_index = app.router.middleware_stack = RouteIndex(app.router)
    install_error_handlers(app)
    app.add_exception_handler(FormExpired, form_expired)
    _add_middleware(app, settings)
    return app


def _lifespan(
    settings: Settings, *, worker: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db: Database = app.state.db
        build_route_handlers(app)
        if settings.is_sandbox:
            await restore_clock(db)  # the sandbox clock as other processes left it
        await app.state.tokens.start()
        async with AsyncExitStack() as stack:
            if worker:
                await stack.enter_async_context(background.running(db, app.state.lender, settings))
            yield
        await shutdown(app)

    return lifespan


def build_route_handlers(app: FastAPI) -> None:
    """Build now what would be built at the first request: the route index, and with it each
    route's handler within its included routers, about 0.2 s for them all. Left to the first
    request, a partner pays it, inside its rate-limit window."""
    index: RouteIndex = app.state.route_index
    index.build()


def _include_routes(app: FastAPI, settings: Settings) -> None:
    # Where two routes could take the same request, the one included first does
    # (``kit/dispatch``): the order here is the order they are tried in.
    app.include_router(financing_router, prefix=API_PREFIX)
    v1 = APIRouter(prefix=API_PREFIX)
    for router in (
        auth_router,
        entities,
        entity_users,
        counterparts_router,
        payables_router,
        receivables_router,
        events_router,
        webhook_subscriptions_router,
        webhook_deliveries_router,
    ):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(operations_router)
    if settings.lender is not Lender.BUILTIN:
        # A remote lender hosts its own widget, console and sandbox: the built-in lender's
        # Connect, lender API, sandbox and demo are not served (plain 404s).
        return
    # The Connect API is not Monite's: outside /v1, so neither the version rule, the partner
    # authentication nor the rate limit of /v1 applies to it.
    app.include_router(connect_router)
    app.include_router(connect_views)
    app.include_router(connect_widget)
    app.include_router(lender_router)
    app.include_router(console_router)
    for section in console_sections:
        app.include_router(section)
    if settings.is_sandbox:  # absent in production: every /sandbox path is a plain 404
        app.include_router(sandbox.router)
        app.include_router(demo_page)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Added innermost first: a request passes context → input limits → auth → rate limit → version
    # → routes.
    app.add_middleware(ApiVersionMiddleware)
    app.add_middleware(RateLimitMiddleware, store=app.state.limits, rules=rate_limits(settings))
    authenticated = (API_PREFIX, sandbox.PREFIX) if settings.is_sandbox else (API_PREFIX,)
    app.add_middleware(
        AuthenticationMiddleware, db=app.state.db, cache=app.state.tokens, prefixes=authenticated
    )
    # The embed check answers a malformed body itself, with the CORS headers its caller needs.
    app.add_middleware(RequestLimitsMiddleware, reads_own_body=frozenset({EMBEDS_PATH}))
    app.add_middleware(RequestContextMiddleware, observe=metrics.observe_request)


def rate_limits(settings: Settings) -> tuple[Rule, ...]:
    """Who may send how much where (the first rule that matches a path applies): per API
    client on ``/v1`` and the sandbox API, per address on the token exchanges (which also
    count failed credentials), the Connect API and the lender API (whose every request is an
    operator key check)."""
    per_second, anonymous = settings.rate_limit_per_second, settings.auth_rate_limit_per_second
    failures = settings.credential_failures_per_minute
    return (
        Rule("token", f"{API_PREFIX}/auth/token", anonymous, exact=True),
        Rule(
            "connect-token",
            f"{CONNECT_PREFIX}/sessions",
            anonymous,
            exact=True,
            failures_per_minute=failures,
        ),
        Rule("api", API_PREFIX, per_second, per_client=True),
        Rule("sandbox", sandbox.PREFIX, per_second, per_client=True),
        Rule("connect", CONNECT_PREFIX, per_second),
        Rule("lender", LENDER_PREFIX, per_second, failures_per_minute=failures),
        # The console's sign-in counts wrong keys like the lender API; its pages are per address.
        Rule(
            "console-sign-in",
            f"{CONSOLE_PREFIX}/sign-in",
            anonymous,
            exact=True,
            failures_per_minute=failures,
        ),
        Rule("console", CONSOLE_PREFIX, per_second),
    )


async def shutdown(app: FastAPI) -> None:
    """Close what ``create_app`` opened: token listener, database pools, Redis pool."""
    await app.state.tokens.close()
    await app.state.lender.aclose()
    await app.state.limits.aclose()
    await app.state.db.dispose()
