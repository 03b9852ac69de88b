"""Checkout holds end to end: concurrent POSTs → Kafka → inventory flow → Redis → GET, with a SIGKILL mid-race.

Real broker, real Redis, the real Bytewax flow and the API as its own process
(tests/e2e/conftest.py). Fifty shoppers race for ten units: the flow decides
in event order, so exactly ten holds, forty rejections, and stock never below
zero; retries with the same Idempotency-Key get the same reservation; a flow
killed after deciding, and recovered by replaying every reservation (keeping
the decisions it had published), rewrites nothing, and its state agrees with
Redis when one hold is released and one more shopper asks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
import redis

from events.topics import Topic
from flows.launcher import FlowRun, start_flow
from omnistream.settings import Settings
from state import keys
from tests.e2e.conftest import RunningApi
from tests.harness.flows import publish, stream_records

pytestmark = pytest.mark.e2e

SKU, STORE, UNITS, SHOPPERS = "SKU-LAST-TEN", "STORE-01", 10, 50


def _receipt() -> bytes:
    return orjson.dumps({"event_id": "rcpt-1", "type": "receipt", "ts": "2026-12-06T09:00:00.000Z",
                         "schema_version": 1, "sku": SKU, "location_id": STORE, "qty": UNITS})  # fmt: skip


async def _race(api: RunningApi, shoppers: int = SHOPPERS,
                key_prefix: str = "shopper") -> tuple[list[httpx.Response], list[httpx.Response]]:  # fmt: skip
    """`shoppers` POSTs at once, then each one retried at once with its key; (first answers, retries)."""
    body = orjson.dumps({"sku": SKU, "location_id": STORE, "qty": 1, "hold_s": 3600})
    async with httpx.AsyncClient(base_url=api.url, timeout=30.0, headers=api.headers) as client:

        async def ask(n: int) -> httpx.Response:
            headers = {"Idempotency-Key": f"{key_prefix}-{n}", "content-type": "application/json"}
            return await client.post("/v1/reservations", content=body, headers=headers)

        first = await asyncio.gather(*(ask(n) for n in range(shoppers)))
        retries = await asyncio.gather(*(ask(n) for n in range(shoppers)))
    return list(first), list(retries)


def _decisions(
    api: RunningApi, ids: list[str], timeout_s: float, until: str | None = None
) -> dict[str, dict[str, Any]]:
    """The reservations once none is pending (or each is `until`), or as they are at the timeout."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=api.url, timeout=10.0, headers=api.headers) as client:
        while True:
            docs = {rid: client.get(f"/v1/reservations/{rid}").json() for rid in ids}
            done = all(doc["status"] != "pending" if until is None else doc["status"] == until for doc in docs.values())
            if done or time.monotonic() > deadline:
                return docs
            time.sleep(0.1)


def _state(redis_url: str, ids: list[str]) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    return {"stock": client.hgetall(keys.stock(SKU)), **{rid: client.hgetall(keys.reservation(rid)) for rid in ids}}


def _wait_for_stock(redis_url: str, run: FlowRun) -> None:
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while client.hget(keys.stock(SKU), keys.DOC_FIELD) is None:
        assert run.alive() and time.monotonic() < deadline, "the flow did not write the receipt in 60 s"
        time.sleep(0.05)


def test_fifty_shoppers_racing_for_ten_units_get_exactly_ten_holds(settings: Settings, api: RunningApi) -> None:
    # No snapshot within the test: the SIGKILL makes the recovered flow replay and decide every reservation again.
    settings = settings.model_copy(update={"snapshot_interval_s": 300.0})
    publish(settings, [(Topic.INVENTORY, SKU.encode(), _receipt())])
    run = start_flow("inventory", settings)  # tailing, recovery on
    try:
        _wait_for_stock(settings.redis.url, run)
        first, retries = asyncio.run(_race(api))
        assert [r.status_code for r in first] == [202] * SHOPPERS, [r.text for r in first if r.status_code != 202]
        ids = [r.json()["reservation_id"] for r in first]
        assert len(set(ids)) == SHOPPERS
        assert [r.json()["reservation_id"] for r in retries] == ids  # the same key, the same reservation
        decided = _decisions(api, ids, timeout_s=60.0)

        statuses = sorted(doc["status"] for doc in decided.values())
        assert statuses == ["held"] * UNITS + ["rejected"] * (SHOPPERS - UNITS), statuses
        assert all(doc["reason"] == "insufficient_stock" for doc in decided.values() if doc["status"] == "rejected")
        assert _stock(api) == (UNITS, UNITS, 0)
        assert sorted(_published_reservations(settings)) == sorted(ids), "one event per reservation, none per retry"

        # SIGKILL, then recover: the flow replays every reservation from the start and must end as before,
        # which shows when one hold is released and one more shopper asks.
        before = _state(settings.redis.url, ids)
        run.kill()
        run = start_flow("inventory", settings)
        released = next(rid for rid in ids if decided[rid]["status"] == "held")
        cancel = {"event_id": "cancel-1", "type": "order_cancel", "ts": "2026-12-06T09:00:00.000Z",
                  "schema_version": 1, "order_id": released, "sku": SKU, "location_id": STORE}  # fmt: skip
        publish(settings, [(Topic.INVENTORY, released.encode(), orjson.dumps(cancel))])
        assert _decisions(api, [released], timeout_s=60.0, until="cancelled")[released]["status"] == "cancelled"
        after = _state(settings.redis.url, ids)
        changed = [rid for rid in ids if rid != released and after[rid] != before[rid]]
        assert not changed, f"the recovered flow rewrote {len(changed)} reservations"
        assert _stock(api) == (UNITS, UNITS - 1, 1)
        (late,), _ = asyncio.run(_race(api, shoppers=1, key_prefix="late-shopper"))
        late_id = late.json()["reservation_id"]
        assert _decisions(api, [late_id], timeout_s=60.0)[late_id]["status"] == "held"
        assert _stock(api) == (UNITS, UNITS, 0)
    finally:
        run.kill()
    alerts = stream_records(settings.redis.url, keys.alerts_stream())
    assert not [a for a in alerts if a["kind"] == "oversell"], "stock went below zero on the way"


def _stock(api: RunningApi) -> tuple[int, int, int]:
    stock = httpx.get(f"{api.url}/v1/inventory/{SKU}", timeout=10.0, headers=api.headers).json()
    return stock["total_on_hand"], stock["total_reserved"], stock["total_available"]


def _published_reservations(settings: Settings) -> list[str]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "check", "enable.auto.commit": False})
    topic = settings.topic(Topic.INVENTORY)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.topic.partitions)])
        ids, idle = [], 0
        while idle < 3:
            messages = consumer.consume(100, timeout=0.5)
            idle = idle + 1 if not messages else 0
            for message in messages:
                event = orjson.loads(message.value())
                if event["type"] == "reservation":
                    ids.append(event["reservation_id"])
        return ids
    finally:
        consumer.close()
