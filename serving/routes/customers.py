"""`/v1/customers`, `/v1/segments`, `/v1/triggers/stream`: the customers flow's state, for consoles and
marketing tools.

The customers flow stores each customer's document already shaped as `GET /v1/customers/{id}`
serves it (lifecycle, RFM inputs, channels, preferred store, expected value, reasons), and
keeps one sorted set per segment in step with it (`state.customer_writer`), so the handlers
make one Redis call and return stored bytes. Members are listed in customer-id order with a
cursor (the last id of the page), which stays valid while members come and go. The trigger
stream is the Redis mirror of `omni.triggers` as server-sent events, resumable with
`Last-Event-ID`: the alerts stream's code (`serving.sse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import orjson
from fastapi import APIRouter, FastAPI, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from events.triggers import TriggerKind
from operators.customers.doc import scores_slot
from operators.customers.lifecycle import SEGMENTS
from operators.customers.population import RankedPopulation
from serving.deps import CustomerReaderDep, SettingsDep
from serving.errors import InvalidParameter, NotFound
from serving.fast_paths import FastRoute
from serving.schemas import error_responses
from serving.sse import stream_response
from state.customer_reader import CustomerReader, tail_triggers

MAX_ID_LENGTH = 256
MAX_PAGE = 1000
_KINDS = tuple(kind.value for kind in TriggerKind)

customers_router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=error_responses(422, 503))
segments_router = APIRouter(prefix="/v1/segments", tags=["customers"], responses=error_responses(422, 503))
triggers_router = APIRouter(prefix="/v1/triggers", tags=["customers"], responses=error_responses(422, 503))

CustomerId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The loyalty / web user id.")]
SegmentName = Annotated[str, Path(max_length=64, description=f"One of: {', '.join(SEGMENTS)}.")]


@customers_router.get("/{customer_id}", responses=error_responses(404))
async def read_customer(
    customer_id: CustomerId,
    reader: CustomerReaderDep,
    country: Annotated[
        str | None, Query(pattern="^[A-Z]{2}$", description="Also score against this country's customers.")
    ] = None,
) -> Response:
    """One customer: lifecycle, segments, RFM inputs and scores, channel mix, preferred store, expected value,
    reasons.

    `rfm.scores` ranks the customer against the live population (`global`, and `country` when asked):
    quintiles 1-5, 5 the most recent, most frequent, biggest spender (`operators.customers.population`).
    """
    return Response(await customer_body(reader, customer_id, country), media_type="application/json")


async def customer_body(reader: CustomerReader, customer_id: str, country: str | None) -> bytes:
    """The customer's document with its RFM scores against the live population; `NotFound` for a stranger."""
    scopes = ("global", f"country:{country}") if country else ("global",)
    doc, populations = await reader.customer_and_populations(customer_id, scopes)
    if doc is None:
        raise NotFound(f"no customer {customer_id!r} (never seen by the customers flow)")
    return served_customer(doc, scopes, populations)


def served_customer(doc: bytes, scopes: Sequence[str], populations: Sequence[RankedPopulation | None]) -> bytes:
    """The stored document `doc` with `rfm.scores`, its quintiles against each of `scopes`' population.

    Served as stored, with `,"scores":{...}` put in after `rfm.buckets` (`operators.customers.doc.scores_slot`);
    only a document of another shape is parsed and encoded again (the same JSON, the same bytes).
    """
    slot = scores_slot(doc)
    if slot is None:
        body = orjson.loads(doc)
        rfm = body.setdefault("rfm", {})
        rfm["scores"] = _scores(rfm.get("buckets"), scopes, populations)
        return orjson.dumps(body)
    buckets, at = slot
    return b"".join((doc[:at], b',"scores":', orjson.dumps(_scores(buckets, scopes, populations)), doc[at:]))


def _scores(buckets: list[int] | None, scopes: Sequence[str],
            populations: Sequence[RankedPopulation | None]) -> dict[str, object]:  # fmt: skip
    """`rfm.scores`: the customer's quintiles per scope that has a population (none before their first purchase)."""
    if not buckets:
        return {}
    return {scope: ranked.scores(buckets) for scope, ranked in zip(scopes, populations, strict=True) if ranked}


async def fast_answer(api: FastAPI, customer_id: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    """The customer for a well-formed query, or None to let the route answer it (`serving.fast_paths`).

    >>> import asyncio
    >>> asyncio.run(fast_answer(None, "C-1", [("country", "gb")])) is None  # type: ignore[arg-type]
    True
    """
    country: str | None = None
    for name, value in pairs:
        if name == "country":
            if country is not None or len(value) != 2 or not ("A" <= value[0] <= "Z" and "A" <= value[1] <= "Z"):
                return None  # the route's pattern ^[A-Z]{2}$ answers the 422
            country = value
    reader: CustomerReader = api.state.customer_reader
    return await customer_body(reader, customer_id, country)


FAST_ROUTE = FastRoute("/v1/customers/{customer_id}", fast_answer, max_segment=MAX_ID_LENGTH)


@segments_router.get("")
async def read_segments(reader: CustomerReaderDep) -> Response:
    """Every segment with its live size: the lifecycle stages (each customer is in one) and `vip`."""
    return Response(await segments_body(reader), media_type="application/json")


async def segments_body(reader: CustomerReader) -> bytes:
    """`{"items": [{"name", "size"}, ...]}`, the segments in their declared order."""
    sizes = await reader.segment_sizes()
    return orjson.dumps({"items": [{"name": name, "size": size} for name, size in sizes.items()]})


async def fast_segments(api: FastAPI, _segment: str, _pairs: Sequence[tuple[str, str]]) -> bytes:
    """The segments' sizes for `serving.fast_paths` (the route takes no parameter: nothing to decline)."""
    reader: CustomerReader = api.state.customer_reader
    return await segments_body(reader)


SEGMENTS_FAST_ROUTE = FastRoute("/v1/segments", fast_segments, query=False)


@segments_router.get("/{name}/members")
async def read_members(
    name: SegmentName,
    reader: CustomerReaderDep,
    cursor: Annotated[
        str | None, Query(max_length=MAX_ID_LENGTH, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Members per page.")] = 100,
) -> Response:
    """Members of a segment in customer-id order, a page at a time; `next_cursor` is null on the last page."""
    if name not in SEGMENTS:
        raise InvalidParameter("name", f"{name!r} is not one of {', '.join(SEGMENTS)}")
    if cursor is not None and not cursor:
        raise InvalidParameter("cursor", "give the next_cursor of a previous page, or leave it out")
    ids = await reader.members(name, cursor, limit + 1)
    page, more = ids[:limit], len(ids) > limit
    body = {"segment": name, "items": page, "next_cursor": page[-1] if more else None}
    return Response(orjson.dumps(body), media_type="application/json")


@triggers_router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events, `event: trigger`."}},
)
async def stream_triggers(
    request: Request,
    reader: CustomerReaderDep,
    settings: SettingsDep,
    kind: Annotated[str | None, Query(max_length=400, description="Comma-separated trigger kinds.")] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """New triggers as they are released (server-sent events); resumes after `Last-Event-ID` when given."""
    kinds = _kinds(kind)
    return await stream_response(request, settings, event="trigger", tail=tail_triggers,
                                 newest_id=reader.newest_trigger_id, last_event_id=last_event_id,
                                 accepts=lambda trigger: not kinds or trigger.get("kind") in kinds)  # fmt: skip


def _kinds(raw: str | None) -> frozenset[str]:
    """The trigger kinds asked for (empty: all); `InvalidParameter` for an unknown one.

    >>> sorted(_kinds("vip_reached, at_risk"))
    ['at_risk', 'vip_reached']
    """
    if raw is None:
        return frozenset()
    kinds = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if not kinds:
        raise InvalidParameter("kind", "give at least one kind, or leave the parameter out")
    for kind in kinds:
        if kind not in _KINDS:
            raise InvalidParameter("kind", f"{kind!r} is not one of {', '.join(_KINDS)}")
    return kinds
