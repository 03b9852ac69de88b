"""One SKU's merchandising state, and the shard of them a keyed step of the flow holds.

A `SkuMerch` keeps what the suggestions need of one SKU: its stock per location
(a `StockLedger`, the inventory flow's own logic fed the same movements, so
both agree on `available`), its demand velocity per location, the transfers on
their way, its list and selling price, and the average age of its stock. On
`review` it plans transfers and a markdown for event time `now` and compares
them with what it published last: a new or materially changed suggestion (other
quantity, other price) is published `open`, one that no longer holds
`withdrawn`, and each kind's open set is written as one fenced document.

A `MerchShard` holds the SKUs of one shard. It reviews the SKUs that changed at
each `review_step_s` step of event time, and every SKU of the shard at each
`review_interval_s`, never at batch ends, and its clock waits for input still
unread (`Hold`, `Release`): a slow seller that nothing happens to still gets its markdown
as the season end nears, and a hot one is never judged before its sales are in.
A suggestion is re-published only when it changes materially (a transfer by a
lot and by a quarter of its quantity, a markdown to another price), so planners
are not asked to re-plan for every sale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import msgspec

from events.models import PriceChange, ProductUpsert
from events.suggestions import MarkdownSuggestion, Suggestion, TransferSuggestion
from events.timestamps import rfc3339_ms
from operators.merch.markdown import Markdown, MarkdownPolicy, suggest_markdown
from operators.merch.transfers import Position, TransferPolicy, plan_transfers
from operators.merch.velocity import DAY_S, DemandRate
from operators.movements import StockMovement
from operators.stock_ledger import StockLedger


class Role(IntEnum):
    """What a stock movement means to merchandising besides its effect on stock."""

    STOCK = 0  # only its effect on stock (counts, adjustments, fulfilments, returns)
    DEMAND = 1  # units demanded: a till sale, an online order at its fulfilment location
    RECEIPT = 2  # goods received from a supplier: fresh stock (ages the SKU's stock anew)
    SENT = 3  # a transfer left `location_id` for `peer`
    ARRIVED = 4  # a transfer arrived at `location_id` from `peer`


class MerchMove(NamedTuple):
    """A stock movement with its merchandising role; transfers carry their id and the other location."""

    move: StockMovement
    role: Role
    transfer_id: str = ""
    peer: str = ""


class Tick(NamedTuple):
    """An event time the input reached, sent to every shard so that quiet shards review on time too."""

    ts: float


class Hold(NamedTuple):
    """What batch `seq` of decoder `origin` says about input the shards have not seen yet.

    The decoder sends it first in each batch (`flows.merchandising_stages`). `unread`: the
    oldest newest event time among its Kafka partitions that still have messages to read
    (+inf when none has, or without Kafka). `till`: the oldest of the batch's till events,
    which reach the shards later, through the store journal; `stores` of them follow, one
    `Release` per store after that store's till events. A shard's clock never passes the
    lowest `unread` of any decoder nor the `till` of a batch whose releases have not all
    come: so a topic read ahead of another (a replay finds the clickstream at day 16 while
    the till sales are still at day 1) cannot get a SKU judged before its demand is in.
    """

    origin: str
    seq: int
    unread: float
    till: float = math.inf
    stores: int = 0


class Release(NamedTuple):
    """Store `store_id`'s till events of batch `seq` of decoder `origin` have passed the journal (see `Hold`)."""

    store_id: str
    origin: str
    seq: int


CatalogEvent = ProductUpsert | PriceChange
MerchInput = MerchMove | ProductUpsert | PriceChange | Tick | Hold | Release


@dataclass(frozen=True, slots=True)
class MerchConfig:
    """Everything the merchandising state is tuned by (built from `settings.merch` by the flow)."""

    transfer: TransferPolicy
    markdown: MarkdownPolicy | None  # None: no season end configured, no markdowns
    half_life_s: float = 7 * DAY_S
    basket_cap: float = 3.0
    min_cap: float = 3.0
    review_interval_s: float = 3_600.0
    review_step_s: float = 60.0
    held: bool = False
    """True when the input sends `Hold`s (the Kafka source): until one arrives, the clock waits."""
    transit_timeout_s: float = 14 * DAY_S
    dedup_window_s: float = 3_600.0
    count_window_s: float = 6 * 3_600.0
    order_retention_s: float = 7 * DAY_S


@dataclass(frozen=True, slots=True)
class SuggestionDoc:
    """The open suggestions of one kind for one SKU, as the API serves them (a fenced document)."""

    kind: str
    sku: str
    version: int
    doc: bytes
    as_of: float
    open: bool


class SkuMerch:
    """Stock, demand, transfers in flight, price and published suggestions of one SKU.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from operators.movements import Move
    >>> config = MerchConfig(TransferPolicy(), None)
    >>> sku = SkuMerch("SKU-1", config)
    >>> def move(loc, qty, day, role, event_id):
    ...     return MerchMove(StockMovement("SKU-1", loc, Move.ON_HAND, qty, day * DAY_S, event_id), role)
    >>> sku.apply(move("S1", 10, 0, Role.RECEIPT, "r1")); sku.apply(move("S2", 200, 0, Role.RECEIPT, "r2"))
    >>> for day in range(1, 5):  # S1 sells 2 a day, S2 1 a day
    ...     sku.apply(move("S1", -2, day, Role.DEMAND, f"a{day}"))
    ...     sku.apply(move("S2", -1, day, Role.DEMAND, f"b{day}"))
    >>> sku.review(4 * DAY_S)  # no catalog price yet: a transfer's value is unknown
    ([], [])
    >>> sku.apply(PriceChange(event_id="p1", ts=datetime(1970, 1, 5, tzinfo=UTC), schema_version=1, sku="SKU-1",
    ...                       price=30.0, currency="EUR"))
    >>> records, docs = sku.review(4 * DAY_S)
    >>> [(r.kind, r.status, r.from_location, r.to_location, r.qty) for r in records]
    [('transfer', 'open', 'S2', 'S1', 25)]
    >>> sku.apply(MerchMove(StockMovement("SKU-1", "S2", Move.ON_HAND, -25, 4.5 * DAY_S, "t1"), Role.SENT, "T1", "S1"))
    >>> records, docs = sku.review(4.5 * DAY_S)  # in flight: the suggestion is carried out, so withdrawn
    >>> [(r.status, r.suggestion_id) for r in records], [(d.kind, d.open) for d in docs]
    ([('withdrawn', 'transfer:SKU-1:S2:S1')], [('transfer', False)])
    """

    def __init__(self, sku: str, config: MerchConfig) -> None:
        self.sku = sku
        self.config = config
        self.ledger = StockLedger(sku, config.dedup_window_s, config.count_window_s, config.order_retention_s, 0)
        self.rates: dict[str, DemandRate] = {}
        self.transit: dict[str, tuple[str, int, float]] = {}  # transfer_id -> (to location, qty, sent at)
        self.arrived: dict[str, float] = {}  # transfer ids that arrived before their departure was seen
        self.list_price: float | None = None
        self.price: float | None = None
        self.price_ts = -math.inf
        self.currency: str | None = None
        self.stock_since = math.inf  # average receipt time of the stock on hand (event time)
        self.clock = -math.inf  # newest event time seen
        self.reviewed_at = -math.inf
        self.open_transfers: dict[str, TransferSuggestion] = {}
        self.open_markdown: MarkdownSuggestion | None = None
        self.version = 0  # of the suggestion records; grows with every record (`_bump`)
        self.doc_versions = {"transfer": 0, "markdown": 0}

    def apply(self, item: MerchInput) -> None:
        """Take one movement or catalog event (a redelivered movement changes nothing)."""
        if type(item) is not MerchMove:
            self._catalog(item)  # type: ignore[arg-type]
            return
        merch: MerchMove = item
        move = merch.move
        ledger = self.ledger
        before = ledger.version
        role = merch.role
        watched = role is Role.DEMAND or role is Role.RECEIPT or move.location_id in self.rates
        available_before, on_hand_before = self._levels(move.location_id) if watched else (0, 0)
        ledger.apply(move)  # its alerts and stale-count dead letters are the inventory flow's to report
        if ledger.version == before:
            return  # a redelivery
        ts = move.ts
        if ts > self.clock:
            self.clock = ts
        if self.stock_since == math.inf:
            self.stock_since = ts
        if role is Role.DEMAND:
            rate = self.rates.get(move.location_id)
            if rate is None:
                c = self.config
                rate = self.rates[move.location_id] = DemandRate(c.half_life_s, c.basket_cap, c.min_cap)
            rate.add(-move.qty if move.qty < 0 else move.qty, ts)  # a sale lowers on-hand, an order reserves
        elif role is Role.RECEIPT:
            held = max(0, on_hand_before)
            self.stock_since = ts if held == 0 else (self.stock_since * held + ts * move.qty) / (held + move.qty)
        elif role is Role.SENT:  # an arrival seen first ends the transfer; else it is in flight until it arrives
            if self.arrived.pop(merch.transfer_id, None) is None:
                self.transit[merch.transfer_id] = (merch.peer, -move.qty if move.qty < 0 else move.qty, ts)
        elif role is Role.ARRIVED and self.transit.pop(merch.transfer_id, None) is None:
            self.arrived[merch.transfer_id] = ts
        rate = self.rates.get(move.location_id)
        if rate is not None:  # the shelf emptying stops the velocity's clock (censored demand), stock restarts it
            after = self._levels(move.location_id)[0]
            if after > 0:
                rate.restock(ts)
            elif available_before > 0:
                rate.stock_out(ts)  # (demand on an empty shelf, an oversell, restarts it: `DemandRate.add`)
        self._expire_transit()

    def _catalog(self, event: CatalogEvent) -> None:
        ts = event.ts.timestamp()
        if ts > self.clock:
            self.clock = ts
        if type(event) is ProductUpsert:
            self.list_price = event.price
            if self.price is None or ts >= self.price_ts:
                self.price, self.price_ts = event.price, ts
        elif ts >= self.price_ts:
            change: PriceChange = event  # type: ignore[assignment]
            self.price, self.price_ts, self.currency = change.price, ts, change.currency

    def _levels(self, location_id: str) -> tuple[int, int]:
        """Available at `location_id` and the SKU's on-hand over all locations (what is on a shelf, oversells aside)."""
        available = on_hand = 0
        for loc in self.ledger.stock().locations:
            if loc.on_hand > 0:
                on_hand += loc.on_hand
            if loc.location_id == location_id:
                available = loc.available
        return available, on_hand

    def _expire_transit(self) -> None:
        horizon = self.clock - self.config.transit_timeout_s
        for table in (self.transit, self.arrived):
            if table:
                for transfer_id in [t for t, v in table.items() if (v[2] if isinstance(v, tuple) else v) < horizon]:
                    del table[transfer_id]

    def positions(self, now: float) -> list[Position]:
        """Every location's sellable units, units on their way in and demand per day at `now`."""
        inbound: dict[str, int] = {}
        for to, qty, _ in self.transit.values():
            inbound[to] = inbound.get(to, 0) + qty
        available = {loc.location_id: loc.available for loc in self.ledger.stock().locations}
        ids = sorted(set(available) | set(inbound) | set(self.rates))
        rates = self.rates
        return [Position(i, available.get(i, 0), inbound.get(i, 0), rates[i].per_day(now) if i in rates else 0.0)
                for i in ids]  # fmt: skip

    def review(self, now: float) -> tuple[list[Suggestion], list[SuggestionDoc]]:
        """Plan at event time `now`; the suggestion records that changed and the documents to rewrite."""
        self.reviewed_at = max(self.reviewed_at, now)
        ts = rfc3339_ms(now)
        positions = self.positions(now)
        transfers = []
        if self.price is not None and self.price > 0.0:
            transfers = plan_transfers(self.sku, positions, self.config.transfer, self.price)
        records: list[Suggestion] = []
        fresh: dict[str, TransferSuggestion] = {}
        for t in transfers:
            sid = f"transfer:{self.sku}:{t.from_location}:{t.to_location}"
            old = self.open_transfers.get(sid)
            if old is not None and abs(old.qty - t.qty) < max(self.config.transfer.min_lot, 0.25 * old.qty):
                fresh[sid] = old  # not a material change: planners are not asked to re-plan for a unit or two
                continue
            self._bump(now)
            fresh[sid] = TransferSuggestion(
                suggestion_id=sid, status="open", version=self.version, sku=self.sku, ts=ts,
                from_location=t.from_location, to_location=t.to_location, qty=t.qty,
                expected_stockout_avoided=t.expected_stockout_avoided, value=t.value, cost=t.cost,
                from_cover_days=t.from_cover_days, to_cover_days=t.to_cover_days, reason=t.reason,
            )  # fmt: skip
            records.append(fresh[sid])
        for sid, old in self.open_transfers.items():
            if sid not in fresh:
                self._bump(now)
                records.append(_withdrawn(old, self.version, ts))
        transfers_changed = bool(records)
        self.open_transfers = fresh

        markdown = self._markdown(now, positions)
        old_md = self.open_markdown
        md_record: MarkdownSuggestion | None = None
        if markdown is not None and (old_md is None or old_md.suggested_price != markdown.suggested_price):
            self._bump(now)
            md_record = self.open_markdown = _markdown_record(markdown, self, self.version, ts)
        elif markdown is None and old_md is not None:
            self._bump(now)
            md_record = _withdrawn(old_md, self.version, ts)  # type: ignore[assignment]
            self.open_markdown = None
        if md_record is not None:
            records.append(md_record)

        docs = []
        if transfers_changed:
            open_list = sorted(self.open_transfers.values(), key=lambda s: -s.expected_stockout_avoided)
            docs.append(self._doc("transfer", msgspec.json.encode(open_list), now, bool(open_list)))
        if md_record is not None:
            is_open = self.open_markdown is not None
            docs.append(self._doc("markdown", msgspec.json.encode(self.open_markdown), now, is_open))
        return records, docs

    def _markdown(self, now: float, positions: list[Position]) -> Markdown | None:
        policy = self.config.markdown
        if policy is None or self.list_price is None or self.price is None:
            return None
        on_hand = sum(max(0, p.available) + p.inbound for p in positions)
        per_day = sum(p.per_day for p in positions)
        age_days = (now - self.stock_since) / DAY_S if self.stock_since != math.inf else 0.0
        price_age_days = (now - self.price_ts) / DAY_S if self.price_ts != -math.inf else math.inf
        return suggest_markdown(self.sku, on_hand, per_day, age_days, self.list_price, self.price, now, policy,
                                price_age_days)  # fmt: skip

    def _bump(self, now: float) -> None:
        """The next record version: above the last, and at least `now` in milliseconds.

        The floor keeps versions growing across a loss of flow state (a new lineage
        starts its counters again), so consumers keeping the newest version per id
        are not stuck on the old lineage's; a replay of the same input gives the same versions.
        """
        self.version = max(self.version + 1, int(now * 1000) if now > 0 else 0)

    def _doc(self, kind: str, doc: bytes, now: float, is_open: bool) -> SuggestionDoc:
        floor = int(now * 1000) if now > 0 else 0
        version = self.doc_versions[kind] = max(self.doc_versions[kind] + 1, floor)
        return SuggestionDoc(kind, self.sku, version, doc, now, is_open)


def _ts(item: MerchInput) -> float:
    """Event time of a movement, catalog event or tick."""
    kind = type(item)
    if kind is MerchMove:
        return item.move.ts  # type: ignore[union-attr]
    if kind is Tick:
        return item.ts  # type: ignore[union-attr,return-value]
    event: CatalogEvent = item  # type: ignore[assignment]
    return event.ts.timestamp()


def _withdrawn(old: Suggestion, version: int, ts: str) -> Suggestion:
    return msgspec.structs.replace(old, status="withdrawn", version=version, ts=ts,
                                   reason=f"no longer holds as of {ts}; was: {old.reason}")  # fmt: skip


def _markdown_record(md: Markdown, sku: SkuMerch, version: int, ts: str) -> MarkdownSuggestion:
    return MarkdownSuggestion(
        suggestion_id=f"markdown:{md.sku}", status="open", version=version, sku=md.sku, ts=ts,
        current_price=md.current_price, suggested_price=md.suggested_price, list_price=md.list_price,
        discount=md.discount, currency=sku.currency, on_hand=md.on_hand, velocity_per_day=md.per_day,
        cover_days=md.cover_days, days_left=md.days_left, projected_leftover=md.projected_leftover, reason=md.reason,
    )  # fmt: skip


class MerchShard:
    """The `SkuMerch` of every SKU of one shard, reviewed at boundaries of event time, never at batch ends.

    Event time is cut into steps of `review_step_s`. When the shard's clock enters a new step,
    the SKUs that changed since the last review are reviewed at the step's start, with what
    arrived before the clock got there; every `review_interval_s` every SKU is (a slow seller
    nothing happens to). An item from beyond the clock's step waits until the clock reaches it.
    The clock is the newest event time of the input (items and `Tick`s, which carry other
    shards' time), but never past a `Hold`: so the same events in the same order give the same
    suggestions however Bytewax cuts them into batches, and a topic read ahead of another
    does not get a SKU judged before its demand is in. At the end of the input (`finish`) the
    changed SKUs are reviewed at the newest event time.

    Examples
    --------
    >>> from operators.movements import Move
    >>> shard = MerchShard(MerchConfig(TransferPolicy(), None, review_interval_s=3600.0, review_step_s=60.0))
    >>> receipt = MerchMove(StockMovement("SKU-1", "S1", Move.ON_HAND, 5, 10.0, "r1"), Role.RECEIPT)
    >>> shard.apply([receipt, receipt])  # nothing to suggest without demand; the redelivery changes nothing
    ([], [])
    >>> shard.skus["SKU-1"].ledger.stock().locations[0].on_hand, shard.next_sweep
    (5, 3600.0)
    """

    def __init__(self, config: MerchConfig) -> None:
        self.config = config
        self.skus: dict[str, SkuMerch] = {}
        self.seen = -math.inf  # newest event time of the input
        self.clock = -math.inf  # how far reviews may go: `seen`, held back by the lowest `Hold`
        self.step = -math.inf  # start of the review step the clock is in
        self.next_sweep = -math.inf
        self.touched: dict[str, SkuMerch] = {}  # changed since the last review
        self.ahead: list[MerchInput] = []  # items beyond the clock's step, applied when it gets there
        self.holds: dict[str, float] = {}  # unread input per decoder; not kept across restarts (`reset_holds`)
        self.till_holds: dict[tuple[str, int], list[float]] = {}  # (origin, seq) -> [oldest till ts, releases due]
        self.finished = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A snapshot from before reviews followed event-time steps (same recovery layout): the new parts start empty.
        self.__dict__.update(state)
        for name, default in (("seen", state.get("clock", -math.inf)), ("step", -math.inf), ("touched", {}),
                              ("ahead", []), ("holds", {}), ("till_holds", {}), ("finished", False)):  # fmt: skip
            self.__dict__.setdefault(name, default)

    def apply(self, items: list[MerchInput]) -> tuple[list[Suggestion], list[SuggestionDoc]]:
        """Take one batch's items in order; the suggestions and documents of the reviews they bring about."""
        out: tuple[list[Suggestion], list[SuggestionDoc]] = ([], [])
        for item in items:
            kind = type(item)
            if kind is Hold:
                self._hold(item)  # type: ignore[arg-type]
                self._advance(out)
                continue
            if kind is Release:
                self._release(item)  # type: ignore[arg-type]
                self._advance(out)
                continue
            ts = _ts(item)
            if ts > self.clock:
                self.ahead.append(item)  # after the reviews of the steps before it
            elif kind is not Tick:
                self._apply_one(item)  # late: the clock has passed it already
            if ts > self.seen:
                self.seen = ts
                self._advance(out)
        return out

    def _hold(self, hold: Hold) -> None:
        self.holds[hold.origin] = hold.unread
        if hold.stores:
            self._count(hold.origin, hold.seq, hold.stores, hold.till)

    def _release(self, release: Release) -> None:
        self._count(release.origin, release.seq, -1, math.inf)

    def _count(self, origin: str, seq: int, n: int, till: float) -> None:
        # A release may overtake its hold (they travel different paths): counts meet at zero either way.
        entry = self.till_holds.setdefault((origin, seq), [math.inf, 0])
        entry[0] = min(entry[0], till)
        entry[1] += n
        if entry[1] == 0:
            del self.till_holds[origin, seq]

    def finish(self) -> tuple[list[Suggestion], list[SuggestionDoc]]:
        """The input ended: apply what waits, and review what changed at the newest event time."""
        out: tuple[list[Suggestion], list[SuggestionDoc]] = ([], [])
        self.finished = True
        self._advance(out)
        if self.clock > -math.inf:
            self._review(self.touched.values(), self.clock, out)
            self.touched = {}
        return out

    def reset_holds(self) -> None:
        """Forget the decoders' holds (a restarted flow's decoders are new ones) and any end of input."""
        self.holds = {}
        self.till_holds = {}
        self.finished = False

    def _limit(self) -> float:
        if self.finished:
            return math.inf
        if not self.holds:
            return -math.inf if self.config.held else math.inf
        limit = min(self.holds.values())
        for till, due in self.till_holds.values():
            if due > 0 and till < limit:
                limit = till
        return limit

    def _advance(self, out: tuple[list[Suggestion], list[SuggestionDoc]]) -> None:
        """Move the clock as far as the input and the holds allow; apply, in event-time order, what it passes."""
        clock = min(self.seen, self._limit())
        if clock <= self.clock:
            return  # everything waiting is beyond the clock, which has not moved
        self.clock = clock
        ahead = self.ahead
        if not ahead:
            return
        step_s = self.config.review_step_s
        ready = sorted((i for i in ahead if _ts(i) <= clock), key=_ts)  # stable: arrival order on ties
        self.ahead = [i for i in ahead if _ts(i) > clock]
        for item in ready:
            self._enter(_ts(item) // step_s * step_s, out)  # each step the input opened, as it opened them
            if type(item) is not Tick:
                self._apply_one(item)

    def _enter(self, step: float, out: tuple[list[Suggestion], list[SuggestionDoc]]) -> None:
        """The clock enters the step starting at `step`: the sweep if one is due, then the changed SKUs."""
        if step <= self.step:
            return
        self.step = step
        interval = self.config.review_interval_s
        if self.next_sweep == -math.inf:
            self.next_sweep = (step // interval + 1) * interval
        elif step >= self.next_sweep:
            sweep = step // interval * interval
            self._review([sku for sku in self.skus.values() if sku.reviewed_at < sweep], sweep, out)
            self.touched = {k: v for k, v in self.touched.items() if v.reviewed_at < sweep}
            self.next_sweep = sweep + interval
        self._review(self.touched.values(), step, out)
        self.touched = {}

    def _review(self, skus: Iterable[SkuMerch], now: float, out: tuple[list[Suggestion], list[SuggestionDoc]]) -> None:
        records, docs = out
        for sku in skus:
            r, d = sku.review(max(now, sku.reviewed_at))  # a review's time never goes back
            records += r
            docs += d

    def _apply_one(self, item: MerchInput) -> None:
        sku_id = item.move.sku if type(item) is MerchMove else item.sku  # type: ignore[union-attr]
        sku = self.skus.get(sku_id)
        if sku is None:
            sku = self.skus[sku_id] = SkuMerch(sku_id, self.config)
        sku.apply(item)
        self.touched[sku_id] = sku

    def __len__(self) -> int:
        return len(self.skus)
