"""`Idempotency-Key` for POSTs that act (publish an event): a retry gets the first answer, never a second action.

One piece of code serves every such route (reservations, loyalty redemptions). A route reads the
header with `idempotency_key(raw, rule)` (its `KeyRule` says which keys it takes and how it
refuses one: both rules are in CONTRACT.md), names the record in `state.keys`, and calls
`claim_or_replay` with its request's `fingerprint` and the payload to keep: the first request with
a key gets `None` and goes on to act; a retry gets the stored payload back; the same key on a
different request gets 422 `idempotency_key_reused`. A route that refuses a request after claiming
its key, before acting, releases it (`IdempotencyStore.release`). Storage is `state.idempotency`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from fastapi.responses import Response

from serving.errors import ApiError, InvalidParameter
from state.idempotency import IdempotencyStore

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class MissingIdempotencyKey(ApiError):
    """A POST that publishes an event came without a usable `Idempotency-Key` (400)."""

    status_code = 400
    code = "missing_idempotency_key"


class IdempotencyKeyReused(ApiError):
    """The key was first used for a different request (422): reusing it would answer the wrong request."""

    status_code = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class KeyRule:
    """Which `Idempotency-Key` values a route takes, and the error for one it does not (given the problem)."""

    pattern: re.Pattern[str]
    missing: str  # the problem with no key, as the error message says it
    malformed: str  # the problem with a key that does not match `pattern`
    refuse: Callable[[str], ApiError]


RESERVATION_KEYS = KeyRule(
    re.compile(r"^[\x21-\x7e]{1,255}$"),  # printable ASCII, no spaces
    "is missing",
    "must be 1 to 255 printable ASCII characters",
    lambda problem: MissingIdempotencyKey(
        f"header {HEADER} {problem}; send a fresh one per request, the same on retries"
    ),
)
"""`POST /v1/reservations`: 400 `missing_idempotency_key`."""

REDEMPTION_KEYS = KeyRule(
    re.compile(r"^[A-Za-z0-9._:\-]{1,128}$"),
    "required (1-128 of A-Z a-z 0-9 . _ : -)",
    "required (1-128 of A-Z a-z 0-9 . _ : -)",
    lambda problem: InvalidParameter(HEADER, f"{problem}; retries reuse it"),
)
"""`POST /v1/loyalty/{customer_id}/redemptions`: 422 `invalid_parameter` naming the header."""


def idempotency_key(raw: str | None, rule: KeyRule) -> str:
    """The header's value, or the rule's error.

    >>> idempotency_key("3f1c-aa.1", REDEMPTION_KEYS)
    '3f1c-aa.1'
    >>> idempotency_key(None, REDEMPTION_KEYS)
    Traceback (most recent call last):
    ...
    serving.errors.InvalidParameter: Idempotency-Key: required (1-128 of A-Z a-z 0-9 . _ : -); retries reuse it
    >>> idempotency_key("a key", RESERVATION_KEYS)
    Traceback (most recent call last):
    ...
    serving.idempotency.MissingIdempotencyKey: header Idempotency-Key must be 1 to 255 printable ASCII characters; \
send a fresh one per request, the same on retries
    """
    if raw is None:
        raise rule.refuse(rule.missing)
    if not rule.pattern.match(raw):
        raise rule.refuse(rule.malformed)
    return raw


def fingerprint(request: object) -> bytes:
    """A digest of what the request asks (its decoded body, with the entity of its path if any).

    Structs keep their declared field order, dict keys are sorted: the same request always
    gives the same digest, whatever order the client sent the fields in.

    >>> class Ask(msgspec.Struct):
    ...     sku: str
    >>> fingerprint(Ask("A")) == fingerprint(Ask("A")) != fingerprint(Ask("B"))
    True
    >>> fingerprint(("C1", {"points": 5, "channel": "web"})) == fingerprint(("C1", {"channel": "web", "points": 5}))
    True
    """
    return hashlib.sha256(msgspec.json.encode(request, order="deterministic")).hexdigest().encode()


def derived_id(prefix: str, *parts: str) -> str:
    """The id of the action a key stands for, derived from it (so even a forgotten key maps to the same action).

    >>> derived_id("rd", "C1", "key-1")
    'rd_3134395129c862e5b70692e0'
    """
    return f"{prefix}_{hashlib.sha256(chr(31).join(parts).encode()).hexdigest()[:24]}"


async def claim_or_replay(
    store: IdempotencyStore, name: str, digest: bytes, payload: bytes, ttl_s: float
) -> bytes | None:
    """None when this request is the first with its key (go on, `payload` is kept); else the first one's payload.

    `name` is the record's Redis key (`state.keys`). A route that publishes must make a replay
    finish what the first request may not have (it may have failed between the claim and the
    publish): see `serving.routes.reservations` and `serving.routes.loyalty`.
    """
    claim = await store.claim(name, digest, payload, ttl_s)
    if claim.first:
        return None
    if not claim.same_request:
        raise IdempotencyKeyReused(f"header {HEADER}: already used for a different request; use a new key for it")
    return claim.payload


def replayed(answer: bytes, status_code: int = 202) -> Response:
    """The stored answer of the first request, marked as a replay."""
    return Response(answer, status_code=status_code, media_type="application/json", headers={REPLAYED_HEADER: "true"})
