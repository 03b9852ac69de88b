"""A recovery replay keeps the hold decisions the inventory flow already published (real broker, Redis, Bytewax).

A replay may interleave a SKU's events differently from the first pass (till
sales and purchases travel on other topics than holds), so re-deciding a
borderline hold could contradict what Redis, and the shopper, were told. The
flow looks up the decisions already stored before it decides.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from events.topics import Topic
from omnistream.settings import Settings
from state import keys
from tests.harness.flows import publish, run_to_end

pytestmark = pytest.mark.integration


def _event(event_id: str, type_: str, second: int, **fields: Any) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": type_, "ts": f"2026-12-06T09:00:{second:02d}.000Z",
                         "schema_version": 1, "sku": "KETTLE", "location_id": "S1", **fields})  # fmt: skip


def _hold(reservation_id: str, second: int) -> tuple[Topic, bytes, bytes]:
    event = _event(reservation_id, "reservation", second, reservation_id=reservation_id, qty=1, hold_s=3600.0)
    return Topic.INVENTORY, b"KETTLE", event


def _status(client: redis.Redis, reservation_id: str) -> str:
    doc = client.hget(keys.reservation(reservation_id), keys.DOC_FIELD)
    assert doc is not None, f"{reservation_id} undecided"
    status: str = orjson.loads(doc)["status"]
    return status


def test_a_hold_published_before_a_replay_keeps_its_decision(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis.url)
    # As if the flow had held R-2 and written it, then crashed: its replay now meets R-2 after R-1 took the unit.
    client.hset(keys.reservation("R-2"), keys.DOC_FIELD, orjson.dumps({"reservation_id": "R-2", "status": "held"}))
    publish(settings, [(Topic.INVENTORY, b"KETTLE", _event("r1", "receipt", 0, qty=1)), _hold("R-1", 1),
                       _hold("R-2", 2), _hold("R-3", 3)])  # fmt: skip
    run_to_end(settings)

    assert [_status(client, rid) for rid in ("R-1", "R-3")] == ["held", "rejected"]  # decided now, in event order
    stock = orjson.loads(client.hget(keys.stock("KETTLE"), keys.DOC_FIELD) or b"{}")
    assert (stock["total_on_hand"], stock["total_reserved"]) == (1, 2), "R-2 kept its published hold"
