"""The Connect widget's files: ``connect.js`` (the drop-in for Kanmon's ``kanmon-connect.js``),
the frame page it opens, the frame's static files, and the embedding check.

How a token reaches the pages without touching a URL: the host page calls
``KANMON_CONNECT.start({connectToken})``; the script asks ``POST /connect/v1/embeds`` whether
the page's origin may embed this partner's widget, opens ``/connect/v1/frame?origin=…`` (the
origin is not a secret) and hands the token to the frame by ``postMessage``. The frame
exchanges it for a Connect session held in its memory only (no cookie), and renders the steps
from ``/connect/v1/views``.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from fundline.auth.deps import Session
from fundline.connect import origins, service
from fundline.connect.schemas import EmbedCheckRequest, EmbedCheckResponse
from fundline.kit.errors import Forbidden, FundlineError, Unprocessable, render_error
from fundline.kit.pages import Assets, environment, page
from fundline.kit.routing import TransactionalRoute

PREFIX = "/connect/v1"
EMBEDS_PATH = f"{PREFIX}/embeds"  # its body is read here, not by the app's input guard

router = APIRouter(prefix=PREFIX, tags=["Connect"], route_class=TransactionalRoute)
assets = Assets("fundline.connect", url_prefix=f"{PREFIX}/static")
templates = environment("fundline.connect")

# connect.js keeps one URL (partners paste it), so it is revalidated rather than cached for
# good: a short max-age, and an ETag of its content for the 304.
SCRIPT = resources.files("fundline.connect").joinpath("connect.js").read_bytes()
SCRIPT_ETAG = '"' + hashlib.sha256(SCRIPT).hexdigest()[:16] + '"'
SCRIPT_CACHE = "public, max-age=300"


@router.get("/connect.js", include_in_schema=False)
async def connect_script(request: Request) -> Response:
    headers = {
        "cache-control": SCRIPT_CACHE,
        "etag": SCRIPT_ETAG,
        "x-content-type-options": "nosniff",
        # Loaded from partners' pages: readable cross-origin (it holds nothing secret).
        "cross-origin-resource-policy": "cross-origin",
        "access-control-allow-origin": "*",
    }
    if request.headers.get("if-none-match") == SCRIPT_ETAG:
        return Response(status_code=304, headers=headers)
    return Response(SCRIPT, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    return assets.response(name)


@router.get("/frame", include_in_schema=False)
async def frame(
    request: Request,
    session: Session,
    origin: Annotated[str, Query(max_length=255)] = "",
) -> Response:
    """The page inside the widget's iframe. Only an origin some partner registered (or a
    local one in sandbox mode) may frame it; any other gets a page that cannot be framed."""
    sandbox = request.app.state.settings.is_sandbox
    try:
        embedder = origins.normalize_origin(origin)
    except ValueError:
        embedder = ""
    allowed = bool(embedder) and await origins.origin_known(session, embedder, sandbox=sandbox)
    html = templates.get_template("frame.html").render(
        embedder=embedder if allowed else "",
        css=assets.url("frame.css"),
        js=assets.url("frame.js"),
    )
    return page(html, frame_ancestors=[embedder] if allowed else [])


def _cors(request: Request) -> dict[str, str]:
    """The embedding check answers any origin, so that a refusal can say why."""
    return {
        "access-control-allow-origin": request.headers.get("origin", "*"),
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "600",
        "vary": "Origin",
    }


@router.options("/embeds", include_in_schema=False)
async def embeds_preflight(request: Request) -> Response:
    return Response(status_code=204, headers=_cors(request))


@router.post(
    "/embeds",
    response_model=EmbedCheckResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EmbedCheckRequest.model_json_schema()}},
        }
    },
)
async def check_embed(request: Request, session: Session) -> JSONResponse:
    """May the calling page (its `Origin` header, set by the browser) embed the widget with
    this token? 200 when its origin is registered for the token's partner (or local, in
    sandbox mode); 403 with the reason otherwise; 401 for an unknown, used or expired token;
    422 for a malformed body. The token is only looked at, not used up."""
    # Every answer, a refusal or a malformed body included, carries the CORS headers: the
    # script must be able to read why (so the body is read here, not by FastAPI).
    headers = _cors(request)
    origin = request.headers.get("origin", "")
    try:
        try:
            payload = EmbedCheckRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise Unprocessable(
                "The body must be JSON with a `token` string", loc=("body", "token")
            ) from exc
        partner_id = await service.partner_of_token(session, payload.token)
        sandbox = request.app.state.settings.is_sandbox
        if not origin or not await origins.origin_allowed(
            session, partner_id, origin, sandbox=sandbox
        ):
            raise Forbidden(service.not_registered(origin))
    except FundlineError as exc:
        rendered = render_error(exc)
        assert rendered is not None
        rendered.headers.update(headers)
        return rendered
    body: dict[str, Any] = EmbedCheckResponse(origin=origin).model_dump()
    return JSONResponse(body, headers=headers)
