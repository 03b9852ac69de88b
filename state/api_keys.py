"""API keys in Redis: created and revoked by `omnistream keys`, looked up by the API on each request.

A key is 32 random bytes (`osk_` + URL-safe base64) shown once, when it is made. Redis keeps
only its SHA-256, as a field of one hash (`state.keys.api_keys`), with the record: the key's
short id (the first 12 hex digits of that hash, what lists, logs and revocations name), its
role, a label and its optional own rate limit. A plain hash suffices: the keys are random, not
passwords, so nobody can search the hash space for them, and a lookup costs one HGET.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

from state import keys

KEY_PREFIX = "osk_"
ID_LENGTH = 12


class KeyRecord(msgspec.Struct, frozen=True):
    """What is stored about a key (never the key): its id, role, label, creation time and rate override."""

    id: str
    role: str
    name: str
    created_at: float
    rate_per_s: float | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(KeyRecord).decode


def key_hash(key: str | bytes) -> str:
    """The SHA-256 hex digest a key is stored under.

    >>> key_hash("osk_example")[:12]
    '3ca8c04ce86f'
    """
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).hexdigest()


def new_key() -> str:
    """A fresh random key (43 URL-safe characters after the prefix)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just made: the secret (shown once) and its stored record."""

    key: str
    record: KeyRecord


class KeyStore:
    """Creates, lists and revokes keys (the CLI's side: a blocking client)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def create(self, role: str, name: str = "", rate_per_s: float | None = None, now: float | None = None) -> IssuedKey:
        """Make and store a key for `role`; the returned secret is not kept anywhere."""
        key = new_key()
        digest = key_hash(key)
        record = KeyRecord(
            id=digest[:ID_LENGTH],
            role=role,
            name=name,
            created_at=time.time() if now is None else now,
            rate_per_s=rate_per_s,
        )
        self.client.hset(keys.api_keys(), digest, _encode(record))
        return IssuedKey(key, record)

    def records(self) -> list[KeyRecord]:
        """Every stored key's record, oldest first."""
        stored: dict[Any, Any] = self.client.hgetall(keys.api_keys())
        return sorted((_decode(value) for value in stored.values()), key=lambda r: (r.created_at, r.id))

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Delete the key whose id is `key_id` (or starts with it, when that names one key); its record, or None.

        Raises `ValueError` when the prefix names more than one key.
        """
        stored: dict[Any, Any] = self.client.hgetall(keys.api_keys())
        matches = [(field, _decode(value)) for field, value in stored.items() if _decode(value).id.startswith(key_id)]
        if not key_id or len(matches) > 1:
            raise ValueError(f"{key_id!r} names {len(matches)} keys; give more of the id")
        if not matches:
            return None
        field, record = matches[0]
        self.client.hdel(keys.api_keys(), field)
        return record


class KeyLookup:
    """The API's side: the record of a presented key, or None (one HGET; callers cache)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._hash_key = keys.api_keys()

    async def record(self, key: bytes) -> KeyRecord | None:
        stored = await self.client.hget(self._hash_key, key_hash(key))
        return None if stored is None else _decode(stored)
