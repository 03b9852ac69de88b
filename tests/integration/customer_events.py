"""Building retail events for the customers flow's integration tests, as producers publish them."""

from __future__ import annotations

from typing import Any

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic
from sim.keys import key_for

START = 1795305600.0  # 2026-11-22T00:00:00Z
CARD = {"method": "card", "card_token": "tok_1", "card_bin": "411111", "entry_mode": "chip"}


class EventLog:
    """Events in publish order, as (topic, key, value) for `tests.harness.flows.publish`."""

    def __init__(self) -> None:
        self.records: list[tuple[Topic, bytes | None, bytes]] = []
        self._n = 0

    def add(self, topic: Topic, type_: str, offset_s: float, event_id: str | None = None, **fields: Any) -> str:
        self._n += 1
        event_id = event_id or f"e{self._n}"
        event = {"event_id": event_id, "type": type_, "ts": rfc3339_ms(START + offset_s), "schema_version": 1, **fields}
        value = orjson.dumps(event)
        self.records.append((topic, key_for(topic, value), value))
        return event_id

    def click(self, type_: str, offset_s: float, user: str, **fields: Any) -> str:
        return self.add(Topic.CLICKSTREAM, type_, offset_s, session_id=f"s-{user}", user_id=user, channel="web",
                        **fields)  # fmt: skip

    def till(self, type_: str, offset_s: float, store: str, sku: str, customer: str | None, **fields: Any) -> str:
        self._n += 1
        till = {"store_id": store, "register_id": "R1", "cashier_id": "C1", "txn_id": f"T{self._n}", "currency": "EUR",
                "items": [{"sku": sku, "qty": 1, "unit_price": 10.0}], "total": 10.0, "payment": CARD}  # fmt: skip
        if customer is not None:
            till["customer_id"] = customer
        return self.add(Topic.POS, type_, offset_s, **till, **fields)

    def take(self) -> list[tuple[Topic, bytes | None, bytes]]:
        """The records added since the last call."""
        records, self.records = self.records, []
        return records
