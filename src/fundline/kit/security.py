"""Secrets, hashes and signed tokens.

Client secrets are hashed with argon2 (slow on purpose); access tokens and operator keys are
256-bit random strings, so a SHA-256 digest is enough to store them and fast to look up.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import anyio
import anyio.to_thread
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature
from itsdangerous import Signer as ItsdangerousSigner

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Each verification holds 19 MiB while it runs; without a bound, a burst of token requests
# would run one per worker thread (40) and the process would grow by hundreds of MB.
_verifications = anyio.CapacityLimiter(1)


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


async def verify_secret(secret_hash: str, secret: str) -> bool:
    """Check a secret against its argon2 hash, off the event loop."""

    def check() -> bool:
        try:
            return _hasher.verify(secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check, limiter=_verifications)


# A valid hash of a random secret, verified when the client id is unknown, so a wrong id takes
# as long as a wrong secret.
DUMMY_SECRET_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Signer:
    """Signs small JSON payloads (pagination cursors); a tampered token fails to load.

    A token is the payload's JSON in URL-safe base64, a dot and its HMAC (itsdangerous, keyed
    per purpose): one is made on most list requests, so it is kept to a few microseconds.
    """

    def __init__(self, key: str) -> None:
        self._key = key
        self._signers: dict[str, ItsdangerousSigner] = {}

    def _signer(self, purpose: str) -> ItsdangerousSigner:
        signer = self._signers.get(purpose)
        if signer is None:
            signer = self._signers[purpose] = ItsdangerousSigner(self._key, salt=purpose)
        return signer

    def dumps(self, payload: Any, *, purpose: str) -> str:
        encoded = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=")
        return self._signer(purpose).sign(encoded).decode()

    def loads(self, token: str, *, purpose: str) -> Any:
        """Return the payload, or raise ``ValueError`` if the token was not signed by us."""
        try:
            encoded = self._signer(purpose).unsign(token)
        except BadSignature as exc:
            raise ValueError("bad signature") from exc
        # Signed by us, so well-formed.
        return orjson.loads(base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4)))
