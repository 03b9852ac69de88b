"""`Idempotency-Key` for POSTs that publish an event: a retry gets the first answer, never a second event.

A route asks `idempotency_key(request)` for the header (a clear 400 when it
is missing or unusable), then `claim_or_replay` with its request's
fingerprint and the answer it would give: the first request with a key gets
`None` and goes on to publish; a retry gets the stored answer back (202,
`Idempotent-Replayed: true`); the same key on a different request gets 422.
Storage is `state.idempotency`.
"""

from __future__ import annotations

import hashlib
import re

import msgspec
from fastapi import Request
from fastapi.responses import Response

from serving.errors import ApiError
from state.idempotency import IdempotencyStore

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")  # printable ASCII, no spaces
REPLAYED_HEADER = "Idempotent-Replayed"


class MissingIdempotencyKey(ApiError):
    """A POST that publishes an event came without a usable `Idempotency-Key` (400)."""

    status_code = 400
    code = "missing_idempotency_key"


class IdempotencyKeyReused(ApiError):
    """The key was first used for a different request (422): reusing it would answer the wrong request."""

    status_code = 422
    code = "idempotency_key_reused"


def idempotency_key(request: Request) -> str:
    """The request's `Idempotency-Key`, or `MissingIdempotencyKey`."""
    key = request.headers.get(HEADER)
    if key is None or not _KEY.match(key):
        problem = "is missing" if key is None else f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        raise MissingIdempotencyKey(f"header {HEADER} {problem}; send a fresh one per request, the same on retries")
    return key


def fingerprint(request_body: msgspec.Struct) -> bytes:
    """A digest of what the request asks (its decoded body), so a reused key on another request is noticed.

    >>> class Ask(msgspec.Struct):
    ...     sku: str
    >>> fingerprint(Ask("A")) == fingerprint(Ask("A")) != fingerprint(Ask("B"))
    True
    """
    return hashlib.sha256(msgspec.json.encode(request_body)).hexdigest().encode()


async def claim_or_replay(
    store: IdempotencyStore, scope: str, key: str, digest: bytes, answer: bytes, ttl_s: float
) -> bytes | None:
    """None when this request is the first with `key` (go on with `answer`); else the answer the first one got.

    A route that publishes must make a replay finish what the first request may not have
    (it may have failed between the claim and the publish): see `serving.routes.reservations`.
    """
    claim = await store.claim(scope, key, digest, answer, ttl_s)
    if claim.first:
        return None
    if not claim.same_request:
        raise IdempotencyKeyReused(f"header {HEADER} {key!r} was first sent with a different request body")
    return claim.answer


def replayed(answer: bytes, status_code: int = 202) -> Response:
    """The stored answer of the first request, marked as a replay."""
    return Response(answer, status_code=status_code, media_type="application/json", headers={REPLAYED_HEADER: "true"})
