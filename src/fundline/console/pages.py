"""What every console page shares: the signed-in operator, the form reader with its CSRF
check, and rendering into the layout (navigation, the operator, the sign-out form).

Pages are plain HTML forms posted back to the console (``application/x-www-form-urlencoded``),
which work without JavaScript; ``console.js`` only adds conveniences (select all, confirm).
An action answers with the page again and what it did, or a redirect (303) after it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from fundline.console import auth
from fundline.kit import money
from fundline.kit import pages as kit_pages
from fundline.kit.errors import Forbidden
from fundline.kit.pages import Assets, environment
from fundline.kit.routing import request_session

PREFIX = "/lender"
assets = Assets("fundline.console", url_prefix=f"{PREFIX}/static")
templates = environment("fundline.console")
templates.filters["money"] = lambda amount, currency="USD": (
    "" if amount is None else money.display(amount, currency)
)
templates.filters["day"] = lambda value: kit_pages.day(value) if value else ""
templates.filters["rate"] = lambda bps: "" if bps is None else money.display_rate(bps)

# The console's sections, in the order of its navigation: (path, label).
SECTIONS = (
    ("/lender/queue", "Review queue"),
    ("/lender/businesses", "Businesses"),
    ("/lender/servicing", "Servicing"),
    ("/lender/portfolio", "Portfolio"),
    ("/lender/reconciliation", "Reconciliation"),
    ("/lender/audit", "Audit log"),
)


@dataclass(frozen=True)
class Console:
    """A request of a signed-in operator: who, and how to render for them."""

    request: Request
    session: AsyncSession
    who: auth.SignedIn

    @property
    def operator(self) -> str:
        return self.who.operator.name

    @property
    def csrf(self) -> str:
        return auth.csrf_token(self.request.app.state.settings.signing_key, self.who)

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        return render(
            self.request,
            template,
            status_code=status_code,
            operator=self.operator,
            csrf=self.csrf,
            **context,
        )

    async def form(self) -> Form:
        """The posted form, once its CSRF token is this session's (``FormExpired``, a 403
        page, otherwise)."""
        posted = await read_form(self.request)
        try:
            auth.check_csrf(
                self.request.app.state.settings.signing_key, self.who, posted.get("csrf")
            )
        except Forbidden as exc:
            # Rendered now: the request's transaction is rolled back before a handler runs,
            # and with it the operator's row.
            page = self.render(
                "form_expired.html",
                status_code=403,
                message=exc.message,
                back=_page_of(self.request.url.path),
            )
            raise FormExpired(page) from exc
        return posted


class FormExpired(Exception):
    """A console form without this session's CSRF token (an old tab, or another site), with
    the page that says so."""

    def __init__(self, page: HTMLResponse) -> None:
        super().__init__("the form has expired")
        self.page = page


async def form_expired(request: Request, exc: Exception) -> HTMLResponse:
    """The app's handler of ``FormExpired``: its 403 page, with the way back."""
    assert isinstance(exc, FormExpired)
    return exc.page


def _page_of(posted_to: str) -> str:
    """The page a form posted to ``posted_to`` was on."""
    parts = posted_to.removeprefix(f"{PREFIX}/").split("/")
    if parts[0] == "invoices" and len(parts) > 1:
        return f"{PREFIX}/invoices/{parts[1]}"
    if parts[0] == "offers":
        return f"{PREFIX}/businesses"
    if parts[0] in ("queue", "servicing"):
        return f"{PREFIX}/{parts[0]}"
    return f"{PREFIX}/queue"


class Form:
    """A posted urlencoded form: ``get`` the first value of a field, ``all`` of them."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


async def read_form(request: Request) -> Form:
    body = (await request.body()).decode("utf-8", errors="replace")
    fields: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return Form(fields)


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    operator: str | None = None,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    html = templates.get_template(template).render(
        css=assets.url("console.css"),
        js=assets.url("console.js"),
        sections=SECTIONS,
        path=request.url.path,
        operator=operator,
        csrf=csrf,
        **context,
    )
    return kit_pages.page(html, status_code=status_code)


async def current_console(request: Request) -> Console:
    """The signed-in operator; anyone else is sent to the sign-in page (303), which brings
    them back here after."""
    session = await request_session(request)
    who = await auth.signed_in(session, request.cookies.get(auth.COOKIE))
    if who is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=303, headers={"Location": f"{PREFIX}/sign-in?next={quote(back)}"}
        )
    return Console(request, session, who)


ConsoleDep = Annotated[Console, Depends(current_console)]
