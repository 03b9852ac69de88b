"""Suggestion records (`omni.suggestions`): transfers and markdowns (merchandising flow), reorders (demand flow).

Declared once here for the flow that writes them, the API that serves them and
whoever consumes the topic. Each record is the whole suggestion as of `ts`
(event time): `status: open` when it is made or materially changed (another
quantity, another price), `withdrawn` when it no longer holds. `suggestion_id`
names the decision (`transfer:<sku>:<from>:<to>`, `markdown:<sku>`, `reorder:<sku>:<location>`), so a
consumer keeps the newest `version` per id; a recovery replay re-sends records
with the same id and version, which a consumer drops. The topic also carries
other kinds of suggestion (the `kind` field tells them apart); a consumer skips
kinds it does not know.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from events.outputs import Destination
from events.topics import Topic

SuggestionStatus = Literal["open", "withdrawn"]
SUGGESTIONS = Destination(Topic.SUGGESTIONS, "suggestion_id")
"""Where every kind goes: `omni.suggestions` only, keyed by `suggestion_id` (the API reads the flow's documents)."""


class TransferSuggestion(msgspec.Struct, tag_field="kind", tag="transfer", frozen=True, kw_only=True):
    """Move `qty` units of `sku` from `from_location` to `to_location` before the receiver stocks out."""

    DESTINATION: ClassVar[Destination] = SUGGESTIONS

    suggestion_id: str
    status: SuggestionStatus
    version: int
    sku: str
    ts: str
    from_location: str
    to_location: str
    qty: int
    expected_stockout_avoided: float
    """Units of the receiver's demand over the planning horizon this transfer serves, which it would have lost."""
    value: float
    """Margin of those sales, in the catalog's currency."""
    cost: float
    """The configured cost of the transfer (per transfer + per unit)."""
    from_cover_days: float
    to_cover_days: float
    reason: str

    @property
    def kind(self) -> str:
        """The record's `kind` (its msgspec tag)."""
        return "transfer"


class MarkdownSuggestion(msgspec.Struct, tag_field="kind", tag="markdown", frozen=True, kw_only=True):
    """Sell `sku` at `suggested_price` (from `current_price`) so its stock sells through by season end."""

    DESTINATION: ClassVar[Destination] = SUGGESTIONS

    suggestion_id: str
    status: SuggestionStatus
    version: int
    sku: str
    ts: str
    current_price: float
    suggested_price: float
    list_price: float
    discount: float
    """Off the list price (0.3 is 30% off)."""
    currency: str | None
    on_hand: int
    velocity_per_day: float
    cover_days: float
    days_left: float
    projected_leftover: int
    reason: str

    @property
    def kind(self) -> str:
        """The record's `kind` (its msgspec tag)."""
        return "markdown"


class ReorderSuggestion(msgspec.Struct, tag_field="kind", tag="reorder", frozen=True, kw_only=True):
    """Order `qty` units of `sku` for `location_id` from the supplier: its stock will not last the lead time.

    Written by the demand flow (docs/demand.md, "Reorder suggestions"): `available` is at or below
    the reorder point (the lead time's expected demand plus safety stock at the location's service
    level), and `qty` brings it up to the order-up-to level (lead time plus review period).
    """

    DESTINATION: ClassVar[Destination] = SUGGESTIONS

    suggestion_id: str
    status: SuggestionStatus
    version: int
    sku: str
    ts: str
    location_id: str
    qty: int
    available: int
    """Units on hand less those reserved, at `ts`."""
    cover_days: float | None
    """Days the available units last at the forecast demand (0 with none; null: no demand forecast)."""
    lead_time_days: int
    service_level: float
    lead_time_demand: float
    """Units forecast over the lead time."""
    safety_stock: float
    reorder_point: float
    order_up_to: float
    forecast_as_of: str
    """The last closed day of the forecast used (ISO date)."""
    reason: str

    @property
    def kind(self) -> str:
        """The record's `kind` (its msgspec tag)."""
        return "reorder"


Suggestion = TransferSuggestion | MarkdownSuggestion | ReorderSuggestion
SUGGESTION_TYPES = (TransferSuggestion, MarkdownSuggestion, ReorderSuggestion)
