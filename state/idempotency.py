"""Idempotency-Key records: what the first request under a key stood for, kept so that its retries get the same.

A POST that acts (publishes a reservation, a redemption) must not act twice when the client
retries it. The first request with a key claims it and stores, under the key, a fingerprint of
its body beside a payload of the route's choosing (the reservations' whole answer, the
redemption id): `SET NX GET`, one command, so two racing first uses cannot both win and a
retry reads the binding in the same round trip. A retry finds the claim and gets the payload,
or a refusal from the route when its body differs (the same key reused for another request).

One record is one string key, named by the route in `state.keys` (`idempotency` for
reservations, `loyalty_idempotency` in the member's slot for redemptions): nothing here
touches two keys, so it is Cluster-safe whatever the names. The value is
`<fingerprint>\\n<payload>`; a loyalty record written before the two routes shared this module
(JSON `{"fingerprint", "action_id"}`) is still read (docs/loyalty.md, "Idempotency-Key").
"""

from __future__ import annotations

from typing import NamedTuple

import orjson
import redis.asyncio as aioredis


class Claim(NamedTuple):
    """What `IdempotencyStore.claim` found: `first` when this request claimed the key."""

    first: bool
    same_request: bool  # the stored request had the same fingerprint (always True when `first`)
    payload: bytes  # what the request that claimed the key stored (its answer, its action's id)


def encode_record(fingerprint: bytes, payload: bytes) -> bytes:
    r"""The stored value of a claim.

    >>> encode_record(b"9f2c", b'{"id": 1}')
    b'9f2c\n{"id": 1}'
    """
    return fingerprint + b"\n" + payload


def decode_record(raw: bytes) -> tuple[bytes, bytes]:
    """The fingerprint and payload of a stored value, whichever of the two layouts wrote it.

    >>> decode_record(b'9f2c\\n{"id": 1}')
    (b'9f2c', b'{"id": 1}')
    >>> decode_record(b'{"fingerprint": "9f2c", "action_id": "rd_1"}')  # written by the older loyalty route
    (b'9f2c', b'rd_1')
    """
    if raw.startswith(b"{"):  # fingerprints are hex digests: only the older JSON layout starts with a brace
        legacy = orjson.loads(raw)
        return str(legacy["fingerprint"]).encode(), str(legacy["action_id"]).encode()
    fingerprint, _, payload = raw.partition(b"\n")
    return fingerprint, payload


class IdempotencyStore:
    """Claims of Idempotency-Keys with what they stand for, each kept `ttl_s`.

    Parameters
    ----------
    client
        The API's asyncio Redis client.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def claim(self, name: str, fingerprint: bytes, payload: bytes, ttl_s: float) -> Claim:
        """Claim the record `name` for a request whose body hashes to `fingerprint`, storing `payload`.

        Concurrent requests with one key: exactly one is `first`; the others get its payload.
        """
        stored = await self._client.set(name, encode_record(fingerprint, payload), nx=True, px=int(ttl_s * 1000),
                                        get=True)  # fmt: skip
        if stored is None:
            return Claim(True, True, payload)
        raw = stored.encode() if isinstance(stored, str) else stored
        assert isinstance(raw, bytes), f"SET GET answered {raw!r}"
        stored_fingerprint, stored_payload = decode_record(raw)
        return Claim(False, stored_fingerprint == fingerprint, stored_payload)

    async def release(self, name: str) -> None:
        """Forget a claim whose request was refused before it acted, so a corrected retry is a new attempt."""
        await self._client.delete(name)
