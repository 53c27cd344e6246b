"""``POST /v1/auth/token`` (client credentials): Fundline's two statements (the client, the new
token) and the same argon2 verification of the secret (its parameters are in the stored
hash), which is the work of this endpoint, not overhead. Off the event loop, as many at a time
as the machine has cores: what the machine can do. (Fundline runs one at a time, to bound its
memory: each holds 19 MiB while it runs; this scenario shows what that costs.) The single
insert needs no explicit transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from argon2.exceptions import VerificationError
from argon2.low_level import Type, verify_secret

CLIENT = (
    "SELECT api_clients.partner_id, api_clients.secret_hash, api_clients.disabled_at, "
    "api_clients.id, api_clients.created_at, api_clients.updated_at "
    "FROM api_clients WHERE api_clients.id = $1::UUID"
)
INSERT_TOKEN = (
    "INSERT INTO access_tokens (token_hash, client_id, partner_id, entity_user_id, entity_id, "
    "created_at, expires_at, revoked_at) VALUES ($1::VARCHAR, $2::UUID, $3::UUID, $4::UUID, "
    "$5::UUID, $6::TIMESTAMP WITHOUT TIME ZONE, $7::TIMESTAMP WITHOUT TIME ZONE, "
    "$8::TIMESTAMP WITHOUT TIME ZONE)"
)
TTL = 86_400
_verifier = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="argon2")
_REFUSED = (401, b'{"error":{"message":"Invalid client credentials"}}')


def _verify(secret_hash: bytes, secret: bytes) -> bool:
    try:
        return verify_secret(secret_hash, secret, Type.ID)
    except VerificationError:
        return False


async def handle(pool: asyncpg.Pool, body: bytes) -> tuple[int, bytes]:
    payload = orjson.loads(body)
    async with pool.acquire() as conn:
        client = await conn.fetchrow(CLIENT, payload["client_id"])
        if client is None or client[2] is not None:
            return _REFUSED
        ok = await asyncio.get_running_loop().run_in_executor(
            _verifier, _verify, client[1].encode(), payload["client_secret"].encode()
        )
        if not ok:
            return _REFUSED
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC).replace(tzinfo=None)
        digest = hashlib.sha256(token.encode()).hexdigest()
        await conn.execute(
            INSERT_TOKEN,
            digest,
            client[3],
            client[0],
            None,
            None,
            now,
            now + timedelta(seconds=TTL),
            None,
        )
    return 200, orjson.dumps({"access_token": token, "expires_in": TTL, "token_type": "Bearer"})
