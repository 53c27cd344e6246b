"""The console's portfolio section (being built)."""

from __future__ import annotations

from fastapi import APIRouter

from fundline.console.pages import PREFIX
from fundline.kit.routing import TransactionalRoute

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=TransactionalRoute)
