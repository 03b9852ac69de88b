"""`/v1/inventory`: stock per SKU, per SKU × location, and for many SKUs at once.

Handlers return the documents the inventory flow stored (`state.stock_writer.shape`) as they
are: parsing and re-serialising them would cost more than the Redis round trip
(docs/performance.md). The batch response is spliced from those bytes.

The single-SKU and location reads are the hot path, benchmarked against a bare FastAPI
route doing one HGETALL (benchmarks/bare_app.py), which they must match or beat: they take
the reader with `deps.stock_reader(request)` rather than `StockReaderDep`, whose
per-request dependency solving would cost them that margin (see `serving.deps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response

from serving.deps import StockReaderDep, stock_reader
from serving.errors import InvalidParameter, NotFound
from serving.fast_paths import FastRoute
from serving.schemas import LocationStock, SkuStock, StockBatch, error_responses
from state.stock_reader import StockReader

MAX_ID_LENGTH = 256
MAX_BATCH_SKUS = 500  # CONTRACT.md: up to 500 SKUs in one call
SKU_ROUTE = "/v1/inventory/{sku}"  # also served by `serving.fast_paths` (`FAST_ROUTE`)


def missing_sku_message(sku: str) -> str:
    return f"no stock record for sku {sku!r}"


router = APIRouter(
    prefix="/v1/inventory",
    tags=["inventory"],
    responses=error_responses(422, 503),
)

Sku = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The SKU.")]
LocationId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="A store or warehouse id.")]
SkuList = Annotated[
    str,
    Query(
        description=f"Comma-separated SKUs, 1 to {MAX_BATCH_SKUS} distinct; blanks around each are ignored.",
        examples=["SKU-1,SKU-2"],
    ),
]


def parse_skus(raw: str) -> list[str]:
    """The distinct SKUs of a `skus` parameter, in first-seen order; `InvalidParameter` if unusable.

    >>> parse_skus(" A, B ,A")
    ['A', 'B']
    >>> parse_skus("A,,B")
    Traceback (most recent call last):
    ...
    serving.errors.InvalidParameter: skus: item 2 is empty
    """
    if not raw.strip():
        raise InvalidParameter("skus", "give at least one SKU")
    skus: dict[str, None] = {}
    for position, part in enumerate(raw.split(","), start=1):
        sku = part.strip()
        if not sku:
            raise InvalidParameter("skus", f"item {position} is empty")
        if len(sku) > MAX_ID_LENGTH:
            raise InvalidParameter("skus", f"item {position} is longer than {MAX_ID_LENGTH} characters")
        skus[sku] = None
    if len(skus) > MAX_BATCH_SKUS:
        raise InvalidParameter("skus", f"at most {MAX_BATCH_SKUS} distinct SKUs per call, got {len(skus)}")
    return list(skus)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get("", responses={200: {"model": StockBatch}})
async def read_inventory_batch(skus: SkuList, reader: StockReaderDep) -> Response:
    """Stock of several SKUs in one call (consoles); SKUs without a record are listed in `missing`."""
    wanted = parse_skus(skus)
    docs = await reader.skus(wanted)
    items = b",".join(doc for doc in docs if doc is not None)
    missing = orjson.dumps([sku for sku, doc in zip(wanted, docs, strict=True) if doc is None])
    return _json(b'{"items":[' + items + b'],"missing":' + missing + b"}")


@router.get("/{sku}", responses={200: {"model": SkuStock}, **error_responses(404)})
async def read_inventory(sku: Sku, request: Request) -> Response:
    """Stock of one SKU: totals and every location."""
    return _json(await sku_body(request.app, sku))


async def sku_body(api: FastAPI, sku: str, _: Sequence[tuple[str, str]] = ()) -> bytes:
    """The SKU's stock document as the flow shaped it; `NotFound` without one."""
    reader: StockReader = api.state.stock_reader
    doc = await reader.sku(sku)
    if doc is None:
        raise NotFound(missing_sku_message(sku))
    return doc


FAST_ROUTE = FastRoute(SKU_ROUTE, sku_body, max_segment=MAX_ID_LENGTH, query=False)


@router.get(
    "/{sku}/locations/{location_id}",
    responses={200: {"model": LocationStock}, **error_responses(404)},
)
async def read_inventory_at_location(sku: Sku, location_id: LocationId, request: Request) -> Response:
    """Stock of one SKU at one location."""
    doc = await stock_reader(request).location(sku, location_id)
    if doc is None:
        raise NotFound(f"no stock record for sku {sku!r} at location {location_id!r}")
    return _json(doc)
