"""Dependencies of the handlers, declared once as `Annotated` aliases.

Each reads what the lifespan put on `app.state`. They are `async def` on purpose: FastAPI runs
a plain `def` dependency in a thread pool, a needless hop on every request.
"""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from omnistream.settings import Settings
from state.stock_reader import StockReader


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.redis
    return client


async def _stock_reader(request: Request) -> StockReader:
    reader: StockReader = request.app.state.stock_reader
    return reader


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[aioredis.Redis, Depends(_redis)]
StockReaderDep = Annotated[StockReader, Depends(_stock_reader)]
