"""Response shapes for the OpenAPI document only.

Handlers return bytes stored by `state.stock_writer.shape` and never build these models
(PERF_NOTES.md: re-serialising would cost more than the Redis call). Keep them in step with
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
