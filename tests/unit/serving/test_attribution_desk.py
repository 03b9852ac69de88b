"""The attribution desk rebuilds an expired answer once, whatever the number of requests that find it expired."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson

from serving.routes.attribution import AttributionDesk
from state.attribution_reader import AttributionReader

KEY = ("last_non_direct", "campaign", "2026-11-01", "2026-11-03")


class SlowReader:
    """Three empty day documents, after a pause in which other requests arrive."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def days(self, days: list[str]) -> list[bytes]:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.fail:
            raise ConnectionError("Redis is down")
        return [orjson.dumps({"day": day}) for day in days]


def desk(reader: SlowReader, cache_s: float) -> AttributionDesk:
    return AttributionDesk(cast(AttributionReader, reader), cache_s, max_days=92)


def test_concurrent_requests_for_an_answer_not_built_yet_share_one_rebuild() -> None:
    reader = SlowReader()
    attribution = desk(reader, cache_s=60.0)

    async def burst() -> list[bytes]:
        return await asyncio.gather(*(attribution.answer(KEY) for _ in range(20)))

    bodies = asyncio.run(burst())
    assert reader.calls == 1
    assert len(set(bodies)) == 1 and orjson.loads(bodies[0])["from"] == "2026-11-01"


def test_an_expired_answer_is_served_while_one_request_rebuilds_it() -> None:
    reader = SlowReader()
    attribution = desk(reader, cache_s=0.01)

    async def run() -> tuple[list[bytes], list[bytes]]:
        first = await attribution.answer(KEY)
        await asyncio.sleep(0.02)  # expired
        during = await asyncio.gather(*(attribution.answer(KEY) for _ in range(20)))
        await asyncio.sleep(0.1)  # the rebuild lands
        return [first], list(during)

    first, during = asyncio.run(run())
    assert reader.calls == 2  # the first build and one rebuild, not 21
    assert set(during) == set(first)


def test_a_failed_rebuild_reaches_the_request_that_waits_for_it_and_the_next_one_retries() -> None:
    reader = SlowReader()
    reader.fail = True
    attribution = desk(reader, cache_s=60.0)

    async def ask() -> Any:
        try:
            return await attribution.answer(KEY)
        except ConnectionError as ex:
            return ex

    assert isinstance(asyncio.run(ask()), ConnectionError)
    reader.fail = False
    assert isinstance(asyncio.run(ask()), bytes) and reader.calls == 2
