"""`GET /v1/flows`: what the inventory flow's sink reports (heartbeat, lag, dead letters by reason), read by the API."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from events.topics import Topic
from omnistream.settings import Settings
from serving.app import create_app
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end

pytestmark = pytest.mark.integration


def _receipt(event_id: str, qty: int) -> tuple[Topic, bytes, bytes]:
    body = {"event_id": event_id, "type": "receipt", "ts": "2026-11-22T01:00:00Z", "schema_version": 1,
            "sku": "SKU-H", "location_id": "WH-01", "qty": qty}  # fmt: skip
    return Topic.INVENTORY, b"SKU-H", orjson.dumps(body)


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
