"""The demand flow's output records: a SKU's forecast at a location and a location's rising items.

Declared once for the writer (`flows/demand_stages.py`) and the reader (`serving/routes/forecasts.py`):
the flow stores them as JSON (`msgspec.json.encode`) and the API serves the stored bytes, cut to the
days asked for.
"""

from __future__ import annotations

import msgspec

METHOD = "rolling-week smoothing x weekday profile x holidays x weather, steered 80% quantile intervals"
"""What `method` says in every forecast document (docs/demand.md explains it)."""
METHOD_GLOBAL = METHOD + ", corrected by a global online model (river)"
"""`method` when `OMNISTREAM_DEMAND_GLOBAL_MODEL` is on."""


class DailyForecast(msgspec.Struct, frozen=True, gc=False):
    """Units of one SKU expected at one location on one local day, with the interval's bounds."""

    date: str
    forecast: float
    lower: float
    upper: float


class SkuForecast(msgspec.Struct, frozen=True, gc=False):
    """A SKU's daily forecasts at a location, made when local day `as_of` closed, from the day after on."""

    sku: str
    location_id: str
    as_of: str
    method: str
    interval: float
    last_28_days: float
    days: list[DailyForecast]


class RisingItem(msgspec.Struct, frozen=True, gc=False):
    """A SKU whose next 7 days at its recent rate exceed its weekly rate of the last 28: the figures are the reasons.

    `recent_7_days` projects the last days' rate (a short-memory level) over the next 7 days, weekdays and
    holidays included; `increase` is it less `weekly_rate_28_days`, `ratio` it over that.
    `forecast_7_days` is the sum of the served point forecasts (a long memory: it follows a take-off later).
    """

    sku: str
    forecast_7_days: float
    last_28_days: float
    weekly_rate_28_days: float
    increase: float
    ratio: float | None
    recent_7_days: float = 0.0


class RisingItems(msgspec.Struct, frozen=True, gc=False):
    """A location's rising items as of a closed day, biggest increase first."""

    location_id: str
    as_of: str
    items: list[RisingItem]
