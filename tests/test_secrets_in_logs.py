"""The end-of-session check for secrets in logs can find one (tests/support/secrets_in_logs.py)."""

from __future__ import annotations

from fundline.kit import security
from fundline.webhooks import signing
from tests.support.secrets_in_logs import find_leaks


def test_a_minted_token_in_a_line_is_found_however_it_is_written() -> None:
    token = security.new_token("fct_")
    bare = security.new_token()
    secret = signing.new_secret()
    lines = [
        f'{{"event": "request", "path": "/connect/v1/frame?token={token}"}}',
        f"Authorization: Bearer {bare}",
        f"random part alone: {token.removeprefix('fct_')}",
        f'{{"secret": "{secret}"}}',
    ]
    found = find_leaks([("test", line) for line in lines])
    assert len(found) >= len(lines)
    assert all(entry.startswith("test: ") for entry in found)


def test_a_token_minted_elsewhere_is_found_by_its_prefix() -> None:
    line = "operator key fko_" + "A" * 43 + " used"
    assert find_leaks([("server.log", line)]) == ["server.log: fko_AAAAAA…"]


def test_ordinary_lines_are_not_leaks() -> None:
    lines = [
        '{"event": "request", "path": "/v1/entities/3fa85f64-5717-4562-b3fc-2c963f66afa6"}',
        "fundline_started url=http://127.0.0.1:8000 database=sqlite+aiosqlite:///./fundline.db",
        "a long word: " + "abcdefghijklmnopqrstuvwxyz",
    ]
    assert find_leaks([("test", line) for line in lines]) == []
