"""The benchmark's baseline: a bare FastAPI route doing one HGETALL of a SKU's stock hash.

It is docs/performance.md's "FastAPI route doing one Redis HGETALL" written plainly: no
middleware, no error mapping, FastAPI's default JSON encoding of the returned dict. The
inventory route of `serving` must answer at least as many requests per second.

Run: `uvicorn --factory benchmarks.bare_app:create_app --no-access-log` (from the repo root).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request

from omnistream.settings import settings_or_exit
from state import keys


def create_app(redis_url: str | None = None) -> FastAPI:
    """The baseline app on `redis_url` (default: `OMNISTREAM_REDIS_URL`)."""
    url = redis_url or settings_or_exit().redis.url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(title="bare baseline", lifespan=lifespan)

    @app.get("/bare/{sku}", response_model=None)  # no model: FastAPI's default encoding of the dict
    async def read_bare(sku: str, request: Request) -> dict[str, Any]:
        stock: dict[str, Any] = await request.app.state.redis.hgetall(keys.stock(sku))
        return stock

    return app
