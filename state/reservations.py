"""Checkout holds in Redis: the flow's fenced decision, and the API's record of the request until then.

One hash per reservation (`keys.reservation`): the API writes `request`
(the pending answer) once the broker has taken the `reservation` event; the
inventory flow writes the decision through the version fence
(`state.fence`) into `doc`, beside it. A reader serves `doc` when the flow
has decided, else the pending answer: one round trip.
"""

from __future__ import annotations

from typing import cast

import orjson
import redis
import redis.asyncio as aioredis

from events.orders import HoldStatus, ReservationState
from events.timestamps import rfc3339_ms
from state import keys
from state.doc_writer import FencedDoc

REQUEST_FIELD = "request"


def decided_document(state: ReservationState) -> bytes:
    """The `GET /v1/reservations/{id}` object of a decided reservation.

    >>> decided_document(ReservationState("R1", "A", "S1", 2, HoldStatus.HELD, "", 0.0, 900.0, 0, 2))[:53]
    b'{"reservation_id":"R1","status":"held","reason":null,'
    """
    return orjson.dumps({
        "reservation_id": state.reservation_id,
        "status": state.status.value,
        "reason": state.reason or None,
        "sku": state.sku,
        "location_id": state.location_id,
        "qty": state.qty,
        "fulfilled": state.fulfilled,
        "updated_at": rfc3339_ms(state.updated_at),
        "expires_at": rfc3339_ms(state.expires_at),
    })  # fmt: skip


def decided_doc(state: ReservationState, ttl_s: float) -> FencedDoc:
    """The flow's fenced write of a decision (kept `ttl_s` after its last change)."""
    return FencedDoc(keys.reservation(state.reservation_id), state.version, decided_document(state), ttl_s,
                     state.updated_at)  # fmt: skip


def pending_document(reservation_id: str, sku: str, location_id: str, qty: int, expires_at: float) -> bytes:
    """The answer until the flow decides: what was asked, status `pending`."""
    return orjson.dumps({
        "reservation_id": reservation_id,
        "status": HoldStatus.PENDING.value,
        "reason": None,
        "sku": sku,
        "location_id": location_id,
        "qty": qty,
        "fulfilled": 0,
        "updated_at": None,
        "expires_at": rfc3339_ms(expires_at),
    })  # fmt: skip


class PriorDecisions:
    """The flow's side: decisions it already published, so that a recovery replay keeps them (sync, one round trip).

    A replay after a crash may interleave a SKU's events differently from the
    first pass; a hold's decision is re-made only when it never reached Redis
    (then no one saw it).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def held(self, reservation_ids: list[str]) -> dict[str, bool]:
        """Of `reservation_ids`, those decided before: True when held (whatever became of it since)."""
        pipe = self._client.pipeline(transaction=False)
        for reservation_id in reservation_ids:
            pipe.hget(keys.reservation(reservation_id), keys.DOC_FIELD)
        decided = {}
        for reservation_id, doc in zip(reservation_ids, pipe.execute(), strict=True):
            if doc is not None:
                decided[reservation_id] = orjson.loads(doc)["status"] != HoldStatus.REJECTED.value
        return decided


class ReservationStore:
    """The API's side: record a request as pending, read a reservation (one round trip each)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def record_request(self, reservation_id: str, pending: bytes, ttl_s: float) -> None:
        """Keep the pending answer of a published reservation (the flow's decision lands beside it, maybe first)."""
        pipe = self._client.pipeline(transaction=False)
        key = keys.reservation(reservation_id)
        pipe.hsetnx(key, REQUEST_FIELD, pending)
        pipe.pexpire(key, int(ttl_s * 1000), nx=True)
        await pipe.execute()

    async def recorded(self, reservation_id: str) -> bool:
        """Whether the API recorded the request (it does so once the event is published)."""
        return bool(await self._client.hexists(keys.reservation(reservation_id), REQUEST_FIELD))

    async def read(self, reservation_id: str) -> bytes | None:
        """The decision if the flow made it, else the pending answer, else None (unknown or expired)."""
        decided, pending = await self._client.hmget(keys.reservation(reservation_id), keys.DOC_FIELD, REQUEST_FIELD)
        return cast(bytes | None, decided if decided is not None else pending)
