"""Which lender serves: the provider ``FUNDLINE_LENDER`` names, built at start."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fundline.config import Lender, Settings
from fundline.lending.builtin import BuiltinLender
from fundline.lending.kanmon.provider import KanmonLender
from fundline.lending.policy import Policy, load_policy
from fundline.lending.provider import LenderProvider


def build_lender(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    policy: Callable[[], Policy] | None = None,
) -> LenderProvider:
    """The provider ``FUNDLINE_LENDER`` names, ready to serve. The built-in lender reads its
    credit policy from ``policy`` at each use (the server's, which tests swap), else loads
    the settings' once."""
    if settings.lender is Lender.KANMON:
        return KanmonLender.from_settings(settings, sessions)
    if policy is None:
        loaded = load_policy(settings)
        policy = lambda: loaded  # noqa: E731
    return BuiltinLender(policy)
