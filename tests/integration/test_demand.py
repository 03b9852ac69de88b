"""The demand flow on the real broker and Redis, read through the API: recovery, no leakage, bad input.

Real Bytewax processes (`flows.launcher`), the private Redis and Tansu of tests/conftest.py.
"""

# These tests are about their feature; keys and roles are tests/integration/test_api_auth.py's, so auth is off here.

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from events.topics import Topic
from omnistream.settings import Settings
from serving.app import create_app
from state import keys
from tests.harness.flows import publish, run_to_end, start, stream_records, with_poll_size

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; London is on UTC until the end of March
STORES = ["STORE-01", "STORE-02"]
SKUS = [f"SKU-{i:03d}" for i in range(60)]


def demand_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "demand_locations": "STORE-*=Europe/London,GB-ENG,3,0.95",
            "demand_shards": 3,
            "snapshot_interval_s": 0.3,
        }
    )


def sale(n: int, ts: datetime, store: str, sku: str, qty: int) -> tuple[Topic, bytes, bytes]:
    event = {
        "event_id": f"e{n}", "type": "sale", "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "schema_version": 1, "store_id": store, "register_id": "R1", "cashier_id": "C1", "txn_id": f"T{n}",
        "currency": "GBP", "items": [{"sku": sku, "qty": qty, "unit_price": 1.0}], "total": float(qty),
        "payment": {"method": "cash"},
    }  # fmt: skip
    return Topic.POS, store.encode(), orjson.dumps(event)


def history(days: int, per_day: int, seed: int = 3) -> list[tuple[Topic, bytes, bytes]]:
    """`days` of sales from START, in event-time order: popular SKUs sell more, Saturdays are quiet."""
    rng = random.Random(seed)
    out = []
    n = 0
    for day in range(days):
        quiet = (START + timedelta(days=day)).weekday() == 5
        for _ in range(per_day // (4 if quiet else 1)):
            n += 1
            ts = START + timedelta(days=day, seconds=rng.uniform(8 * 3600, 20 * 3600))
            sku = SKUS[min(int(rng.expovariate(0.08)), len(SKUS) - 1)]
            out.append(sale(n, ts, rng.choice(STORES), sku, rng.randint(1, 3)))
        # within a day the order of sales is shuffled a little: real streams arrive out of order
    return out


def forecast_hashes(redis_url: str) -> dict[str, dict[bytes, bytes]]:
    """Every forecast and rising-items document, without the lineage field (it differs between runs)."""
    client = redis.Redis.from_url(redis_url)
    found = {}
    for pattern in (keys.forecast("*", "*"), keys.rising("*")):
        for key in client.scan_iter(match=pattern, count=1000):
            fields = client.hgetall(key)
            fields.pop(keys.GENERATION_FIELD.encode(), None)
            found[key.decode()] = fields
    return found


def other_db(settings: Settings, db: int) -> Settings:
    url = settings.redis.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    assert settings.recovery.dir is not None
    return settings.model_copy(update={"redis_url": url, "recovery_dir": settings.recovery.dir.with_name(f"rec-{db}")})


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demand_settings(settings).model_copy(update={"auth_enabled": False}))) as client:
        yield client


def latest_close(redis_url: str) -> int:
    """Days from START to the last closed day of the busiest series (SKU-000 at STORE-01), or -1 before any."""
    doc = redis.Redis.from_url(redis_url).hget(keys.forecast(SKUS[0], STORES[0]), keys.DOC_FIELD)
    if doc is None:
        return -1
    return (datetime.fromisoformat(orjson.loads(doc)["as_of"]).date() - START.date()).days


def test_forecasts_after_kills_mid_replay_equal_an_uninterrupted_run_key_by_key(settings: Settings) -> None:
    settings = demand_settings(settings)
    publish(settings, history(days=90, per_day=800))
    run_to_end(settings, flow="demand")
    expected = forecast_hashes(settings.redis.url)
    assert len(expected) > 100, "most SKUs at both stores should have a forecast"
    assert latest_close(settings.redis.url) >= 88, "the uninterrupted run should close the history's last days"

    # Kills at points of progress (a day the replay has closed), not of time: a timed kill finishes early on a
    # fast machine and never lands on a slow one. A short random pause after the day puts it mid-batch. The
    # crashed runs also read in smaller polls than the uninterrupted one: batching must not change a figure.
    crashed = with_poll_size(other_db(settings, 3), 200)  # a day is then several batches, each its own epoch
    rng = random.Random(9)
    for kill, (low, high) in enumerate([(35, 45), (55, 65), (72, 80)], start=1):
        target = rng.randint(low, high)
        run = start(crashed, flow="demand")
        deadline = time.monotonic() + 180
        while latest_close(crashed.redis.url) < target:
            if not run.alive():
                pytest.fail(f"the flow finished before closing day {target} (kill {kill})")
            assert time.monotonic() < deadline, f"day {target} not closed in time before kill {kill}"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        if not run.alive():
            pytest.fail(f"the flow finished before kill {kill}")
        run.kill()
        assert latest_close(crashed.redis.url) < 89, f"kill {kill} came after the replay's end"
    run_to_end(crashed, flow="demand")

    actual = forecast_hashes(crashed.redis.url)
    assert actual.keys() == expected.keys()
    differing = [key for key in expected if actual[key] != expected[key]]
    assert not differing, f"{len(differing)} documents differ after kills, e.g. {differing[:3]}"


def test_events_dated_after_the_origin_published_out_of_order_leave_the_forecast_unchanged(
    settings: Settings, api: TestClient
) -> None:
    settings = demand_settings(settings)
    past = history(days=21, per_day=300, seed=4)
    origin_end = START + timedelta(days=21)  # midnight closing the origin day (day 20)
    closing = sale(90_000, origin_end + timedelta(hours=1, minutes=30), "STORE-01", "SKU-000", 1)
    future = [sale(80_000 + i, origin_end + timedelta(minutes=5 * i), "STORE-01", "SKU-001", 40) for i in range(10)]
    # Published first, before the origin's last hours: out of order by less than the lateness (1 h).
    publish(settings, [*past[:-50], *future, *past[-50:], closing])
    run_to_end(settings, flow="demand")
    with_future = api.get("/v1/forecasts/SKU-001", params={"location_id": "STORE-01", "days": 14})
    assert with_future.status_code == 200

    alone = other_db(settings, 4)
    alone = alone.model_copy(update={"topic_prefix": settings.topic.prefix + "alone."})
    from omnistream.kafka_admin import create_topics

    create_topics(alone.kafka.brokers, alone.topic.prefix, alone.topic.partitions)
    publish(alone, [*past, closing])
    run_to_end(alone, flow="demand")
    with TestClient(create_app(alone.model_copy(update={"auth_enabled": False}))) as other:
        without = other.get("/v1/forecasts/SKU-001", params={"location_id": "STORE-01", "days": 14})

    assert with_future.json() == without.json()
    assert with_future.json()["as_of"] == (origin_end - timedelta(days=1)).date().isoformat()


def test_bad_input_is_dead_lettered_with_a_reason_and_bad_parameters_get_a_4xx(
    settings: Settings, api: TestClient
) -> None:
    settings = demand_settings(settings)
    day = START.date()
    weather: list[tuple[Topic, bytes | None, bytes]] = [
        (Topic.WEATHER, b"STORE-01", orjson.dumps({
            "event_id": "w1", "type": "weather", "ts": "2026-03-02T06:00:00.000Z", "schema_version": 1,
            "location_id": "STORE-01", "day": (day + timedelta(days=60)).isoformat(), "kind": "forecast",
            "temperature_c": 12.0})),
        (Topic.WEATHER, b"MOON-1", orjson.dumps({
            "event_id": "w2", "type": "weather", "ts": "2026-03-02T06:00:00.000Z", "schema_version": 1,
            "location_id": "MOON-1", "day": day.isoformat(), "kind": "observation", "temperature_c": -150.0})),
        (Topic.WEATHER, b"MOON-2", orjson.dumps({
            "event_id": "w3", "type": "weather", "ts": "2026-03-02T06:00:00.000Z", "schema_version": 1,
            "location_id": "MOON-2", "day": day.isoformat(), "kind": "observation", "temperature_c": 10.0})),
        (Topic.WEATHER, None, b"\x00\x01 not json"),
    ]  # fmt: skip
    publish(settings, [*history(days=2, per_day=50), *weather])
    run_to_end(settings, flow="demand")
    letters = stream_records(settings.redis.url, keys.dlq_stream())
    reasons = sorted((str(letter["source_topic"]), str(letter["error"])[:40]) for letter in letters)
    weather_topic = settings.topic(Topic.WEATHER)
    assert [topic for topic, _ in reasons] == [weather_topic] * 4
    errors = " | ".join(error for _, error in reasons)
    assert "60 days ahead" in errors or "days ahead" in errors
    assert "Unknown location 'MOON-2'" in errors
    assert "-150" in errors or "Expected `float` >= -90" in errors

    assert api.get("/v1/forecasts/SKU-000", params={"location_id": "STORE-01"}).status_code == 200
    for params, status, word in [
        ({}, 422, "location_id"),
        ({"location_id": "STORE-01", "days": 0}, 422, "days"),
        ({"location_id": "STORE-01", "days": 29}, 422, "days"),
        ({"location_id": "STORE-01", "days": "seven"}, 422, "days"),
        ({"location_id": "STORE-99"}, 404, "STORE-99"),
    ]:
        answer = api.get("/v1/forecasts/SKU-000", params=params)
        body: dict[str, Any] = answer.json()
        assert answer.status_code == status and word in body["error"]["message"], (params, body)
    rising = api.get("/v1/forecasts/rising", params={"location_id": "STORE-01", "limit": 3})
    assert rising.status_code == 200 and len(rising.json()["items"]) <= 3
    assert api.get("/v1/forecasts/rising", params={"location_id": "STORE-01", "limit": 0}).status_code == 422


def receipt(n: int, ts: datetime, store: str, sku: str, qty: int) -> tuple[Topic, bytes, bytes]:
    event = {
        "event_id": f"r{n}", "type": "receipt", "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "schema_version": 1, "sku": sku, "location_id": store, "qty": qty,
    }  # fmt: skip
    return Topic.INVENTORY, sku.encode(), orjson.dumps(event)


def test_reorders_reach_the_topic_redis_and_the_api_with_days_of_cover(settings: Settings, api: TestClient) -> None:
    """Three weeks of sales on top of received stock: SKUs sold down below their reorder point get one."""
    settings = demand_settings(settings)
    past = history(days=21, per_day=300, seed=5)
    sold: dict[tuple[str, str], int] = {}
    for _, _, raw in past:
        event = orjson.loads(raw)
        pair = (event["store_id"], event["items"][0]["sku"])
        sold[pair] = sold.get(pair, 0) + event["items"][0]["qty"]
    # Every pair gets what it sold plus 10 units, but SKU-000 (the best seller) at STORE-01 20 units only.
    stocked = [
        receipt(i, START, store, sku, 20 if (store, sku) == ("STORE-01", "SKU-000") else sold[store, sku] + 10_000)
        for i, (store, sku) in enumerate(sorted(sold))
    ]
    # The stock first: a pair's forecast is kept only once its stock is known (operators.demand.reorders),
    # and read in one go the sales partitions can close every day before the inventory partition's
    # receipts are read (2 runs in 5 opened no reorder so).
    publish(settings, stocked)
    run_to_end(settings, flow="demand")
    publish(settings, [*past, sale(90_001, START + timedelta(days=21, hours=2), "STORE-02", "SKU-001", 1)])
    run_to_end(settings, flow="demand")

    from tests.e2e.test_inventory_e2e import consume_topic

    records = [orjson.loads(v) for _, v in consume_topic(settings, settings.topic(Topic.SUGGESTIONS)) if v]
    reorders = [r for r in records if r["kind"] == "reorder"]
    opened = {r["suggestion_id"] for r in reorders if r["status"] == "open"}
    assert opened == {"reorder:SKU-000:STORE-01"}, opened  # oversold from 20: the only pair short of stock
    served = api.get("/v1/suggestions/reorders", params={"location_id": "STORE-01"})
    assert served.status_code == 200
    items = served.json()["items"]
    assert [i["suggestion_id"] for i in items] == ["reorder:SKU-000:STORE-01"]
    only = items[0]
    assert only["available"] == 20 - sold["STORE-01", "SKU-000"] and only["cover_days"] == 0.0
    assert only["lead_time_days"] == 3 and only["service_level"] == 0.95
    assert only["qty"] >= only["order_up_to"] - only["available"] and only["qty"] > 0
    assert only["forecast_as_of"] == (START + timedelta(days=20)).date().isoformat()
    client = redis.Redis.from_url(settings.redis.url)
    assert client.smembers(keys.suggestion_skus("reorder")) == {keys.reorder_member("SKU-000", "STORE-01").encode()}
    assert api.get("/v1/suggestions/reorders", params={"sku": "SKU-000"}).json()["items"] == items
    assert api.get("/v1/suggestions/reorders", params={"location_id": "STORE-02"}).json() == {"items": []}
    for params, word in [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"sku": ""}, "sku")]:
        answer = api.get("/v1/suggestions/reorders", params=params)
        assert answer.status_code == 422 and word in answer.json()["error"]["message"], (params, answer.json())
