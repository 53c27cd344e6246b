"""The request dependency every lending surface shares: the credit policy loaded at start."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fundline.lending.policy import Policy


async def current_policy(request: Request) -> Policy:
    """The credit policy loaded at start (``FUNDLINE_POLICY_FILE`` or the mode's default)."""
    policy: Policy = request.app.state.policy
    return policy


PolicyDep = Annotated[Policy, Depends(current_policy)]
