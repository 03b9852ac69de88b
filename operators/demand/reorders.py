"""Reorder suggestions: when a SKU's available stock at a location will not last its supplier lead time.

The demand flow's third keyed step. Each shard holds, for its (location, SKU) pairs, live stock (the
inventory flow's own ledger logic fed the same movements, as the merchandising flow does, so both agree
on `available` without reading each other's state) and the latest forecast from the models step of the
same index. After every batch it re-plans the pairs the batch touched, with the location's configured
lead time and service level (`operators.demand.locations.LocationPlan`):

- **Lead-time demand**: the sum of the daily point forecasts over the lead time; its spread from the
  80% intervals (each day's band read as a normal's, floored at Poisson's variance, the mean, so an
  intermittent SKU whose band is [0, 0] still carries its own risk), days taken as independent.
- **Reorder point** s = lead-time demand + z(service level) × its standard deviation (the safety stock);
  **order-up-to** S likewise over the lead time plus the review period (`review_days`). When available
  is at or below s, the suggestion is to order S − available (an (s, S) policy, reviewed continuously).
- **Days of cover**: how long the available units last at the forecast demand, day by day (weekdays
  and holidays included), beyond the forecast horizon at its mean rate.

A pair's forecast is kept only once its stock is known, so a pair first stocked after a day close is
planned from the next close on (and a chain's unstocked series cost this step nothing).

Only pairs whose stock is known are planned: a receipt, count, transfer or adjustment must have been
seen there (demand alone says stock went down from an unknown level). Like the merchandising
suggestions, a record goes to `omni.suggestions` when a reorder is new or its quantity changed
materially (`change_share`), and a `withdrawn` one when it no longer holds (the goods arrived, the
demand fell); the open one is kept as a fenced document per pair, rewritten at every review that
changes a figure (so the API shows the live available units and days of cover).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, NamedTuple

import msgspec

from events.models import OrderCancel, Purchase, Return, Sale, Void
from events.suggestions import ReorderSuggestion
from events.timestamps import rfc3339_ms
from operators.demand.locations import LocationBook, LocationPlan, day_of
from operators.movements import Move, StockMovement
from operators.order_book import OrderBook
from operators.stock_ledger import StockLedger
from operators.txn_journal import TxnJournal

_KNOWN = (Move.ON_HAND, Move.COUNT)
"""Movements that tell where stock stands (receipts, transfers, adjustments, counts), not only that it moved."""


@dataclass(frozen=True, slots=True)
class ReorderPolicy:
    """How reorders are planned (settings `OMNISTREAM_DEMAND_REORDER_*`)."""

    review_days: int = 7
    """The review period: an order covers the lead time plus this many days."""
    interval: float = 0.8
    """The forecasts' interval level, to read each day's spread from its band."""
    change_share: float = 0.25
    """A reorder is re-published when its quantity moves by more than this share (and a unit)."""
    min_qty: int = 1


class Outlook(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """A SKU's forecast at a location as the reorder step needs it: daily points and bands from `as_of` + 1."""

    location_id: str
    sku: str
    as_of: int
    points: list[float]
    lower: list[float]
    upper: list[float]


class Plan(NamedTuple):
    """What the (s, S) policy makes of one pair now; `qty` 0 means no reorder."""

    qty: int
    lead_time_demand: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    cover_days: float | None


def _over(values: list[float], days: int) -> float:
    """The sum of `values` over the first `days` days; past their end, at the mean of their last week."""
    if days <= len(values):
        return sum(values[:days])
    tail = values[-7:] if values else [0.0]
    return sum(values) + (days - len(values)) * sum(tail) / len(tail)


def cover_days(available: int, points: list[float]) -> float | None:
    """Days `available` units last at the daily forecasts `points` (linear within a day); None: no demand.

    >>> cover_days(5, [2.0, 2.0, 2.0])
    2.5
    >>> cover_days(0, [2.0]), cover_days(9, [0.0, 0.0])
    (0.0, None)
    >>> cover_days(10, [1.0, 1.0])  # past the horizon at its mean rate
    10.0
    """
    if available <= 0:
        return 0.0
    used = 0.0
    for day, point in enumerate(points):
        if used + point >= available:
            return round(day + (available - used) / point, 2)
        used += point
    tail = points[-7:]
    rate = sum(tail) / len(tail) if tail else 0.0
    if rate <= 1e-9:
        return None
    return round(len(points) + (available - used) / rate, 2)


class Levels(NamedTuple):
    """What the (s, S) policy makes of one forecast at one location, whatever the stock: s, S and their parts."""

    lead_time_demand: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    demand: bool
    """Any demand forecast over the lead time plus the review period (none: never a reorder)."""


def reorder_levels(outlook: Outlook, plan: LocationPlan, policy: ReorderPolicy) -> Levels:
    """The reorder point s and order-up-to level S of a forecast: a function of the forecast alone.

    The reorders step keeps them per pair until the next forecast, so a stock movement costs one comparison.
    """
    z_band = NormalDist().inv_cdf(0.5 + policy.interval / 2.0)
    variances = [
        max(((hi - lo) / (2.0 * z_band)) ** 2, max(p, 0.0))
        for p, lo, hi in zip(outlook.points, outlook.lower, outlook.upper, strict=True)
    ]
    lead, covered = plan.lead_time_days, plan.lead_time_days + policy.review_days
    z = NormalDist().inv_cdf(plan.service_level)
    mu_lead = _over(outlook.points, lead)
    safety = z * math.sqrt(_over(variances, lead))
    mu_covered = _over(outlook.points, covered)
    order_up_to = mu_covered + z * math.sqrt(_over(variances, covered))
    return Levels(mu_lead, safety, mu_lead + safety, order_up_to, mu_covered > 1e-6)


def plan_at(available: int, levels: Levels, points: list[float], policy: ReorderPolicy) -> Plan:
    """The reorder of one pair at `available` units, from its forecast's `levels` and daily `points`."""
    qty = 0
    if levels.demand and available <= levels.reorder_point:
        qty = max(policy.min_qty, math.ceil(levels.order_up_to - available - 1e-9))
    return Plan(qty, levels.lead_time_demand, levels.safety_stock, levels.reorder_point, levels.order_up_to,
                cover_days(available, points))  # fmt: skip


def plan_reorder(available: int, outlook: Outlook, plan: LocationPlan, policy: ReorderPolicy) -> Plan:
    """The (s, S) reorder of one pair: reorder when `available` <= s, up to S.

    >>> outlook = Outlook("S1", "A", 0, [4.0] * 28, [2.0] * 28, [6.0] * 28)
    >>> p = plan_reorder(10, outlook, LocationPlan("UTC", "GB", 3, 0.95), ReorderPolicy(review_days=7))
    >>> p.qty, round(p.lead_time_demand, 1), round(p.reorder_point, 1), round(p.order_up_to, 1), p.cover_days
    (41, 12.0, 17.7, 50.4, 2.5)
    >>> plan_reorder(40, outlook, LocationPlan("UTC", "GB", 3, 0.95), ReorderPolicy()).qty  # above s: none
    0
    """
    return plan_at(available, reorder_levels(outlook, plan, policy), outlook.points, policy)


StockFeed = Sale | Return | Void | Purchase | OrderCancel
"""Till and order events as the reorders step takes them: whole, or cut to the shard's lines (a sub-basket)."""


ReorderInput = StockMovement | StockFeed | Outlook


class ReorderDoc(NamedTuple):
    """A pair's open reorder (JSON object, or `null` when none) as the API serves it, fenced by `version`."""

    sku: str
    location_id: str
    version: int
    doc: bytes
    as_of: float
    open: bool


_ENCODER = msgspec.json.Encoder()
_FORMAT = 4
"""The layout of `ReorderShard.__getstate__`; 1 was the dataclass's own (its slots pickled as objects), 2 kept
`known` as a set of (location, SKU) pairs, 3 pickled the outlooks as objects at every snapshot."""
_OUTLOOKS = msgspec.msgpack.Encoder()
_OUTLOOKS_DECODER = msgspec.msgpack.Decoder(list[Outlook])


def _known_by_location(pairs: set[tuple[str, str]]) -> dict[str, set[str]]:
    """`ReorderShard.known` from the set of (location, SKU) pairs that snapshots before `_FORMAT` 3 held."""
    known: dict[str, set[str]] = {}
    for location_id, sku in pairs:
        known.setdefault(location_id, set()).add(sku)
    return known


@dataclass(slots=True)
class ReorderShard:
    """Stock, forecasts and open reorders of one shard's (location, SKU) pairs.

    Examples
    --------
    >>> book = LocationBook.parse("S1=UTC,GB,2,0.9")
    >>> shard = ReorderShard(ReorderPolicy(review_days=5))
    >>> day = 20_000 * 86_400.0
    >>> records, docs = shard.apply([StockMovement("A", "S1", Move.ON_HAND, 30, day, "r1"),
    ...                              Outlook("S1", "A", 20_000, [5.0] * 28, [3.0] * 28, [7.0] * 28)], book)
    >>> records  # 30 available: above the reorder point (10 over the lead time, plus safety stock)
    []
    >>> records, docs = shard.apply([StockMovement("A", "S1", Move.ON_HAND, -19, day + 60, "s1")], book)
    >>> [(r.status, r.qty, r.available, r.cover_days) for r in records], [d.open for d in docs]
    ([('open', 32, 11, 2.2)], [True])
    >>> records, docs = shard.apply([StockMovement("A", "S1", Move.ON_HAND, 40, day + 90, "r2")], book)
    >>> [(r.status, r.suggestion_id) for r in records], [d.open for d in docs]
    ([('withdrawn', 'reorder:A:S1')], [False])
    """

    policy: ReorderPolicy
    dedup_window_s: float = 3_600.0
    count_window_s: float = 6 * 3_600.0
    order_retention_s: float = 7 * 86_400.0
    ledgers: dict[str, StockLedger] = field(default_factory=dict)
    known: dict[str, set[str]] = field(default_factory=dict)
    """Per location, the SKUs whose stock level has been seen set there (not only moved by demand)."""
    outlooks: dict[tuple[str, str], Outlook] = field(default_factory=dict)
    open: dict[tuple[str, str], ReorderSuggestion] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    published: dict[tuple[str, str], int] = field(default_factory=dict)
    """The quantity of each open reorder as last published on the topic (the document may be newer)."""
    journal: TxnJournal | None = None
    book: OrderBook | None = None
    clock: float = -math.inf
    levels: dict[tuple[str, str], tuple[Outlook, LocationPlan, Levels]] = field(default_factory=dict)
    """Each planned pair's s and S, kept until its forecast changes (derived: not snapshotted)."""
    encoded: dict[str, bytes] = field(default_factory=dict)
    """Each ledger as of the last snapshot (`StockLedger.to_bytes`): a snapshot re-encodes only the `dirty` ones."""
    dirty: set[str] = field(default_factory=set)
    """SKUs whose ledger moved since the last snapshot."""
    outlooks_encoded: bytes | None = None
    """`outlooks` as of the last snapshot (MessagePack), None once a forecast arrived since: they change only
    when a day closes, so the epochs in between write the bytes they wrote before instead of re-encoding them."""

    def __getstate__(self) -> dict[str, Any]:
        """The shard for a snapshot, re-encoding only the ledgers moved since the last one.

        Bytewax snapshots the step at every epoch it was touched, and a stocked shop touches every
        shard in every epoch: pickling thousands of ledgers whole (Python objects) cost as much CPU as
        the step's work itself.
        """
        encoded, ledgers = self.encoded, self.ledgers
        for sku in self.dirty:
            ledger = ledgers.get(sku)
            if ledger is None:
                encoded.pop(sku, None)
            else:
                encoded[sku] = ledger.to_bytes()
        self.dirty.clear()
        if self.outlooks_encoded is None:
            self.outlooks_encoded = _OUTLOOKS.encode(list(self.outlooks.values()))
        return {
            "format": _FORMAT,
            "policy": self.policy,
            "windows": (self.dedup_window_s, self.count_window_s, self.order_retention_s),
            "ledgers": encoded,
            "known": self.known,
            "outlooks": self.outlooks_encoded,
            "open": self.open,
            "versions": self.versions,
            "published": self.published,
            "journal": None if self.journal is None else self.journal.to_bytes(),
            "book": None if self.book is None else self.book.to_bytes(),
            "clock": self.clock,
        }

    def __setstate__(self, state: Any) -> None:
        self.levels, self.dirty, self.outlooks_encoded = {}, set(), None
        if isinstance(state, tuple):  # a snapshot of the code before `_FORMAT`: the slots' values as they were
            for name, value in state[1].items():
                setattr(self, name, value)
            self.known = _known_by_location(self.known)  # type: ignore[arg-type]
            self.encoded = {sku: ledger.to_bytes() for sku, ledger in self.ledgers.items()}
            self.ledgers = {sku: StockLedger.from_bytes(data, line_updates=False) for sku, data in self.encoded.items()}
            return
        self.policy = state["policy"]
        self.dedup_window_s, self.count_window_s, self.order_retention_s = state["windows"]
        self.encoded = state["ledgers"]
        self.ledgers = {sku: StockLedger.from_bytes(data, line_updates=False) for sku, data in self.encoded.items()}
        self.known, self.open = state["known"], state["open"]
        if isinstance(self.known, set):  # `_FORMAT` 2: (location, SKU) pairs
            self.known = _known_by_location(self.known)
        outlooks = state["outlooks"]
        if isinstance(outlooks, bytes):
            self.outlooks = {(o.location_id, o.sku): o for o in _OUTLOOKS_DECODER.decode(outlooks)}
            self.outlooks_encoded = outlooks
        else:  # before `_FORMAT` 4: the objects, pickled
            self.outlooks = outlooks
        self.versions, self.published, self.clock = state["versions"], state["published"], state["clock"]
        self.journal = None if state["journal"] is None else TxnJournal.from_bytes(state["journal"])
        self.book = None if state["book"] is None else OrderBook.from_bytes(state["book"])

    def apply(
        self, items: list[ReorderInput], locations: LocationBook
    ) -> tuple[list[ReorderSuggestion], list[ReorderDoc]]:
        """Take a batch in order; re-plan every pair it touched. Returns the records and documents to write."""
        touched: dict[tuple[str, str], None] = {}
        for item in items:
            kind = type(item)
            if kind is Outlook:
                outlook: Outlook = item  # type: ignore[assignment]
                pair = (outlook.location_id, outlook.sku)
                if self._known(pair):  # kept only where stock is known: others are never planned
                    self.outlooks[pair] = outlook
                    self.outlooks_encoded = None
                    touched[pair] = None
            elif kind is StockMovement:
                move: StockMovement = item  # type: ignore[assignment]
                self._move(move, touched, sets_level=move.kind in _KNOWN)
            else:
                from_book = kind is Purchase or kind is OrderCancel  # the order book lets each event through once
                for fed in self._feed(item):  # type: ignore[arg-type]
                    self._move(fed, touched, sets_level=False, deduplicated=from_book)
        records: list[ReorderSuggestion] = []
        docs: list[ReorderDoc] = []
        for pair in touched:
            self._review(pair, locations, records, docs)
        return records, docs

    def _feed(self, event: Sale | Return | Void | Purchase | OrderCancel) -> list[StockMovement]:
        kind = type(event)
        if kind is Sale or kind is Return or kind is Purchase:
            # Lines of pairs whose stock is unknown are not tracked: their level is unknown until a receipt or
            # count, which starts the pair's ledger (as if from nothing before it). This keeps the step's work
            # and state to the stocked pairs.
            basket: Sale | Return | Purchase = event  # type: ignore[assignment]
            location_id = basket.fulfilment_location_id if kind is Purchase else basket.store_id  # type: ignore[union-attr]
            known = self.known.get(location_id)
            if known is None:
                return []
            lines = [line for line in basket.items if line.sku in known]
            if not lines:
                return []
            if len(lines) < len(basket.items):
                event = msgspec.structs.replace(basket, items=lines)
        if kind is Purchase or kind is OrderCancel:
            if self.book is None:
                self.book = OrderBook(self.order_retention_s)
            return self.book.apply(event)  # type: ignore[arg-type]
        if self.journal is None:
            self.journal = TxnJournal(self.dedup_window_s)
        return self.journal.apply(event)  # type: ignore[arg-type]

    def _move(
        self, move: StockMovement, touched: dict[tuple[str, str], None], *, sets_level: bool, deduplicated: bool = False
    ) -> None:
        ledger = self.ledgers.get(move.sku)
        if ledger is None:
            # The order lines' states are the inventory flow's to publish: this copy keeps stock only.
            ledger = self.ledgers[move.sku] = StockLedger(
                move.sku, self.dedup_window_s, self.count_window_s, self.order_retention_s, 0, line_updates=False
            )
        ledger.apply(move, deduplicated=deduplicated)  # alerts and stale counts are the inventory flow's to report
        self.dirty.add(move.sku)
        pair = (move.location_id, move.sku)
        if sets_level:
            known = self.known.get(move.location_id)
            if known is None:
                known = self.known[move.location_id] = set()
            known.add(move.sku)
        if move.ts > self.clock:
            self.clock = move.ts
        touched[pair] = None

    def _known(self, pair: tuple[str, str]) -> bool:
        """Whether the stock level of (location, SKU) `pair` has been seen set."""
        known = self.known.get(pair[0])
        return known is not None and pair[1] in known

    def available(self, location_id: str, sku: str) -> int | None:
        """Units available (on hand less reserved) of `sku` at `location_id`, None if never moved."""
        ledger = self.ledgers.get(sku)
        return None if ledger is None else ledger.available_at(location_id)  # not `stock()`: one location only

    def _review(
        self,
        pair: tuple[str, str],
        locations: LocationBook,
        records: list[ReorderSuggestion],
        docs: list[ReorderDoc],
    ) -> None:
        location_id, sku = pair
        held = self.open.get(pair)
        known = self._known(pair)
        if held is None and not known:
            return  # the common case where stock is unknown: nothing open, nothing to plan
        outlook = self.outlooks.get(pair)
        plan = locations.plan(location_id)
        available = self.available(location_id, sku)
        planned: Plan | None = None
        if outlook is not None and plan is not None and available is not None and known:
            levels = self._levels(pair, outlook, plan)
            if levels.demand and available <= levels.reorder_point:
                planned = plan_at(available, levels, outlook.points, self.policy)
        if planned is None and held is None:
            return  # above its reorder point with nothing open: the common case of a stocked pair
        fresh: ReorderSuggestion | None = None
        now = self.clock if self.clock > -math.inf else 0.0
        ts = rfc3339_ms(now)
        if planned is not None and outlook is not None and plan is not None and available is not None:
            fresh = ReorderSuggestion(
                suggestion_id=f"reorder:{sku}:{location_id}", status="open", version=self._version(pair, now),
                sku=sku, ts=ts, location_id=location_id, qty=planned.qty, available=available,
                cover_days=planned.cover_days, lead_time_days=plan.lead_time_days,
                service_level=plan.service_level, lead_time_demand=round(planned.lead_time_demand, 2),
                safety_stock=round(planned.safety_stock, 2), reorder_point=round(planned.reorder_point, 2),
                order_up_to=round(planned.order_up_to, 2), forecast_as_of=day_of(outlook.as_of).isoformat(),
                reason=_reason(available, planned, plan),
            )  # fmt: skip
        if fresh is not None:
            if held is not None and fresh == msgspec.structs.replace(held, version=fresh.version, ts=ts):
                self.versions[pair] = held.version  # nothing moved: nothing to write
                return
            self.open[pair] = fresh
            published = self.published.get(pair)
            if published is None or self._material(published, fresh.qty):
                self.published[pair] = fresh.qty
                records.append(fresh)
            # The document follows every review (live available and cover); the topic only material changes.
            docs.append(ReorderDoc(sku, location_id, fresh.version, _ENCODER.encode(fresh), now, True))
        elif held is not None:
            del self.open[pair]
            self.published.pop(pair, None)
            version = self._version(pair, now)
            gone = msgspec.structs.replace(held, status="withdrawn", version=version, ts=ts,
                                           reason=f"no longer holds as of {ts}; was: {held.reason}")  # fmt: skip
            records.append(gone)
            docs.append(ReorderDoc(sku, location_id, version, b"null", now, False))

    def _levels(self, pair: tuple[str, str], outlook: Outlook, plan: LocationPlan) -> Levels:
        cached = self.levels.get(pair)
        if cached is not None and cached[0] is outlook and cached[1] is plan:
            return cached[2]
        levels = reorder_levels(outlook, plan, self.policy)
        self.levels[pair] = (outlook, plan, levels)
        return levels

    def _material(self, published: int, planned: int) -> bool:
        change = abs(planned - published)
        return change >= 1 and change > self.policy.change_share * published

    def _version(self, pair: tuple[str, str], now: float) -> int:
        version = self.versions[pair] = max(self.versions.get(pair, 0) + 1, int(now * 1000))
        return version


def _reason(available: int, planned: Plan, plan: LocationPlan) -> str:
    cover = "no forecast demand" if planned.cover_days is None else f"{planned.cover_days:.1f} days of cover"
    return (
        f"{available} available ({cover}) against {planned.lead_time_demand:.1f} units forecast over the "
        f"{plan.lead_time_days}-day lead time plus {planned.safety_stock:.1f} safety stock at "
        f"{plan.service_level:.0%} service: order {planned.qty} to reach {planned.order_up_to:.1f}"
    )
