"""``/health``, ``/ready`` and ``/metrics``: public, unversioned, not rate-limited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from fundline.kit.db import Database
from fundline.kit.metrics import registry
from fundline.operations.migrations import current_revision, head_revision

router = APIRouter(tags=["Operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Public. The process is up and answering."""
    return {"status": "ok"}


@router.get("/ready", response_model=None)
async def ready(request: Request) -> JSONResponse | dict[str, str]:
    """Public. The database answers and its schema is at the latest migration."""
    db: Database = request.app.state.db
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revision)
    except Exception:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, 503)
    head = head_revision()
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": f"migrations at {current or 'none applied'}, expected {head}",
            },
            503,
        )
    return {"status": "ready", "migration": head or ""}


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    """Public. Prometheus text exposition."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
