"""The test oracle: stock per SKU × location computed from CONTRACT.md "Stock semantics" alone.

It shares no code with `operators/` or `flows/`, on purpose: an end-to-end test
that derived its expectation from the code under test would agree with any bug.
It is written for clarity, not speed: it keeps every event and computes the
levels at the end, so the answer does not depend on the order events arrived
in (the flow's answer must not either: partitions and topics interleave freely).

The rules, per (`sku`, `location_id`):

- `omni.inventory`: `receipt` +qty, `transfer_in` +qty, `transfer_out` -qty,
  `adjustment` +qty (signed), `fulfilment` -qty on-hand, and the qty counts as
  fulfilled for the order line (`order_id`, `sku`, `location_id`);
  `order_cancel` cancels the whole order, a line, or part of one (the order
  lines' rules are `tests/e2e/expected_orders.py`'s); `count` sets on-hand as
  of its `ts`; `reservation` holds qty if the flow held it (see below).
- `omni.pos`: `sale` -qty per line at `store_id` (lines of one SKU add up),
  `return` +qty; `void` removes every stock change of the txn named by
  `original_txn_id`, as if it never happened (voiding twice is voiding once).
- `omni.clickstream`: `purchase` reserves each item's qty at
  `fulfilment_location_id` for the line (`order_id`, `sku`); other types have
  no stock effect.
- on_hand = the latest count (by `ts`; on a tie the larger `event_id`) plus the
  changes dated strictly after it (those at or before it are in the count);
  without a count, the sum of all changes.
- reserved of an order line: `tests/e2e/expected_orders.py`; a location's
  reserved is the sum of its order lines and held reservations.
  available = on_hand - reserved.
- A reservation is decided in arrival order (first come, first served), which
  no oracle over the event set can know: the decisions are given
  (`decide`). A held one reserves qty - fulfilled - partial cancels (never
  below 0), 0 once cancelled whole or lapsed: when the SKU's event time (the
  newest `ts` of any event applied to the SKU: its inventory events, till
  lines, purchase lines, and order cancels that reach one of its lines)
  reaches its `ts + hold_s`.
- An `event_id` seen before changes nothing.

Only valid events may be added: telling malformed payloads apart is the
caller's job (the simulator flags them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.e2e.expected_orders import ExpectedOrders

Pair = tuple[str, str]
"""(sku, location_id)"""
OrderLine = tuple[str, str, str]
"""(order_id, sku, location_id)"""


@dataclass(frozen=True, slots=True)
class Level:
    """Expected stock of one SKU at one location."""

    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def as_tuple(self) -> tuple[int, int, int]:
        return self.on_hand, self.reserved, self.available


@dataclass(frozen=True, slots=True)
class _Change:
    """One on-hand change: `delta` at `pair`, dated `ts`."""

    pair: Pair
    ts: datetime
    delta: int


def parse_ts(text: str) -> datetime:
    """An RFC 3339 timestamp with offset, as an aware datetime (so any offsets compare correctly).

    >>> parse_ts("2026-11-22T01:00:00.500Z") == parse_ts("2026-11-22T02:00:00.500+01:00")
    True
    """
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return ts


class ExpectedStock:
    """Expected on-hand, reserved and available per (sku, location_id) from valid input events.

    Examples
    --------
    >>> stock = ExpectedStock()
    >>> def ev(event_id, type_, ts, **fields):
    ...     return {"event_id": event_id, "type": type_, "ts": f"2026-11-22T01:00:{ts:02d}Z",
    ...             "schema_version": 1, **fields}
    >>> stock.add("inventory", ev("e1", "receipt", 0, sku="A", location_id="S1", qty=10))
    >>> stock.add("pos", ev("e2", "sale", 5, store_id="S1", txn_id="T1",
    ...                     items=[{"sku": "A", "qty": 2, "unit_price": 1.0}]))
    >>> stock.add("clickstream", ev("e3", "purchase", 6, order_id="O1", fulfilment_location_id="S1",
    ...                             items=[{"sku": "A", "qty": 3, "unit_price": 1.0}]))
    >>> stock.add("inventory", ev("e4", "count", 3, sku="A", location_id="S1", on_hand=7))  # late
    >>> stock.add("pos", ev("e2", "sale", 5, store_id="S1", txn_id="T1",
    ...                     items=[{"sku": "A", "qty": 2, "unit_price": 1.0}]))  # a duplicate
    >>> stock.levels()[("A", "S1")].as_tuple()
    (5, 3, 2)
    >>> stock.duplicates
    1
    """

    def __init__(self) -> None:
        self.duplicates = 0
        self.events = 0
        self._event_ids: set[str] = set()
        self._changes: list[_Change] = []  # movements, fulfilments (never voidable)
        self._txn_changes: dict[str, list[_Change]] = defaultdict(list)  # till changes by txn_id
        self._voided: set[str] = set()
        self._counts: dict[Pair, tuple[datetime, str, int]] = {}  # the latest count per pair
        self._orders = ExpectedOrders()
        self._purchases: dict[str, list[tuple[float, str, list[str]]]] = defaultdict(list)  # order -> (ts, loc, skus)
        self._cancels: list[tuple[float, Mapping[str, Any]]] = []
        self._holds: dict[str, tuple[Pair, int, float]] = {}  # reservation id -> (pair, qty, until)
        self._held: set[str] = set()  # reservation ids the flow held (`decide`)
        self._sku_time: dict[str, float] = {}  # newest ts of an event applied to the SKU, cancels aside
        self._touched: set[Pair] = set()  # pairs some non-till event names

    def add(self, topic: str, event: Mapping[str, Any]) -> None:
        """Take one valid event of `topic` (`inventory`, `pos`, `clickstream`; others have no stock effect)."""
        event_id = event["event_id"]
        if event_id in self._event_ids:
            self.duplicates += 1  # producers retry with the same id (CONTRACT.md envelope)
            return
        self._event_ids.add(event_id)
        self.events += 1
        topic = str(topic)
        if topic == "inventory":
            self._add_inventory(event)
        elif topic == "pos":
            self._add_till(event)
        elif topic == "clickstream" and event["type"] == "purchase":
            location_id = event["fulfilment_location_id"]
            ts = parse_ts(event["ts"]).timestamp()
            self._purchases[event["order_id"]].append((ts, location_id, [item["sku"] for item in event["items"]]))
            for item in event["items"]:
                self._touched.add((item["sku"], location_id))
                self._saw(item["sku"], ts)
        self._orders.add(topic, event)

    def decide(self, reservation_id: str, held: bool) -> None:
        """The flow's decision on a reservation: held, or rejected."""
        if held:
            self._held.add(reservation_id)
        else:
            self._held.discard(reservation_id)

    def reservation_ids(self) -> list[str]:
        return sorted(self._holds)

    def _saw(self, sku: str, ts: float) -> None:
        if ts > self._sku_time.get(sku, float("-inf")):
            self._sku_time[sku] = ts

    def _add_inventory(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "order_cancel":
            self._cancels.append((parse_ts(event["ts"]).timestamp(), event))
            if event.get("sku") is not None and event.get("location_id") is not None:
                self._touched.add((event["sku"], event["location_id"]))
            return
        pair = (event["sku"], event["location_id"])
        ts = parse_ts(event["ts"])
        self._touched.add(pair)
        self._saw(event["sku"], ts.timestamp())
        if kind in ("receipt", "transfer_in", "adjustment"):
            self._changes.append(_Change(pair, ts, event["qty"]))
        elif kind == "transfer_out" or kind == "fulfilment":
            self._changes.append(_Change(pair, ts, -event["qty"]))
        elif kind == "reservation":
            self._holds[event["reservation_id"]] = (pair, event["qty"], ts.timestamp() + event["hold_s"])
        elif kind == "count":
            candidate = (ts, event["event_id"], event["on_hand"])
            latest = self._counts.get(pair)
            if latest is None or candidate[:2] > latest[:2]:  # later ts wins; on a tie, the larger event_id
                self._counts[pair] = candidate
        else:
            raise ValueError(f"not an inventory event type: {kind!r}")

    def _add_till(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "void":
            self._voided.add(event["original_txn_id"])
            return
        if kind not in ("sale", "return"):
            raise ValueError(f"not a POS event type: {kind!r}")
        sign = -1 if kind == "sale" else 1
        ts = parse_ts(event["ts"])
        changes = self._txn_changes[event["txn_id"]]
        for item in event["items"]:
            changes.append(_Change((item["sku"], event["store_id"]), ts, sign * item["qty"]))
            self._saw(item["sku"], ts.timestamp())

    def changes(self) -> list[_Change]:
        """Every on-hand change that stands: voided transactions removed."""
        standing = list(self._changes)
        for txn_id, changes in self._txn_changes.items():
            if txn_id not in self._voided:
                standing.extend(changes)
        return standing

    def levels(self) -> dict[Pair, Level]:
        """Expected stock of every (sku, location_id) a standing event names."""
        by_pair: dict[Pair, list[_Change]] = defaultdict(list)
        for change in self.changes():
            by_pair[change.pair].append(change)
        reserved: dict[Pair, int] = defaultdict(int)
        for (order_id, sku, location_id), units in self._orders.reserved_by_line().items():
            if order_id not in self._holds:
                reserved[sku, location_id] += units
        sku_time = self._sku_times()
        for reservation_id in self._held & self._holds.keys():
            pair, qty, until = self._holds[reservation_id]
            if sku_time.get(pair[0], float("-inf")) >= until:
                continue  # lapsed
            reserved[pair] += self._hold_reserved(reservation_id, pair, qty)
        levels = {}
        for pair in self._touched | by_pair.keys():
            changes = by_pair.get(pair, [])
            count = self._counts.get(pair)
            if count is None:
                on_hand = sum(c.delta for c in changes)
            else:
                count_ts, _, counted = count
                on_hand = counted + sum(c.delta for c in changes if c.ts > count_ts)
            levels[pair] = Level(on_hand, reserved.get(pair, 0))
        return levels

    def _sku_times(self) -> dict[str, float]:
        """The SKUs' event time, with the cancels that reach one of their lines."""
        times = dict(self._sku_time)
        for ts, cancel in self._cancels:
            purchases = self._purchases.get(cancel["order_id"], [])
            if cancel.get("sku") is None:
                skus = [sku for _, _, order_skus in purchases for sku in order_skus]
            elif cancel.get("location_id") is not None or purchases:
                skus = [cancel["sku"]]
            else:
                skus = []  # waits for a purchase that never came
            for sku in skus:
                if ts > times.get(sku, float("-inf")):
                    times[sku] = ts
        return times

    def _hold_reserved(self, reservation_id: str, pair: Pair, qty: int) -> int:
        """Units a held reservation still holds, by the order-line rules (its id as order id, its qty as purchased)."""
        fulfilled = partial = 0
        for _, cancel in self._cancels:
            if cancel["order_id"] != reservation_id or (cancel.get("sku"), cancel.get("location_id")) != pair:
                continue
            if cancel.get("qty") is None:
                return 0
            partial += cancel["qty"]
        fulfilled = self._orders.fulfilled_units(reservation_id, pair)
        remaining = max(0, qty - fulfilled)
        return remaining - min(partial, remaining)

    def count_at(self, pair: Pair) -> tuple[datetime, str, int] | None:
        """The count that sets on-hand at `pair` (`ts`, `event_id`, `on_hand`), if any."""
        return self._counts.get(pair)

    def skus(self) -> set[str]:
        """Every SKU with at least one location record."""
        return {sku for sku, _ in self.levels()}


def expected_levels(events: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[Pair, Level]:
    """Levels of `(topic, event)` pairs, for one-off use."""
    stock = ExpectedStock()
    for topic, event in events:
        stock.add(topic, event)
    return stock.levels()
