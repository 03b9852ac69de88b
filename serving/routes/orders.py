"""`/v1/orders`: one online order's lines (reserved, fulfilled, cancelled units) and its status.

The inventory flow stores each line on its own (an order's lines live in the
ledgers of their SKUs, `state.order_writer`); the handler adds them up
(`operators.orders.order_document`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import Response

from operators.orders import order_document
from serving.errors import NotFound
from serving.fast_paths import FastRoute
from serving.schemas import Order, error_responses
from state.order_reader import OrderReader

MAX_ID_LENGTH = 256

router = APIRouter(prefix="/v1/orders", tags=["orders"], responses=error_responses(422, 503))

OrderId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The order's order_id.")]


@router.get("/{order_id}", responses={200: {"model": Order}, **error_responses(404)})
async def read_order(order_id: OrderId, request: Request) -> Response:
    """The order's lines with reserved, fulfilled and cancelled quantities, their totals and the order's status."""
    return Response(await order_body(request.app, order_id), media_type="application/json")


async def order_body(api: FastAPI, order_id: str, _: Sequence[tuple[str, str]] = ()) -> bytes:
    """The order's document from its lines; `NotFound` for an order the flow has not seen (or has let expire)."""
    reader: OrderReader = api.state.order_reader
    lines = await reader.lines(order_id)
    if lines is None:
        raise NotFound(f"no order {order_id!r} (no purchase, fulfilment or cancel of it yet, or expired)")
    return order_document(order_id, lines)


FAST_ROUTE = FastRoute("/v1/orders/{order_id}", order_body, max_segment=MAX_ID_LENGTH, query=False)
