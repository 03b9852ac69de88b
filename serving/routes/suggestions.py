"""`/v1/suggestions`: open transfer and markdown (price) suggestions (merchandising flow), reorders (demand flow).

Each lists what is open now, as the flow last published it (`omni.suggestions`
carries every change, withdrawals included). Transfers come most urgent first
(largest expected stockout avoided), markdowns largest projected leftover first,
reorders fewest days of cover first.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from serving.schemas import MarkdownSuggestionList, ReorderSuggestionList, TransferSuggestionList, error_responses
from state.suggestion_reader import MARKDOWN, TRANSFER, SuggestionReader

MAX_LIMIT = 1000

router = APIRouter(prefix="/v1/suggestions", tags=["merchandising"], responses=error_responses(422, 503))

Sku = Annotated[str | None, Query(min_length=1, max_length=256, description="Only this SKU's suggestions.")]
Location = Annotated[
    str | None, Query(min_length=1, max_length=256, description="Only transfers from or to this location.")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most suggestions returned.")]


def _reader(request: Request) -> SuggestionReader:
    reader: SuggestionReader = request.app.state.suggestion_reader
    return reader


def _answer(items: list[dict[str, Any]]) -> Response:
    return Response(orjson.dumps({"items": items}), media_type="application/json")


@router.get("/transfers", responses={200: {"model": TransferSuggestionList}})
async def read_transfers(
    request: Request, sku: Sku = None, location_id: Location = None, limit: Limit = 100
) -> Response:
    """Open transfer suggestions: from, to, SKU, quantity, expected stockout avoided, cost and reason."""
    items = await _reader(request).open(TRANSFER, sku)
    if location_id is not None:
        items = [t for t in items if location_id in (t.get("from_location"), t.get("to_location"))]
    items.sort(key=lambda t: (-float(t.get("expected_stockout_avoided", 0.0)), str(t.get("suggestion_id"))))
    return _answer(items[:limit])


@router.get("/prices", responses={200: {"model": MarkdownSuggestionList}})
async def read_prices(request: Request, sku: Sku = None, limit: Limit = 100) -> Response:
    """Open markdown suggestions: current and suggested price, discount, cover, days to season end and reason."""
    items = await _reader(request).open(MARKDOWN, sku)
    items.sort(key=lambda m: (-int(m.get("projected_leftover", 0)), str(m.get("suggestion_id"))))
    return _answer(items[:limit])


AtLocation = Annotated[str | None, Query(min_length=1, max_length=256, description="Only reorders for this location.")]


@router.get("/reorders", responses={200: {"model": ReorderSuggestionList}})
async def read_reorders(
    request: Request, sku: Sku = None, location_id: AtLocation = None, limit: Limit = 100
) -> Response:
    """Open reorder suggestions: SKU, location, quantity, available, days of cover, lead-time demand and reason."""
    items = await _reader(request).open_reorders(sku, location_id)

    def urgency(r: dict[str, Any]) -> tuple[float, str]:
        cover = r.get("cover_days")
        return (float(cover) if cover is not None else float("inf"), str(r.get("suggestion_id")))

    items.sort(key=urgency)
    return _answer(items[:limit])
