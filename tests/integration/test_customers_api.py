"""`/v1/customers`, `/v1/segments` and `/v1/triggers/stream`, served by a real uvicorn over a real Redis.

Documents, segment sets and triggers are written the way the customers flow's sink writes them
(`CustomerWriter`, `StreamWriter`), so these tests pin the API to what the flow stores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import orjson
import pytest
import redis

from events.triggers import Trigger, TriggerKind
from omnistream.settings import Settings
from operators.customers.lifecycle import SEGMENTS
from state import keys
from state.customer_writer import CustomerDoc, CustomerWriter
from state.doc_writer import DocWriter, FencedDoc
from state.pipeline_scripts import run_counting
from state.stream_writer import StreamWriter
from tests.harness.api import running_api
from tests.integration.test_alerts_api import _read_events


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The API under uvicorn, SSE keep-alives every 0.3 s; auth off (keys and roles: test_api_auth.py)."""
    extra = {"OMNISTREAM_API_SSE_KEEPALIVE_S": "0.3", "OMNISTREAM_AUTH_ENABLED": "false"}
    with running_api(settings, tmp_path / "api.log", extra) as base:
        yield base


pytestmark = pytest.mark.integration


def _write(client: redis.Redis, *docs: CustomerDoc) -> int:
    writer = CustomerWriter(client, SEGMENTS, "g")
    return run_counting(client, lambda pipe: writer.queue(pipe, docs), writer.scripts)


def _doc(customer: str, version: int, stage: str, vip: bool = False, left: str | None = None) -> CustomerDoc:
    body = {"customer_id": customer, "lifecycle": stage, "segments": sorted({stage, *(["vip"] if vip else [])})}
    segments = frozenset(body["segments"])
    return CustomerDoc(customer, version, orjson.dumps(body), segments, None, frozenset({left} if left else ()))


def _trigger(n: int, kind: TriggerKind) -> tuple[str, bytes]:
    due = "2026-11-22T00:00:00.000Z"
    trigger = Trigger(trigger_id=f"{kind.value}:C{n}:x", kind=kind, customer_id=f"C{n}", due_at=due,
                      reasons=["because"], facts={"sku": "SKU-1"}, source_event_ids=[f"e{n}"], ts=due)  # fmt: skip
    return trigger.trigger_id, msgspec.json.encode(trigger)


def test_a_customer_is_served_as_stored_and_an_unknown_one_is_404(api: str, redis_client: redis.Redis) -> None:
    assert _write(redis_client, _doc("C1", 2, "active", vip=True)) == 1
    assert _write(redis_client, _doc("C1", 1, "lapsed")) == 0  # an older version (a replay) changes nothing

    served = httpx.get(f"{api}/v1/customers/C1").json()
    assert served == {"customer_id": "C1", "lifecycle": "active", "segments": ["active", "vip"], "rfm": {"scores": {}}}
    missing = httpx.get(f"{api}/v1/customers/nobody")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_rfm_scores_rank_a_customer_against_the_stored_populations(api: str, redis_client: redis.Redis) -> None:
    body = {"customer_id": "C7", "lifecycle": "active", "rfm": {"orders": 4, "buckets": [100, 30, 90]}}
    _write(redis_client, CustomerDoc("C7", 1, orjson.dumps(body), frozenset({"active"})))
    # Ten customers worldwide: C7 is the most recent, in the middle for frequency, at the bottom for spend.
    world = {"recency": [[90, 9], [100, 1]], "frequency": [[20, 4], [30, 2], [40, 4]], "monetary": [[90, 1], [95, 9]]}
    germany = {"recency": [[100, 1], [120, 1]], "frequency": [[30, 2]], "monetary": [[90, 1], [91, 1]]}
    DocWriter(redis_client, "g").write_batch([
        FencedDoc(keys.customer_population("global"), 1, orjson.dumps(world)),
        FencedDoc(keys.customer_population("country:DE"), 1, orjson.dumps(germany)),
    ])  # fmt: skip

    scores = httpx.get(f"{api}/v1/customers/C7?country=DE").json()["rfm"]["scores"]
    assert scores == {"global": {"r": 5, "f": 3, "m": 1, "population": 10},
                      "country:DE": {"r": 2, "f": 3, "m": 2, "population": 2}}  # fmt: skip
    assert httpx.get(f"{api}/v1/customers/C7").json()["rfm"]["scores"] == {"global": scores["global"]}

    # The API holds the populations it read; a newer version written by the flow is what the next read scores by.
    world["monetary"] = [[80, 10], [95, 10]]
    DocWriter(redis_client, "g").write_batch([FencedDoc(keys.customer_population("global"), 2, orjson.dumps(world))])
    newer = httpx.get(f"{api}/v1/customers/C7?country=DE").json()["rfm"]["scores"]
    assert newer == {"global": {"r": 5, "f": 3, "m": 3, "population": 10}, "country:DE": scores["country:DE"]}
    assert httpx.get(f"{api}/v1/customers/C7?country=Germany").status_code == 422


def test_segments_have_live_sizes_and_members_page_by_cursor(api: str, redis_client: redis.Redis) -> None:
    _write(redis_client, *(_doc(f"C{n}", 1, "at_risk") for n in range(5)), _doc("D1", 1, "new"))
    _write(redis_client, _doc("C0", 2, "active", left="at_risk"))  # C0 bought again: it moves segment, fenced

    sizes = {s["name"]: s["size"] for s in httpx.get(f"{api}/v1/segments").json()["items"]}
    assert sizes == {**dict.fromkeys(SEGMENTS, 0), "at_risk": 4, "new": 1, "active": 1}
    first = httpx.get(f"{api}/v1/segments/at_risk/members?limit=3").json()
    assert first == {"segment": "at_risk", "items": ["C1", "C2", "C3"], "next_cursor": "C3"}
    second = httpx.get(f"{api}/v1/segments/at_risk/members?limit=3&cursor=C3").json()
    assert second == {"segment": "at_risk", "items": ["C4"], "next_cursor": None}
    bad = httpx.get(f"{api}/v1/segments/whales/members")
    assert bad.status_code == 422 and "name" in bad.json()["error"]["message"]
    assert httpx.get(f"{api}/v1/segments/new/members?limit=0").status_code == 422


def test_the_trigger_stream_delivers_new_triggers_of_the_kinds_asked_for(api: str, redis_client: redis.Redis) -> None:
    writer = StreamWriter(redis_client, keys.triggers_stream(), generation="g")
    writer.add_batch([_trigger(1, TriggerKind.AT_RISK)])  # before the client connects: not replayed
    received: list[dict[str, object]] = []
    comments: list[str] = []
    with httpx.stream("GET", f"{api}/v1/triggers/stream?kind=cart_abandoned", timeout=10) as response:
        assert response.status_code == 200
        reader = threading.Thread(target=_read_events, args=(response, 1, received, comments), daemon=True)
        reader.start()
        time.sleep(0.8)
        writer.add_batch([_trigger(2, TriggerKind.VIP_REACHED), _trigger(3, TriggerKind.CART_ABANDONED)])
        writer.add_batch([_trigger(3, TriggerKind.CART_ABANDONED)])  # a replay's repeat: added once
        reader.join(10)
    assert [(e["event"], e["trigger_id"]) for e in received] == [("trigger", "cart_abandoned:C3:x")]
    assert httpx.get(f"{api}/v1/triggers/stream?kind=spam").status_code == 422
