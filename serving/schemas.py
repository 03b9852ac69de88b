"""Response shapes for the OpenAPI document only.

Handlers return bytes stored by `state.stock_writer.shape` and never build these models
(docs/performance.md: re-serialising would cost more than the Redis call). Keep them in step with
`shape()`; the integration tests pin both to CONTRACT.md.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class StockAtLocation(BaseModel):
    """One location's entry in a SKU's stock."""

    location_id: str
    on_hand: int
    reserved: int
    available: int = Field(description="on_hand - reserved; negative is an oversell.")
    updated_at: str = Field(description="RFC 3339 event time of the newest movement applied here.")


class LocationStock(StockAtLocation):
    """`GET /v1/inventory/{sku}/locations/{location_id}`."""

    sku: str


class SkuStock(BaseModel):
    """`GET /v1/inventory/{sku}`: one SKU over all its locations."""

    sku: str
    total_on_hand: int
    total_reserved: int
    total_available: int
    locations: list[StockAtLocation]
    as_of: str = Field(description="RFC 3339 event time of the newest movement of this SKU.")


class StockBatch(BaseModel):
    """`GET /v1/inventory?skus=…`: the SKUs found, in request order, and those without a record."""

    items: list[SkuStock]
    missing: list[str]


class Status(BaseModel):
    """Health probes' body."""

    status: str


class ErrorDetail(BaseModel):
    code: str = Field(description="not_found | invalid_parameter | backend_unavailable | internal_error | …")
    message: str


class ErrorBody(BaseModel):
    """Every error response (CONTRACT.md "HTTP API")."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """`responses=` entries documenting the error body under `statuses`."""
    descriptions = {
        404: "No record for the entity asked for.",
        422: "A parameter is invalid; the message names it.",
        503: "Redis is down or too slow; answered fast, retry shortly.",
    }
    return {status: {"model": ErrorBody, "description": descriptions.get(status, "Error.")} for status in statuses}


class FraudScore(BaseModel):
    """`GET /v1/scores/{txn_or_order_id}`: the verdict on one payment."""

    payment_id: str = Field(description="The txn_id or order_id asked for.")
    score: float = Field(ge=0, le=1, description="Calibrated probability-like fraud score.")
    decision: str = Field(description="allow | review | block, by the rules file's thresholds.")
    reasons: list[str] = Field(description="Fired rules' texts and the strongest model features; never identifiers.")
    model_version: str = Field(description="Rules version + anomaly windows learned + supervised updates.")
    scored_at: str = Field(description="RFC 3339 event time of the payment that was scored.")


class AlertEntity(BaseModel):
    type: str
    id: str


class AlertRecord(BaseModel):
    """One alert of `omni.alerts`, plus the id of its entry in the Redis stream (a resume cursor)."""

    alert_id: str
    kind: str
    severity: str = Field(description="warning | attention | emergency")
    status: str = Field(description="open | resolved")
    entity: AlertEntity
    score: float | None = None
    reasons: list[str]
    ts: str
    source_event_ids: list[str]
    stream_id: str = Field(description="Pass as `since` (or SSE Last-Event-ID) to get only newer alerts.")


class AlertList(BaseModel):
    """`GET /v1/alerts`: newest first."""

    items: list[AlertRecord]


class TransferSuggestionRecord(BaseModel):
    """One open transfer suggestion (`events.suggestions.TransferSuggestion`)."""

    kind: str = Field(description="transfer")
    suggestion_id: str = Field(description="transfer:<sku>:<from>:<to>; the newest version per id holds.")
    status: str = Field(description="open (withdrawn ones are only on omni.suggestions)")
    version: int
    sku: str
    ts: str = Field(description="RFC 3339 event time of the review that made or last changed it.")
    from_location: str
    to_location: str
    qty: int
    expected_stockout_avoided: float = Field(description="Units of the receiver's demand it serves that were lost.")
    value: float = Field(description="Margin of those sales.")
    cost: float = Field(description="Configured cost of the transfer.")
    from_cover_days: float
    to_cover_days: float
    reason: str


class TransferSuggestionList(BaseModel):
    """`GET /v1/suggestions/transfers`: most urgent first."""

    items: list[TransferSuggestionRecord]


class MarkdownSuggestionRecord(BaseModel):
    """One open markdown suggestion (`events.suggestions.MarkdownSuggestion`)."""

    kind: str = Field(description="markdown")
    suggestion_id: str = Field(description="markdown:<sku>")
    status: str
    version: int
    sku: str
    ts: str
    current_price: float
    suggested_price: float
    list_price: float
    discount: float = Field(description="Off the list price, a multiple of the configured step.")
    currency: str | None
    on_hand: int
    velocity_per_day: float
    cover_days: float
    days_left: float = Field(description="Days to the configured season end.")
    projected_leftover: int = Field(description="Units left at season end at today's price and velocity.")
    reason: str


class MarkdownSuggestionList(BaseModel):
    """`GET /v1/suggestions/prices`: largest projected leftover first."""

    items: list[MarkdownSuggestionRecord]


class ReorderSuggestionRecord(BaseModel):
    """One open reorder suggestion (`events.suggestions.ReorderSuggestion`, written by the demand flow)."""

    kind: str = Field(description="reorder")
    suggestion_id: str = Field(description="reorder:<sku>:<location_id>; the newest version per id holds.")
    status: str
    version: int
    sku: str
    ts: str = Field(description="RFC 3339 event time of the review that made or last changed it.")
    location_id: str
    qty: int = Field(description="Units to order: up to the order-up-to level.")
    available: int = Field(description="On hand less reserved at `ts`.")
    cover_days: float | None = Field(description="Days `available` lasts at the forecast demand.")
    lead_time_days: int
    service_level: float
    lead_time_demand: float = Field(description="Units forecast over the lead time.")
    safety_stock: float
    reorder_point: float
    order_up_to: float
    forecast_as_of: str = Field(description="The last closed day of the forecast used.")
    reason: str


class ReorderSuggestionList(BaseModel):
    """`GET /v1/suggestions/reorders`: fewest days of cover first."""

    items: list[ReorderSuggestionRecord]


class OrderLine(BaseModel):
    """One line of an order: a SKU at the location that reserved (or shipped) it."""

    sku: str
    location_id: str
    purchased: int
    reserved: int = Field(description="Units still held for the line.")
    fulfilled: int
    cancelled: int = Field(description="Units released by cancels (never what was already fulfilled).")
    updated_at: str = Field(description="RFC 3339 event time of the line's newest event.")


class Order(BaseModel):
    """`GET /v1/orders/{order_id}`: an online order line by line, its totals and status."""

    order_id: str
    status: str = Field(
        description="awaiting_purchase | open | partially_fulfilled | fulfilled | cancelled | closed (part "
        "fulfilled, the rest cancelled)."
    )
    purchased: int
    reserved: int
    fulfilled: int
    cancelled: int
    lines: list[OrderLine]
    as_of: str | None = Field(description="RFC 3339 event time of the newest event of the order.")


class ReservationBody(BaseModel):
    """`POST /v1/reservations` body (with an `Idempotency-Key` header)."""

    sku: str
    location_id: str
    qty: int = Field(ge=1)
    hold_s: float | None = Field(None, gt=0, description="Seconds the hold lasts (default: the configured hold).")


class ReservationAccepted(BaseModel):
    """`POST /v1/reservations` → 202: the reservation was published; its decision follows."""

    reservation_id: str
    status: str = Field(description="Always `pending` here.")
    location: str = Field(description="Where to read the decision.")


class Reservation(BaseModel):
    """`GET /v1/reservations/{id}`."""

    reservation_id: str
    status: str = Field(description="pending | held | rejected | expired | fulfilled | cancelled")
    reason: str | None = Field(description="Why it was rejected (`insufficient_stock`).")
    sku: str
    location_id: str
    qty: int
    fulfilled: int
    updated_at: str | None = Field(description="RFC 3339 event time of its newest event (null while pending).")
    expires_at: str = Field(description="RFC 3339 time the hold lapses, unless fulfilled or cancelled first.")


class PlannedLine(BaseModel):
    sku: str
    qty: int


class PlannedShipment(BaseModel):
    location_id: str
    kind: str = Field(description="store | warehouse")
    cost: float = Field(description="Handling plus shipping of this source.")
    lines: list[PlannedLine]


class FulfilmentPlan(BaseModel):
    shipments: list[PlannedShipment]
    total_cost: float = Field(description="The shipments' costs plus the split penalty per extra source.")
    split: bool


class FulfilmentOptions(BaseModel):
    """`GET /v1/fulfilment/options`: the chosen plan, single-source alternatives (cheapest first), and why."""

    lines: list[PlannedLine]
    ship_to: str | None
    pickup_at: str | None
    choice: FulfilmentPlan | None = Field(description="null when no plan can serve the order (reasons say why).")
    options: list[FulfilmentPlan]
    reasons: list[str]
    as_of: str = Field(description="RFC 3339 event time of the newest stock the plan read.")
