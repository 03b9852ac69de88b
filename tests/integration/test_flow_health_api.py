"""`GET /v1/flows`: what the inventory flow's sink reports (heartbeat, lag, dead letters by reason), read by the API."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from events.topics import Topic
from flows.launcher import start_flow
from omnistream.settings import Settings
from serving.app import create_app
from state import keys
from state.connection import connect
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end, with_poll_size

pytestmark = pytest.mark.integration


def _receipt(event_id: str, qty: int, sku: str = "SKU-H") -> tuple[Topic, bytes, bytes]:
    body = {"event_id": event_id, "type": "receipt", "ts": "2026-11-22T01:00:00Z", "schema_version": 1,
            "sku": sku, "location_id": "WH-01", "qty": qty}  # fmt: skip
    return Topic.INVENTORY, sku.encode(), orjson.dumps(body)


def test_flows_route_reports_the_inventory_flow_and_its_dead_letters(settings: Settings) -> None:
    publish(settings, [_receipt("r1", 3), _receipt("r2", 4), (Topic.INVENTORY, b"SKU-H", b"{not json")])
    run_to_end(settings)

    app = create_app(settings)
    with TestClient(app, headers=key_headers(issue_key(settings.redis.url, "console").key)) as api:
        health = api.get("/v1/flows").json()
        refused = api.get("/v1/flows", headers=key_headers(issue_key(settings.redis.url, "storefront").key))
    [inventory] = [f for f in health["flows"] if f["flow"] == "inventory"]
    assert inventory["workers"] >= 1 and inventory["records"] >= 2
    assert inventory["dead_letters"] == {"not_json": 1}
    assert inventory["last_write_at"].endswith("Z") and inventory["event_lag_s"] >= 0
    assert health["dead_letters"] == {"total": 1, "sampled": 1, "by_reason": {"not_json": 1}}
    assert refused.status_code == 403


def test_consumer_lag_of_a_backlog_is_shown_then_falls_to_zero_and_epochs_go_on(settings: Settings) -> None:
    """Events produced while the flow is stopped are its lag when it starts; it reads them and the lag is 0."""
    backlog = 150_000
    publish(settings, (_receipt(f"b{n}", 1, sku=f"SKU-L{n % 500}") for n in range(backlog)))
    client = connect(settings.redis.url)
    app = create_app(settings.model_copy(update={"api_redis_timeout_ms": 2000}))  # the flow loads both cores
    seen: list[tuple[float, int | None]] = []
    # Small polls keep the backlog in reading over several heartbeats (one a second): the flow reads
    # 150k receipts in about one second at its default poll size, which a first beat can miss. Tailing:
    # the heartbeat alone must tell the lag reached 0.
    run = start_flow("inventory", with_poll_size(settings, 50))
    try:
        with TestClient(app, headers=key_headers(issue_key(settings.redis.url, "console").key)) as api:

            def inventory() -> dict[str, Any] | None:
                flows = [f for f in api.get("/v1/flows").json()["flows"] if f["flow"] == "inventory"]
                return flows[0] if flows else None

            deadline = time.monotonic() + 120.0
            flow = None
            while time.monotonic() < deadline:
                flow = inventory()
                if flow is not None:
                    seen.append((time.monotonic(), flow["consumer_lag"]))
                    if flow["consumer_lag"] == 0 and any(lag for _, lag in seen):
                        break
                time.sleep(0.1)
            assert flow is not None, "the flow never reported"
            lags = [lag for _, lag in seen if lag is not None]
            assert lags and max(lags) > 0, f"no lag seen while the backlog was read: {seen[:20]}"
            assert flow["consumer_lag"] == 0, f"the lag did not fall to 0: last {seen[-5:]}"
            by_topic = flow["consumer_lag_by_topic"]
            assert by_topic[settings.topic(Topic.INVENTORY)] == 0 and set(by_topic.values()) == {0}
            assert max(lags) <= backlog
            # Epochs go on while the flow idles at the end of its input, and the heartbeat with them.
            first_epochs, first_beat = flow["epochs"], flow["beat_at"]
            time.sleep(2.5)
            later = inventory()
            assert later is not None and later["epochs"] > first_epochs and later["beat_at"] > first_beat
            assert later["consumer_lag"] == 0 and later["last_epoch_at"].endswith("Z")
            [worker] = later["per_worker"]
            assert worker["worker"] == 0 and worker["consumer_lag"] == 0
        assert client.hget(keys.stock("SKU-L0"), keys.STOCK_DOC_FIELD) is not None
    finally:
        run.stop()
        client.close()
    print(f"consumer lag seen: {[lag for _, lag in seen][:12]} ... largest {max(lags)}, {len(lags)} polls until 0")
