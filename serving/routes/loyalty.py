"""`/v1/loyalty`: a member's balances and recent entries, and redemptions decided by the loyalty flow.

`GET /v1/loyalty/{customer_id}` returns the member document the flow stores (available,
pending, tier, rolling spend, the last ledger entries). `POST .../redemptions` with an
`Idempotency-Key` publishes a `redemption` event to `omni.members` (acknowledged by the broker
before anything is answered) and waits up to `OMNISTREAM_LOYALTY_REDEMPTION_WAIT_MS` for the
flow's decision: 201 accepted, 409 `insufficient_points` (refused by the flow, in event order),
or 202 while still undecided (then `GET .../redemptions/{redemption_id}`). A retry with the same
key publishes the same event again (the redemption id is derived from the key; the flow drops a
decided one) and gets the same answer: the decision.

Refused before publishing, and not remembered under the key: an unknown member (404), bad points
or body (422).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from events.models import MAX_QTY
from events.timestamps import rfc3339_ms
from omnistream.settings import LoyaltySettings
from serving.errors import NotFound, error_response
from serving.fast_paths import FastRoute
from serving.idempotency import HEADER, REDEMPTION_KEYS, claim_or_replay, derived_id, fingerprint, idempotency_key
from serving.schemas import error_responses
from state import keys
from state.idempotency import IdempotencyStore
from state.loyalty_reader import LoyaltyReader
from state.loyalty_requests import RequestLog

MAX_ID_LENGTH = 256
POLL_S = 0.003

router = APIRouter(prefix="/v1/loyalty", tags=["loyalty"], responses=error_responses(422, 503))

CustomerId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The loyalty member's id.")]
RedemptionId = Annotated[str, Path(min_length=1, max_length=64, description="The id a POST answered with.")]


class RedemptionBody(BaseModel):
    """The body of `POST /v1/loyalty/{customer_id}/redemptions`."""

    model_config = ConfigDict(extra="forbid")

    points: int = Field(ge=1, le=MAX_QTY, description="Points to spend (whole points, at least 1).")
    channel: Literal["web", "app", "pos"] = Field("web", description="Where the points are spent.")
    order_ref: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH, description="The order paid with them.")


@dataclass
class LoyaltyDesk:
    """What the loyalty routes need, built once by the app's lifespan."""

    reader: LoyaltyReader
    requests: RequestLog
    idempotency: IdempotencyStore
    settings: LoyaltySettings

    async def wait_for(self, customer_id: str, redemption_id: str, wait_s: float) -> bytes | None:
        """The decision once readable, or None at the deadline. The request is published by now: a Redis
        read that times out while waiting is tried again, not turned into an error (the answer would be
        a 503 for a request that is being decided)."""
        deadline = time.perf_counter() + wait_s
        while True:
            try:
                doc = await self.reader.decision(customer_id, redemption_id)
            except (RedisError, OSError):
                doc = None
            if doc is not None or time.perf_counter() >= deadline:
                return doc
            await asyncio.sleep(POLL_S)


def desk(request: Request) -> LoyaltyDesk:
    found: LoyaltyDesk = request.app.state.loyalty
    return found


def _json(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def _answer(decision: bytes | None, customer_id: str, redemption_id: str) -> Response:
    if decision is None:
        href = f"/v1/loyalty/{customer_id}/redemptions/{redemption_id}"
        return _json(orjson.dumps({"redemption_id": redemption_id, "customer_id": customer_id, "status": "pending",
                                   "href": href}), 202)  # fmt: skip
    parsed = orjson.loads(decision)
    if parsed["status"] == "accepted":
        return _json(decision, 201)
    body = {"error": {"code": parsed["reason"], "message": _REFUSALS.get(parsed["reason"], "refused")},
            "redemption": parsed}  # fmt: skip
    return _json(orjson.dumps(body), 409)


_REFUSALS = {
    "insufficient_points": "the available balance does not cover the points asked for",
    "unknown_customer": "no loyalty account has this customer id",
}


@router.get("/{customer_id}", responses=error_responses(404))
async def read_member(customer_id: CustomerId, request: Request) -> Response:
    """Available and pending points, tier, rolling spend, and the member's last ledger entries (newest first)."""
    return _json(await member_body(request.app, customer_id))


async def member_body(api: FastAPI, customer_id: str, _: Sequence[tuple[str, str]] = ()) -> bytes:
    """The member's document as the loyalty flow shaped it; `NotFound` without an account."""
    loyalty: LoyaltyDesk = api.state.loyalty
    doc = await loyalty.reader.member(customer_id)
    if doc is None:
        raise NotFound(f"no loyalty account for customer {customer_id!r}")
    return doc


FAST_ROUTE = FastRoute("/v1/loyalty/{customer_id}", member_body, max_segment=MAX_ID_LENGTH, query=False)


@router.post("/{customer_id}/redemptions", status_code=201, responses=error_responses(404, 409))
async def redeem(
    customer_id: CustomerId,
    body: RedemptionBody,
    request: Request,
    idempotency_key_header: Annotated[str | None, Header(alias=HEADER, max_length=256)] = None,
) -> Response:
    """Spend points: decided by the loyalty flow in the member's event order, never below zero."""
    loyalty = desk(request)
    key = idempotency_key(idempotency_key_header, REDEMPTION_KEYS)
    redemption_id = derived_id("rd", customer_id, key)
    record = keys.loyalty_idempotency(customer_id, key)
    digest = fingerprint((customer_id, body.model_dump()))
    first_id = await claim_or_replay(loyalty.idempotency, record, digest, redemption_id.encode(),
                                     loyalty.settings.redemption_ttl_s)  # fmt: skip
    wait_s = loyalty.settings.redemption_wait_ms / 1000
    if first_id is not None:  # a retry: the first request's answer, once decided
        redemption_id = first_id.decode()
        decided = await loyalty.reader.decision(customer_id, redemption_id)
        if decided is not None:
            return _answer(decided, customer_id, redemption_id)
    else:
        member = await loyalty.reader.member(customer_id)
        refusal = _precheck(member, customer_id)
        if refusal is not None:
            await loyalty.idempotency.release(record)
            return refusal
    event = {"event_id": redemption_id, "type": "redemption", "ts": rfc3339_ms(time.time()), "schema_version": 1,
             "customer_id": customer_id, "redemption_id": redemption_id, "points": body.points,
             "channel": body.channel}  # fmt: skip
    if body.order_ref is not None:
        event["order_ref"] = body.order_ref
    # A retry publishes the same event again: the first publish may not have reached the broker, and the
    # flow drops a redemption id it already decided.
    await loyalty.requests.publish(customer_id, orjson.dumps(event))
    return _answer(await loyalty.wait_for(customer_id, redemption_id, wait_s), customer_id, redemption_id)


def _precheck(member: bytes | None, customer_id: str) -> Response | None:
    """Refuse a member the flow never saw, before anything is published (the only refusal not the flow's).

    The balance is not checked here: the flow decides every redemption of a known member, so that a
    key's answer is always its redemption's decision, whatever retries and timeouts came between.
    """
    if member is None:
        return error_response(404, "not_found", f"no loyalty account for customer {customer_id!r}")
    return None


@router.get("/{customer_id}/redemptions/{redemption_id}", responses=error_responses(404))
async def read_redemption(customer_id: CustomerId, redemption_id: RedemptionId, request: Request) -> Response:
    """The flow's decision on one redemption (202 with `status: pending` until decided)."""
    loyalty = desk(request)
    decided = await loyalty.reader.decision(customer_id, redemption_id)
    if decided is None:
        raise NotFound(f"no decided redemption {redemption_id!r} for customer {customer_id!r} (pending or unknown)")
    return _answer(decided, customer_id, redemption_id)
