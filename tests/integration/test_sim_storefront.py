"""The simulator's storefront: it asks the real API for recommendations with a storefront key and sends
clicks back with `rec_request_id`, and the recommend flow counts both in the experiment (what `make demo`
shows on the console)."""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient

from events.topics import Topic
from omnistream.settings import Settings
from serving.app import create_app
from sim.record import SimRecord
from sim.storefront import Storefront
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end
from tests.integration.test_recommend import browsing_history, run_flows, stocked_catalog, view

pytestmark = pytest.mark.integration


def test_storefront_requests_and_clicks_reach_the_experiment(settings: Settings) -> None:
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history()])
    run_flows(settings)

    shoppers = [view(f"S-{n}", "SKU-B", time.time(), user_id=f"U-{n}") for n in range(16)]
    records = iter(SimRecord(topic, key, value) for topic, key, value in shoppers)
    app = create_app(settings)
    with TestClient(app, headers=key_headers(issue_key(settings.redis.url, "storefront").key)) as client:
        storefront = Storefront("unused", "unused", ask_rate=1.0, click_rate=0.5, seed=3, client=client)
        out = list(storefront.shop(records))
        assert app.state.recommender.publisher.flush(10.0) == 0  # the served answers are on Kafka
    clicks = [event for event in map(orjson.loads, (r.value for r in out)) if event.get("rec_request_id")]
    assert storefront.counts.asked == 16 and storefront.counts.failed == 0
    assert storefront.counts.clicked == len(clicks) > 0
    assert all(c["type"] == "product_view" and c["rec_request_id"] and c["variant"] for c in clicks)

    publish(settings, [(r.topic, r.key, r.value) for r in out if r.topic is Topic.CLICKSTREAM])
    run_to_end(settings, flow="recommend")
    with TestClient(create_app(settings), headers=key_headers(issue_key(settings.redis.url, "console").key)) as api:
        arms = {arm["variant"]: arm["metrics"] for arm in api.get("/v1/experiments").json()["variants"]}
    assert sum(m["requests"] for m in arms.values()) == 16
    assert sum(m["clicks"] for m in arms.values()) == len(clicks)
    by_variant = {v: sum(1 for c in clicks if c["variant"] == v) for v in arms}
    assert {v: m["clicks"] for v, m in arms.items()} == by_variant


def test_storefront_keeps_publishing_when_the_api_refuses(settings: Settings) -> None:
    records = [SimRecord(*view("S-1", "SKU-B", time.time(), user_id="U-1"))]
    with TestClient(create_app(settings), headers={"Authorization": "Bearer osk_revoked"}) as client:
        storefront = Storefront("unused", "unused", ask_rate=1.0, click_rate=1.0, client=client)
        assert list(storefront.shop(iter(records))) == records
    assert storefront.counts.failed == 1 and storefront.counts.statuses == {401: 1}
