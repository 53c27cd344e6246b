"""``/lender/``: signing in and out, the console's static files, and the audit log page. Each
section has its own module (``queue``, ``businesses``, ``servicing``, ``portfolio``,
``reconciliation``); ``router`` gathers them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from fundline.backoffice import audit
from fundline.backoffice.schemas import AuditListParams
from fundline.console import (
    auth,
    businesses,
    invoices,
    portfolio,
    queue,
    reconciliation,
    servicing,
)
from fundline.console.pages import PREFIX, ConsoleDep, assets, read_form, render
from fundline.kit.errors import FundlineError
from fundline.kit.pagination import Paginator
from fundline.kit.routing import TransactionalRoute, request_session

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)
HOME = f"{PREFIX}/queue"
AUDIT_FILTERS = ("operator", "action")  # the audit page's text fields
# Each section's pages, on their own routers.
SECTIONS = (
    queue.router,
    invoices.router,
    businesses.router,
    servicing.router,
    portfolio.router,
    reconciliation.router,
)


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    return assets.response(name)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


def _local(next_path: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if next_path and next_path.startswith(f"{PREFIX}/") and not next_path.startswith("//"):
        return next_path
    return HOME


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "sign_in.html", next=_local(next), error=None)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """An operator key (``fundline operator create-key``) for a session cookie. A wrong key is
    a 401 with the form again; attempts are rate limited per address (``app.rate_limits``)."""
    form = await read_form(request)
    next_path = _local(form.get("next"))
    session = await request_session(request)
    try:
        token, operator = await auth.sign_in(session, form.get("key") or "")
    except FundlineError as exc:
        return render(request, "sign_in.html", status_code=401, next=next_path, error=exc.message)
    await audit.record(
        session,
        operator=operator.name,
        action="sign_in",
        object_type="operator_key",
        object_id=operator.id,
    )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        auth.COOKIE,
        token,
        max_age=int(auth.SESSION_TTL.total_seconds()),
        path=PREFIX,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/sign-out")
async def sign_out(console: ConsoleDep) -> Response:
    await console.form()  # the CSRF check
    await auth.sign_out(console.session, console.who)
    await audit.record(
        console.session,
        operator=console.operator,
        action="sign_out",
        object_type="operator_key",
        object_id=console.who.operator.id,
    )
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(auth.COOKIE, path=PREFIX, secure=True, httponly=True, samesite="strict")
    return response


@router.get("/audit")
async def audit_page(
    console: ConsoleDep, params: Annotated[AuditListParams, Query()]
) -> HTMLResponse:
    """Every operator action, newest first: the console's, the lender API's and the CLI's."""
    paginator = Paginator(console.request.app.state.signer, "console_audit")
    # The filter form sends its empty fields too (``action=``): an empty field filters nothing.
    filters = {name: (getattr(params, name) or "").strip() or None for name in AUDIT_FILTERS}
    page = await audit.list_entries(
        console.session, paginator, params.model_copy(update={"limit": 50, **filters})
    )
    return console.render("audit.html", page=page, params=params)
