"""The inventory flow's Prometheus metrics, scraped from a real running flow."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from events.topics import Topic
from flows.launcher import start_flow
from omnistream.settings import Settings
from omnistream.stack import free_port
from tests.harness.flows import publish

pytestmark = pytest.mark.integration


def _receipt(event_id: str, qty: int) -> tuple[Topic, bytes, bytes]:
    body = {"event_id": event_id, "type": "receipt", "ts": "2026-11-22T01:00:00Z", "schema_version": 1,
            "sku": "SKU-M", "location_id": "WH-01", "qty": qty}  # fmt: skip
    return Topic.INVENTORY, b"SKU-M", orjson.dumps(body)


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("omnistream_flow_"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_inventory_flow_exports_events_dead_letters_duplicates_alerts_and_lag(settings: Settings) -> None:
    port = free_port()
    run = start_flow("inventory", settings.model_copy(update={"flow_metrics_port": port}))
    try:
        publish(settings, [_receipt("r1", 1), _receipt("r2", 1), _receipt("r1", 1),
                           (Topic.INVENTORY, b"SKU-M", b"{not json")])  # fmt: skip
        expected = {
            'omnistream_flow_events_total{flow="inventory",topic="inventory",type="receipt"}': 3.0,
            'omnistream_flow_duplicates_dropped_total{flow="inventory"}': 1.0,
            'omnistream_flow_alerts_total{flow="inventory",kind="low_stock",severity="warning"}': 1.0,
            'omnistream_flow_state_entities{flow="inventory",stage="sku_ledgers"}': 1.0,  # as of its snapshot
        }
        deadline = time.monotonic() + 60
        while True:
            try:
                samples = _scrape(port)
            except OSError:
                samples = {}
            if all(samples.get(name) == value for name, value in expected.items()):
                break
            assert time.monotonic() < deadline, f"metrics never reached {expected}; last scrape: {samples}"
            time.sleep(0.2)
        dead = [v for k, v in samples.items() if k.startswith("omnistream_flow_dead_letters_total{")]
        assert dead == [1.0]
        assert samples['omnistream_flow_end_to_end_lag_seconds_count{flow="inventory"}'] >= 1
        assert samples['omnistream_flow_redis_write_seconds_count{flow="inventory"}'] >= 1
    finally:
        run.stop()
