"""Tenant scope in one place: a session scoped to an entity sees and changes that entity's rows
only, whatever the query forgets to say.

A model whose rows belong to one entity inherits ``EntityOwned``. Once a request knows its
entity (``auth.deps`` for ``/v1``, the Connect session for ``/connect/v1``), it calls
``scope_to(session, entity_id)``; from then on every ORM ``SELECT``, ``UPDATE`` and ``DELETE``
the session runs carries ``entity_id = <that entity>`` for each ``EntityOwned`` model in it,
aliases and relationship loads included (SQLAlchemy's ``with_loader_criteria``). Another
entity's row is therefore not found, which the endpoints answer with a 404.

Statements that bypass the ORM (``kit.statements.Prepared`` on a driver connection) state the
entity themselves; ``tests/support/tenancy_guard.py`` checks every statement a request sends,
so one that forgets fails a test. A statement that must cross entities inside a scoped session (none
does today) says so with ``execution_options(**ACROSS_ENTITIES)``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

_SCOPE = "fundline.entity_id"
ACROSS_ENTITIES: dict[str, Any] = {"fundline_across_entities": True}


class EntityOwned:
    """Marker for models whose rows belong to one entity, through their ``entity_id``.

    Each model declares its own ``entity_id`` column (with its foreign key and indexes); this
    one stands in for them when SQLAlchemy reads the scope's criteria once for all.
    """

    entity_id: Mapped[uuid.UUID] = mapped_column()


def scope_to(session: AsyncSession | Session, entity_id: uuid.UUID) -> None:
    """Scope ``session`` to ``entity_id`` for the rest of its life (one request)."""
    current = session.info.get(_SCOPE)
    if current is not None and current != entity_id:
        raise RuntimeError("a session is scoped to one entity; it cannot change")
    session.info[_SCOPE] = entity_id


def scope_of(session: AsyncSession | Session) -> uuid.UUID | None:
    """The entity ``session`` is scoped to, if any."""
    entity_id: uuid.UUID | None = session.info.get(_SCOPE)
    return entity_id


class ScopedSession(Session):
    """The session class every ``Database`` uses: it honours ``scope_to``."""


@event.listens_for(ScopedSession, "do_orm_execute")
def _entity_criteria(state: ORMExecuteState) -> None:
    entity_id = state.session.info.get(_SCOPE)
    if entity_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("fundline_across_entities"):
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            EntityOwned, lambda cls: cls.entity_id == entity_id, include_aliases=True
        )
    )
