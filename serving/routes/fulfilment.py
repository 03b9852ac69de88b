"""`/v1/fulfilment/options`: where to fulfil an order from, ranked on live available stock.

One Redis round trip reads the SKUs' stock documents (the inventory flow's,
the same the inventory endpoint serves); `operators.fulfilment` ranks the
sources with the configured cost model (`settings.fulfilment`) and says why.
`serving.fast_paths` answers well-formed requests (`FAST_ROUTE`) ahead of
FastAPI's routing; this route documents the endpoint and answers the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from operators.fulfilment import CostModel, Plan, parse_ship_costs, plan_fulfilment
from serving.errors import InvalidParameter, NotFound
from serving.fast_paths import FastRoute
from serving.schemas import FulfilmentOptions, error_responses
from state.stock_reader import StockReader

MAX_LINES = 50
MAX_QTY = 1_000_000

router = APIRouter(prefix="/v1/fulfilment", tags=["fulfilment"], responses=error_responses(422, 503))


def cost_model(settings: Any) -> CostModel:
    """The cost model of `settings.fulfilment`; `ValueError` for a bad cost table (refused at start)."""
    group = settings.fulfilment
    return CostModel(
        ship_costs=parse_ship_costs(group.ship_costs),
        default_ship_cost=group.default_ship_cost,
        store_handling_cost=group.store_handling_cost,
        warehouse_handling_cost=group.warehouse_handling_cost,
        split_penalty=group.split_penalty,
        store_safety_stock=group.store_safety_stock,
        warehouse_prefixes=tuple(p.strip() for p in group.warehouse_prefixes.split(",") if p.strip()),
        max_sources=group.max_sources,
    )


def parse_lines(sku: str | None, qty: int | None, lines: str | None) -> list[tuple[str, int]]:
    """The order's lines from `sku` + `qty`, or from `lines=SKU:QTY,...`; `InvalidParameter` when unusable.

    >>> parse_lines(None, None, "A:2, B:1")
    [('A', 2), ('B', 1)]
    >>> parse_lines("A", 0, None)
    Traceback (most recent call last):
    ...
    serving.errors.InvalidParameter: qty: must be an integer from 1 to 1000000
    """
    if lines is not None:
        if sku is not None or qty is not None:
            raise InvalidParameter("lines", "give either lines, or sku and qty")
        parsed = []
        for n, item in enumerate((part.strip() for part in lines.split(",")), start=1):
            name, _, count = item.rpartition(":")
            if not name or not count.isdigit() or not 1 <= int(count) <= MAX_QTY:
                raise InvalidParameter("lines", f"item {n} {item!r}: expected SKU:QTY with QTY from 1 to {MAX_QTY}")
            parsed.append((name, int(count)))
        if len(parsed) > MAX_LINES:
            raise InvalidParameter("lines", f"at most {MAX_LINES} lines")
        return parsed
    if sku is None:
        raise InvalidParameter("sku", "required (or lines=SKU:QTY,...)")
    if qty is None or not 1 <= qty <= MAX_QTY:
        raise InvalidParameter("qty", f"must be an integer from 1 to {MAX_QTY}")
    return [(sku, qty)]


OPTIONS_ROUTE = "/v1/fulfilment/options"
_QUERY_LIMITS = {"sku": 256, "qty": 7, "lines": 100_000, "ship_to": 64, "pickup_at": 256}
"""The parameters the route takes, with the longest value its FastAPI declaration accepts."""


@router.get("/options", responses={200: {"model": FulfilmentOptions}, **error_responses(404)})
async def fulfilment_options(
    request: Request,
    sku: Annotated[str | None, Query(min_length=1, max_length=256, description="The SKU (single-line form).")] = None,
    qty: Annotated[int | None, Query(description="Units of `sku`, at least 1.")] = None,
    lines: Annotated[str | None, Query(description="Multi-line form: `SKU:QTY,SKU:QTY`.")] = None,
    ship_to: Annotated[str | None, Query(min_length=1, max_length=64, description="The delivery region.")] = None,
    pickup_at: Annotated[str | None, Query(min_length=1, max_length=256, description="A store, for pick-up.")] = None,
) -> Response:
    """Ranked sources for an order: the chosen plan, single-source alternatives, and the reasons."""
    body = await options_body(request.app, sku, qty, lines, ship_to, pickup_at)
    return Response(body, media_type="application/json")


async def fast_answer(api: FastAPI, _: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    """The answer to a well-formed query, or None to let the route answer it (`serving.fast_paths`).

    Declines what FastAPI's declaration refuses on its own terms (a repeated or blank parameter, a
    value over its length, a `qty` that is not an integer), so those get the route's 422s.

    >>> import asyncio
    >>> asyncio.run(fast_answer(None, "", [("sku", "A"), ("sku", "B")])) is None  # type: ignore[arg-type]
    True
    >>> asyncio.run(fast_answer(None, "", [("sku", "A"), ("qty", "two")])) is None  # type: ignore[arg-type]
    True
    """
    values: dict[str, str] = {}
    for name, value in pairs:
        limit = _QUERY_LIMITS.get(name)
        if limit is None:
            continue  # unknown parameters are ignored, as FastAPI does
        if name in values or not value or len(value) > limit:
            return None
        values[name] = value
    qty = values.get("qty")
    if qty is not None and not qty.isdigit():
        return None
    return await options_body(api, values.get("sku"), None if qty is None else int(qty), values.get("lines"),
                              values.get("ship_to"), values.get("pickup_at"))  # fmt: skip


FAST_ROUTE = FastRoute(OPTIONS_ROUTE, fast_answer)


async def options_body(api: FastAPI, sku: str | None, qty: int | None, lines: str | None, ship_to: str | None,
                       pickup_at: str | None) -> bytes:  # fmt: skip
    """The options document for an order; `InvalidParameter` / `NotFound` for what cannot be planned."""
    wanted = parse_lines(sku, qty, lines)
    model: CostModel = api.state.fulfilment_model
    if (ship_to is None) == (pickup_at is None):
        raise InvalidParameter("ship_to", "give either ship_to (a region) or pickup_at (a store)")
    regions = model.regions()
    if ship_to is not None and regions and ship_to not in regions:
        raise InvalidParameter("ship_to", f"unknown region {ship_to!r}; known: {', '.join(sorted(regions))}")
    skus = list(dict.fromkeys(name for name, _ in wanted))
    reader: StockReader = api.state.stock_reader
    docs = await reader.skus(skus)
    stock: dict[str, dict[str, int]] = {}
    as_of = []
    for name, doc in zip(skus, docs, strict=True):
        if doc is None:
            raise NotFound(f"sku: no stock record for {name!r}")
        parsed = orjson.loads(doc)
        stock[name] = {loc["location_id"]: loc["available"] for loc in parsed["locations"]}
        as_of.append(parsed["as_of"])
    choice, singles = plan_fulfilment(wanted, stock, ship_to, model, pickup_at)
    return orjson.dumps({
        "lines": [{"sku": name, "qty": count} for name, count in wanted],
        "ship_to": ship_to,
        "pickup_at": pickup_at,
        "choice": _plan(choice) if choice.shipments else None,
        "options": [_plan(plan) for plan in singles],
        "reasons": list(choice.reasons),
        "as_of": max(as_of),
    })  # fmt: skip


def _plan(plan: Plan) -> dict[str, Any]:
    return {
        "shipments": [
            {"location_id": s.location_id, "kind": s.kind, "cost": s.cost,
             "lines": [{"sku": name, "qty": count} for name, count in s.lines]}
            for s in plan.shipments
        ],
        "total_cost": plan.total_cost,
        "split": plan.split,
    }  # fmt: skip
