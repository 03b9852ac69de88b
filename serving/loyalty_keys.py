"""The loyalty redemptions' `Idempotency-Key` header: what a key may be, and the fingerprint of a request.

The binding of a key to its first request lives in Redis (`state.loyalty_keys`); this module is
the HTTP side: the header's rules (so a bad key is a clear 422) and a stable fingerprint of the
request, so a retry with a different body under a used key is refused instead of answered
with another request's result.
"""

from __future__ import annotations

import hashlib
import re

import orjson

from serving.errors import InvalidParameter

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def checked_key(raw: str | None) -> str:
    """The header's value, or `InvalidParameter` naming the header.

    >>> checked_key("3f1c-aa.1")
    '3f1c-aa.1'
    >>> checked_key(None)
    Traceback (most recent call last):
    ...
    serving.errors.InvalidParameter: Idempotency-Key: required (1-128 of A-Z a-z 0-9 . _ : -); retries reuse it
    """
    if raw is None or not _KEY.match(raw):
        raise InvalidParameter(HEADER, "required (1-128 of A-Z a-z 0-9 . _ : -); retries reuse it")
    return raw


def fingerprint(*parts: object) -> str:
    """A stable digest of a request's meaningful parts (path entity, body fields).

    >>> fingerprint("C1", {"points": 5}) == fingerprint("C1", {"points": 5}), fingerprint("C1", {"points": 6})[:8]
    (True, '7b8accb1')
    """
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def action_id(prefix: str, *parts: str) -> str:
    """The id of the action a key stands for, derived from it (so even a forgotten key maps to the same action).

    >>> action_id("rd", "C1", "key-1")
    'rd_3134395129c862e5b70692e0'
    """
    return f"{prefix}_{hashlib.sha256(chr(31).join(parts).encode()).hexdigest()[:24]}"
