"""`GET /v1/attribution`: conversions, revenue and credit share per campaign, source or medium, under a model.

Reads the attribution flow's per-day documents for `from`..`to` (UTC days, inclusive) and
sums them (`operators.attribution.report`); the Markov model is solved over the range's paths.
An answer is reused for `OMNISTREAM_ATTRIBUTION_API_CACHE_S` seconds (the flow rewrites a day
as conversions arrive; a dashboard polls).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from operators.attribution.models import MODELS
from operators.attribution.report import report
from serving.errors import InvalidParameter
from serving.fast_paths import FastRoute
from serving.schemas import error_responses
from state.attribution_reader import AttributionReader

router = APIRouter(prefix="/v1/attribution", tags=["attribution"], responses=error_responses(422, 503))

Model = Literal["last_non_direct", "first_touch", "linear", "time_decay", "position_based", "markov"]
assert set(Model.__args__) == set(MODELS)  # type: ignore[attr-defined]


class AttributionDesk:
    """The reader and a short-lived cache of computed answers."""

    def __init__(self, reader: AttributionReader, cache_s: float, max_days: int) -> None:
        self.reader = reader
        self.cache_s = cache_s
        self.max_days = max_days
        self._cache: dict[tuple[str, str, str, str], tuple[float, bytes]] = {}


def _day(name: str, raw: str | None, default: date) -> date:
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw[:10]) if len(raw) >= 10 else date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(name, f"{raw!r} is not a date (YYYY-MM-DD or an RFC 3339 time)") from None


@router.get("")
async def read_attribution(
    request: Request,
    model: Annotated[Model, Query(description="Credit model.")] = "last_non_direct",
    by: Annotated[Literal["campaign", "source", "medium"], Query(description="Channel dimension.")] = "campaign",
    from_: Annotated[
        str | None, Query(alias="from", max_length=40, description="First UTC day (default: to - 29).")
    ] = None,
    to: Annotated[str | None, Query(max_length=40, description="Last UTC day, inclusive (default: today).")] = None,
) -> Response:
    """Conversions, revenue and each channel's credited conversions, revenue and share over the days asked."""
    return Response(await attribution_body(request.app, model, by, from_, to), media_type="application/json")


async def attribution_body(api: FastAPI, model: str, by: str, from_: str | None, to: str | None) -> bytes:
    """The report over the days asked, from the desk's cache while fresh; `InvalidParameter` for a bad range."""
    desk: AttributionDesk = api.state.attribution
    last = _day("to", to, datetime.now(UTC).date())
    first = _day("from", from_, last - timedelta(days=29))
    if first > last:
        raise InvalidParameter("from", f"{first} is after to ({last})")
    if (last - first).days + 1 > desk.max_days:
        raise InvalidParameter("from", f"at most {desk.max_days} days per request")
    key = (model, by, first.isoformat(), last.isoformat())
    cached = desk._cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < desk.cache_s:
        return cached[1]
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    docs = [orjson.loads(doc) for doc in await desk.reader.days(days)]
    body = orjson.dumps({**report(docs, model, by), "from": key[2], "to": key[3]})
    if desk.cache_s > 0:
        if len(desk._cache) > 1000:
            desk._cache.clear()
        desk._cache[key] = (now, body)
    return body


_BY = ("campaign", "source", "medium")
_DEFAULTS = {"model": "last_non_direct", "by": "campaign"}


async def fast_answer(api: FastAPI, _: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    """The report for a well-formed query, or None to let the route answer it (`serving.fast_paths`).

    Declines what the route's declaration refuses itself: an unknown model or dimension, a
    repeated or blank parameter, a day over 40 characters.

    >>> import asyncio
    >>> asyncio.run(fast_answer(None, "", [("model", "best")])) is None  # type: ignore[arg-type]
    True
    """
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in ("model", "by", "from", "to"):
            if name in found or not value or len(value) > 40:
                return None
            found[name] = value
    model, by = found.get("model", _DEFAULTS["model"]), found.get("by", _DEFAULTS["by"])
    if model not in MODELS or by not in _BY:
        return None
    return await attribution_body(api, model, by, found.get("from"), found.get("to"))


FAST_ROUTE = FastRoute("/v1/attribution", fast_answer)
