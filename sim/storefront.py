"""A storefront in front of the simulated shoppers: it asks the API for recommendations and clicks some.

Live runs only (`omnistream simulate --api URL`, as `omnistream up --simulate` does): as the
simulated product views go out, a share of them first ask `GET /v1/recommendations` for the
shopper, as a product page would, with a storefront key. Some of those answers are clicked: a
`product_view` of a recommended SKU carrying the answer's `request_id` as `rec_request_id`
and its `variant`, so the recommend flow joins the click to the served answer and the
experiment's live counts (`GET /v1/experiments`, the console) move.

The API being away, slow or refusing (429) costs the simulation nothing but the asking: the
view is published all the same and the failure counted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from events.topics import Topic
from sim.record import SimRecord
from sim.timestamps import rfc3339_ms

_PRODUCT_VIEW = b'"type":"product_view"'
_SHOPPER_FIELDS = ("session_id", "user_id", "channel", "device_id", "ip_country")


@dataclass
class StorefrontCounts:
    """What the storefront did: answers asked for, clicks sent, asks that failed."""

    asked: int = 0
    clicked: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Storefront:
    """Asks for recommendations on a share of product views and clicks a share of the answers."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        ask_rate: float = 0.25,
        click_rate: float = 0.3,
        seed: int = 7,
        timeout_s: float = 1.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.client = client or httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        self.ask_rate = ask_rate
        self.click_rate = click_rate
        self.rng = random.Random(seed)
        self.counts = StorefrontCounts()

    def shop(self, records: Iterator[SimRecord]) -> Iterator[SimRecord]:
        """`records`, with a recommendation click after some product views."""
        for record in records:
            yield record
            if (
                record.topic is Topic.CLICKSTREAM
                and _PRODUCT_VIEW in record.value
                and not record.malformed
                and self.rng.random() < self.ask_rate
            ):
                click = self._visit(orjson.loads(record.value))
                if click is not None:
                    yield SimRecord(Topic.CLICKSTREAM, record.key, orjson.dumps(click))

    def _visit(self, view: dict[str, Any]) -> dict[str, Any] | None:
        if view.get("rec_request_id"):
            return None  # already a click on a recommendation
        params = {"sku": view["sku"], "k": 5}
        for name in ("user_id", "session_id", "channel"):
            if view.get(name):
                params[name] = view[name]
        self.counts.asked += 1
        try:
            response = self.client.get("/v1/recommendations", params=params)
        except httpx.HTTPError:
            self.counts.failed += 1
            return None
        self.counts.statuses[response.status_code] = self.counts.statuses.get(response.status_code, 0) + 1
        if response.status_code != 200:
            self.counts.failed += 1
            return None
        answer = response.json()
        if not answer["items"] or self.rng.random() >= self.click_rate:
            return None
        chosen = answer["items"][min(int(self.rng.expovariate(1.0)), len(answer["items"]) - 1)]
        self.counts.clicked += 1
        # Dated after the answer was served (the API stamps it with its clock), so the flow joins them.
        click = {"event_id": f"{view['event_id']}-rec", "type": "product_view", "ts": rfc3339_ms(time.time() + 0.5),
                 "schema_version": 1}  # fmt: skip
        click |= {name: view[name] for name in _SHOPPER_FIELDS if name in view}
        click |= {"sku": chosen["sku"], "rec_request_id": answer["request_id"], "variant": answer["variant"]}
        return click

    def close(self) -> None:
        self.client.close()
