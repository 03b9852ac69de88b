"""`/v1/reservations`: checkout and pick-up holds, asked here, decided by the inventory flow.

`POST` checks the request, claims its `Idempotency-Key`, publishes one
`reservation` event to the inventory topic (the flow stays the single writer
of stock, and decides in event order: two shoppers racing for the last unit
get exactly one hold), records the request, and answers 202 with the
reservation id. A retry with the key gets the same id; if the first request
stopped before recording (a broker or Redis failure, a crash), the retry
publishes the same event again (the same `event_id`: the flow drops a
duplicate), so a reservation is never left unpublished behind a 202. `GET` shows
`pending` until the flow has decided, then `held` / `rejected`, and later
`expired`, `fulfilled` or `cancelled` (CONTRACT.md "Reservations").
Nothing reaches Kafka for a request that fails a check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Annotated

import msgspec
import orjson
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import Response

from events.models import Id, PositiveQty
from events.timestamps import rfc3339_ms
from events.topics import Topic
from omnistream.settings import Settings
from serving.errors import ApiError, InvalidParameter, NotFound
from serving.fast_paths import FastRoute
from serving.idempotency import HEADER, RESERVATION_KEYS, claim_or_replay, fingerprint, idempotency_key, replayed
from serving.schemas import Reservation, ReservationAccepted, ReservationBody, error_responses
from state import keys
from state.event_log import EventLog, PublishFailed
from state.idempotency import IdempotencyStore
from state.reservations import ReservationStore, pending_document

MAX_ID_LENGTH = 256
SCOPE = "reservations"  # of the Idempotency-Key records (`state.keys.idempotency`)

router = APIRouter(prefix="/v1/reservations", tags=["reservations"], responses=error_responses(422, 503))

ReservationId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The reservation id.")]


class ReservationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The POST body: hold `qty` of `sku` at `location_id` for `hold_s` seconds (default: the configured hold)."""

    sku: Id
    location_id: Id
    qty: PositiveQty
    hold_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


_DECODER = msgspec.json.Decoder(ReservationRequest)


class InvalidBody(ApiError):
    """The body is not the JSON object the route takes (422); the message says where."""

    status_code = 422
    code = "invalid_body"


class UnknownEntity(ApiError):
    """The SKU, or the SKU at that location, has no stock record (404)."""

    status_code = 404

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PublishUnavailable(ApiError):
    """The broker did not take the event in time (503); nothing was reserved, retry with the same key."""

    status_code = 503
    code = "backend_unavailable"


_BODY_SCHEMA = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": ReservationBody.model_json_schema()}}}}  # fmt: skip


@router.post("", status_code=202, responses={202: {"model": ReservationAccepted}, **error_responses(400, 404)},
             openapi_extra=_BODY_SCHEMA)  # fmt: skip
async def create_reservation(request: Request) -> Response:
    """Ask for a hold: 202 with the reservation id; `GET /v1/reservations/{id}` tells held or rejected."""
    settings: Settings = request.app.state.settings
    key = idempotency_key(request.headers.get(HEADER), RESERVATION_KEYS)
    try:
        ask = _DECODER.decode(await request.body())
    except msgspec.ValidationError as ex:
        raise InvalidBody(f"body: {ex}") from None
    except msgspec.DecodeError as ex:
        raise InvalidBody(f"body: not a JSON object ({ex})") from None
    hold_s = settings.reservations.hold_s if ask.hold_s is None else ask.hold_s
    if hold_s > settings.reservations.max_hold_s:
        raise InvalidParameter("hold_s", f"at most {settings.reservations.max_hold_s:g} seconds")
    await _check_stock_record(request, ask)

    reservation_id = f"rsv-{uuid.uuid4().hex}"
    answer = orjson.dumps({"reservation_id": reservation_id, "status": "pending",
                           "location": f"/v1/reservations/{reservation_id}"})  # fmt: skip
    idempotency: IdempotencyStore = request.app.state.idempotency
    digest = fingerprint(msgspec.structs.replace(ask, hold_s=hold_s))
    first_answer = await claim_or_replay(idempotency, keys.idempotency(SCOPE, key), digest, answer,
                                         settings.reservations.idempotency_ttl_s)  # fmt: skip
    store: ReservationStore = request.app.state.reservations
    if first_answer is not None:
        reservation_id = orjson.loads(first_answer)["reservation_id"]
        if await store.recorded(reservation_id):
            return replayed(first_answer)
        # The first request stopped before its event was surely published (a timeout, a crash): finish
        # its work under its reservation id. Its event, if it did go out, has the same event_id, which
        # the flow drops as a duplicate.
        answer = first_answer

    now = time.time()
    event = {"event_id": reservation_id, "type": "reservation", "ts": rfc3339_ms(now), "schema_version": 1,
             "reservation_id": reservation_id, "sku": ask.sku, "location_id": ask.location_id, "qty": ask.qty,
             "hold_s": hold_s}  # fmt: skip
    log: EventLog = request.app.state.event_log
    try:
        await log.publish(settings.topic(Topic.INVENTORY), ask.sku.encode(), orjson.dumps(event))
    except PublishFailed as ex:
        raise PublishUnavailable(f"the broker did not take the reservation ({ex}); retry with the same key") from None
    # Recorded only once published: a reservation with its request recorded is surely on its way to the flow.
    pending = pending_document(reservation_id, ask.sku, ask.location_id, ask.qty, now + hold_s)
    await store.record_request(reservation_id, pending, settings.reservations.doc_ttl_s)
    return Response(answer, status_code=202, media_type="application/json",
                    headers={"Location": f"/v1/reservations/{reservation_id}"})  # fmt: skip


@router.get("/{reservation_id}", responses={200: {"model": Reservation}, **error_responses(404)})
async def read_reservation(reservation_id: ReservationId, request: Request) -> Response:
    """A reservation: `pending` until the inventory flow decides, then its decision and what became of it."""
    return Response(await reservation_body(request.app, reservation_id), media_type="application/json")


async def reservation_body(api: FastAPI, reservation_id: str, _: Sequence[tuple[str, str]] = ()) -> bytes:
    """The reservation's document (pending, or the flow's decision); `NotFound` for an unknown or expired one.

    Checkouts poll it until the decision shows, so it is one of the reads `serving.fast_paths` answers.
    """
    store: ReservationStore = api.state.reservations
    doc = await store.read(reservation_id)
    if doc is None:
        raise NotFound(f"no reservation {reservation_id!r} (unknown, or expired)")
    return doc


FAST_ROUTE = FastRoute("/v1/reservations/{reservation_id}", reservation_body, max_segment=MAX_ID_LENGTH,
                       query=False)  # fmt: skip


async def _check_stock_record(request: Request, ask: ReservationRequest) -> None:
    """404 for a SKU with no stock record, or no record at the location: a hold there could never be granted."""
    client = request.app.state.redis
    sellable = await client.hget(keys.stock(ask.sku), keys.SELLABLE_FIELD)
    if sellable is None:
        raise UnknownEntity("unknown_sku", f"sku: no stock record for {ask.sku!r}")
    if ask.location_id not in orjson.loads(sellable):
        raise UnknownEntity("unknown_location", f"location_id: no stock record for {ask.sku!r} at {ask.location_id!r}")
