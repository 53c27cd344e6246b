"""docs/webhooks.md stays true: its verification example accepts what Fundline signs and
refuses a changed body, and it names every object type Fundline emits events for."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fundline.kit import clock
from fundline.webhooks.outbox import OBJECT_TYPES, WEBHOOK_SUBSCRIPTION
from fundline.webhooks.schemas import WebhookObjectType
from fundline.webhooks.signing import new_secret, signature_headers

Verifier = Callable[[str, bytes, dict[str, str]], bool]


@pytest.fixture
def guide(repo_root: Path) -> str:
    return (repo_root / "docs/webhooks.md").read_text()


def example(guide: str) -> dict[str, Any]:
    """The names the guide's Python example defines."""
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    assert len(blocks) == 1
    names: dict[str, Any] = {}
    exec(blocks[0], names)
    return names


def test_the_verification_example_works(guide: str) -> None:
    names = example(guide)
    verifiers: list[Verifier] = [names["verify_monite"], names["verify_standard"]]
    secret, body = new_secret(), b'{"id": "an event"}'
    headers = signature_headers(secret, event_id=uuid.uuid4(), body=body, at=clock.system_now())
    for verify in verifiers:
        assert verify(secret, body, headers)
        assert not verify(secret, body + b" ", headers)
        assert not verify(new_secret(), body, headers)
    stale = signature_headers(
        secret, event_id=uuid.uuid4(), body=body, at=clock.system_now().replace(year=2020)
    )
    assert not any(verify(secret, body, stale) for verify in verifiers)


def test_every_object_type_with_events_is_listed(guide: str) -> None:
    for object_type in [*OBJECT_TYPES.values(), WEBHOOK_SUBSCRIPTION]:
        assert WebhookObjectType(object_type)
        assert f"| `{object_type}` |" in guide, object_type
