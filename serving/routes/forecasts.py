"""`/v1/forecasts`: a SKU's daily demand forecast at a location, and a location's rising items.

The demand flow stores each document whole when a local day closes (`events.forecast`); a handler
makes one Redis read and cuts the stored days (or items) to what was asked. Same thin read path as
`/v1/inventory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response

from serving.errors import InvalidParameter, NotFound
from serving.fast_paths import FastRoute
from serving.schemas import error_responses
from state.forecast_reader import ForecastReader

MAX_ID_LENGTH = 256
MAX_DAYS = 92  # the most OMNISTREAM_DEMAND_HORIZON_DAYS allows
MAX_RISING = 1000

router = APIRouter(prefix="/v1/forecasts", tags=["forecasts"], responses=error_responses(422, 503))

Sku = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The SKU.")]
LocationId = Annotated[
    str, Query(min_length=1, max_length=MAX_ID_LENGTH, description="The store or warehouse the forecast is for.")
]


def _reader(request: Request) -> ForecastReader:
    reader: ForecastReader = request.app.state.forecast_reader
    return reader


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


# Declared before `/{sku}`, which would otherwise take "rising" for a SKU.
@router.get("/rising", responses=error_responses(404))
async def read_rising(
    request: Request,
    location_id: LocationId,
    limit: Annotated[int, Query(ge=1, le=MAX_RISING, description="How many items, biggest increase first.")] = 20,
) -> Response:
    """The items whose forecast for the next 7 days most exceeds their weekly rate of the last 28, with the figures."""
    doc = await _reader(request).rising(location_id)
    if doc is None:
        raise NotFound(f"no rising items for location {location_id!r} (no day closed there yet, or not configured)")
    parsed = orjson.loads(doc)
    if len(parsed["items"]) > limit:
        parsed["items"] = parsed["items"][:limit]
        doc = orjson.dumps(parsed)
    return _json(doc)


@router.get("/{sku}", responses=error_responses(404))
async def read_forecast(
    sku: Sku,
    request: Request,
    location_id: LocationId,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days ahead, from the day after `as_of`.")] = 7,
) -> Response:
    """Daily point forecasts with their interval from the day after `as_of` (the last closed day), and the method."""
    return _json(await forecast_body(request.app, sku, location_id, days))


async def forecast_body(api: FastAPI, sku: str, location_id: str, days: int) -> bytes:
    """The forecast document cut to `days`; `InvalidParameter` past the horizon, `NotFound` without one."""
    horizon: int = api.state.settings.demand.horizon_days
    if days > horizon:
        raise InvalidParameter("days", f"at most {horizon} (OMNISTREAM_DEMAND_HORIZON_DAYS), got {days}")
    reader: ForecastReader = api.state.forecast_reader
    doc = await reader.forecast(sku, location_id)
    if doc is None:
        raise NotFound(f"no forecast for sku {sku!r} at location {location_id!r}")
    parsed = orjson.loads(doc)
    if len(parsed["days"]) > days:
        parsed["days"] = parsed["days"][:days]
        doc = orjson.dumps(parsed)
    return doc


async def fast_answer(api: FastAPI, sku: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    """The forecast for a well-formed query, or None to let the route answer it (`serving.fast_paths`).

    Declines what the route's declaration refuses itself (a missing, blank, repeated or over-long
    `location_id`, a `days` outside 1..MAX_DAYS) and `rising`, which is a route of its own.

    >>> import asyncio
    >>> asyncio.run(fast_answer(None, "A", [("days", "3")])) is None  # type: ignore[arg-type]
    True
    >>> asyncio.run(fast_answer(None, "rising", [("location_id", "S1")])) is None  # type: ignore[arg-type]
    True
    """
    if sku == "rising":
        return None
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in ("location_id", "days"):
            if name in found or not value or len(value) > MAX_ID_LENGTH:
                return None
            found[name] = value
    location_id, days = found.get("location_id"), found.get("days", "7")
    if location_id is None or not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
        return None
    return await forecast_body(api, sku, location_id, int(days))


FAST_ROUTE = FastRoute("/v1/forecasts/{sku}", fast_answer, max_segment=MAX_ID_LENGTH)
