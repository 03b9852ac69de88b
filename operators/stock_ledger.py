"""Stock of one SKU at every location, exactly as CONTRACT.md "Stock semantics" defines it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from events.alerts import Alert, Entity, Severity
from events.dead_letter import DeadLetter
from events.orders import HoldStatus, OrderLineState, ReservationState
from events.stock import LocationStock, SkuStock
from events.timestamps import rfc3339_ms
from operators.movements import REJECTED_BEFORE, Move, StockMovement
from operators.seen_events import SeenEvents

# Stock levels, worst last; an alert is raised when a location enters a worse one.
OK, LOW, OUT, OVERSOLD = 0, 1, 2, 3
_ALERTS = {
    LOW: ("low_stock", Severity.WARNING),
    OUT: ("out_of_stock", Severity.ATTENTION),
    OVERSOLD: ("oversell", Severity.EMERGENCY),
}
_FIRST_SWEEP = 64
_ENCODER = msgspec.msgpack.Encoder()
# Enum attribute lookups cost ~0.5 us each on Python 3.11; the hot path compares plain names.
_ON_HAND, _COUNT, _RESERVE, _FULFIL, _CANCEL = Move.ON_HAND, Move.COUNT, Move.RESERVE, Move.FULFIL, Move.CANCEL
# What a line is: an order's (NOT_A_HOLD), or a checkout hold the flow held or rejected.
NOT_A_HOLD, HELD, REJECTED = 0, 1, 2
_NO_EXPIRY = float("inf")


class _OrderLine(msgspec.Struct, array_like=True, gc=False):
    """What one online order, or one checkout hold, does to one SKU at one location.

    Fields after `last_ts` were added with whole-order cancels and holds; their
    defaults let ledgers snapshotted before them decode as they were.
    """

    purchased: int = 0  # a hold's qty
    fulfilled: int = 0
    cancelled: bool = False  # a cancel without qty: all that remains is released
    last_ts: float = float("-inf")
    cancel_qty: int = 0  # units named by partial cancels
    events: int = 0  # accepted events of the line: its write fence (`version`)
    hold: int = NOT_A_HOLD
    hold_until: float = 0.0
    lapsed: bool = False  # a held line whose `hold_until` the SKU's event time has reached

    @property
    def reserved(self) -> int:
        # A pure function of what arrived, not of the order it arrived in:
        # fulfilment before purchase, or cancel before either, end the same.
        if self.cancelled or self.lapsed or self.hold == REJECTED:
            return 0
        return max(0, self.purchased - self.fulfilled - self.cancel_qty)

    @property
    def closed(self) -> bool:
        return self.purchased > 0 and (self.reserved == 0)

    @property
    def version(self) -> int:
        """Grows with each accepted event and once more when a hold lapses (`state.order_writer` fences on it).

        Equal versions mean the same events (and the same lapse), hence the same line, whatever order
        a replay applied them in: a per-SKU counter would not say that of one line.
        """
        return 2 * self.events + self.lapsed


class _Move(msgspec.Struct, array_like=True, gc=False):
    """An on-hand change kept for a late cycle count; encodes as `[ts, qty]`, as the tuple it replaced did.

    A Struct rather than a tuple: a new tuple is tracked by the cycle collector
    until the next young collection visits it, and these were a third of what
    those collections walked (pauses of 20-90 ms in a tailing flow).
    """

    ts: float
    qty: int


class _Location(msgspec.Struct, array_like=True, gc=False):
    """Stock of one SKU at one location, with what a late cycle count needs.

    A msgspec Struct: the flow snapshots every ledger it touched, and the
    encoder walks Structs in C (a tuple per location built in Python cost
    most of the snapshot pause). Neither it nor `_OrderLine` is tracked by
    the cycle collector (nothing here refers back to them): they are most of
    the objects a tailing flow keeps, and each one tracked made every young
    collection longer.
    """

    on_hand: int = 0
    reserved: int = 0
    count_ts: float = float("-inf")  # the newest cycle count applied, by event time
    count_id: str = ""
    moves: list[_Move] = msgspec.field(default_factory=list)  # on-hand changes dated after the count
    folded_until: float = float("-inf")  # changes older than this are only in `on_hand`
    orders: dict[str, _OrderLine] = msgspec.field(default_factory=dict)
    updated_at: float = float("-inf")
    level: int = OK
    sweep_moves_at: int = _FIRST_SWEEP
    sweep_orders_at: int = _FIRST_SWEEP
    next_lapse: float = _NO_EXPIRY  # the earliest `hold_until` of a held line here that has not lapsed


# sku, dedup_window_s, count_window_s, order_retention_s, low_stock_threshold, version, as_of, duplicates,
# the seen ids (`SeenEvents.to_state`), the locations.
_LedgerState = tuple[str, float, float, float, int, int, float, int, tuple[float, float, bytes, bytes],
                     dict[str, _Location]]  # fmt: skip
_DECODER = msgspec.msgpack.Decoder(_LedgerState)


class StockLedger:
    """On-hand, reserved and available stock of one SKU at every location.

    Applies `StockMovement`s in any arrival order and ends in the same state:
    - a cycle count sets on-hand as of its `ts`: movements dated at or before
      it are already in it, later ones apply on top, even when they arrived
      before the count; an older count than the one applied changes nothing;
    - each online order line keeps what was purchased, fulfilled and whether it
      was cancelled, so reserved = purchased - fulfilled (never below 0), or 0
      once cancelled, whichever of the three came first;
    - a repeated `event_id` within `dedup_window_s` changes nothing.

    To apply a late count exactly, on-hand changes are kept per location until
    a newer count covers them; those older than `count_window_s` (event time,
    behind the newest movement of the SKU) are folded into on-hand. A count
    dated before the folded horizon can no longer be applied exactly and is
    returned as a `DeadLetter`: it is reported, never silently approximated.

    Each accepted (non-duplicate) movement bumps `version`, the fence of the Redis writer.
    Entering low stock (available at or below `low_stock_threshold`), out of
    stock (0) or oversell (below 0) at a location returns an `Alert`.

    Parameters
    ----------
    sku
        The SKU this ledger keeps.
    dedup_window_s
        Event-time seconds a seen `event_id` is remembered.
    count_window_s
        Event-time seconds on-hand changes are kept for late cycle counts.
    order_retention_s
        Event-time seconds a closed order line is remembered after its last event.
    low_stock_threshold
        Available at or below this, above 0, is low stock.

    Examples
    --------
    >>> from operators.movements import Move, StockMovement as M
    >>> ledger = StockLedger("SKU-1", low_stock_threshold=1)
    >>> ledger.apply(M("SKU-1", "S1", Move.ON_HAND, 10, 100.0, "receipt-1"))
    >>> ledger.apply(M("SKU-1", "S1", Move.ON_HAND, -3, 300.0, "sale-1"))
    >>> ledger.apply(M("SKU-1", "S1", Move.COUNT, 8, 200.0, "count-1"))  # late: the sale is on top
    >>> ledger.apply(M("SKU-1", "S1", Move.FULFIL, 1, 400.0, "ship-1", "order-1"))  # before its purchase
    >>> ledger.apply(M("SKU-1", "S1", Move.RESERVE, 3, 350.0, "buy-1", "order-1"))
    >>> [(s.on_hand, s.reserved, s.available) for s in ledger.stock().locations]
    [(4, 2, 2)]
    >>> ledger.apply(M("SKU-1", "S1", Move.ON_HAND, -3, 300.0, "sale-1")) is None  # redelivered
    True
    >>> ledger.apply(M("SKU-1", "S1", Move.ON_HAND, -2, 500.0, "sale-2")).kind
    'out_of_stock'
    >>> ledger.version
    6
    """

    def __init__(
        self,
        sku: str,
        dedup_window_s: float = 3_600.0,
        count_window_s: float = 6 * 3_600.0,
        order_retention_s: float = 7 * 86_400.0,
        low_stock_threshold: int = 5,
        *,
        line_updates: bool = True,
    ) -> None:
        self.sku = sku
        self.dedup_window_s = dedup_window_s
        self.count_window_s = count_window_s
        self.order_retention_s = order_retention_s
        self.low_stock_threshold = low_stock_threshold
        self.version = 0
        self.as_of = float("-inf")
        self.duplicates = 0
        self._seen = SeenEvents(dedup_window_s)
        self._locations: dict[str, _Location] = {}
        # What `stock()` last reported per location, in `_locations`' order; None until first reported.
        self._shown: dict[str, LocationStock | None] = {}
        self._stale: dict[str, None] = {}  # locations changed since `stock()` last reported them
        self._next_lapse = _NO_EXPIRY  # the earliest `next_lapse` of the locations
        self._changed_lines: dict[tuple[str, str], None] = {}  # (location, order) lines changed since `order_updates`
        self._line_updates = line_updates  # False: a copy that never asks `order_updates` keeps no `_changed_lines`

    def apply(self, move: StockMovement, *, deduplicated: bool = False) -> Alert | DeadLetter | None:
        """Apply one movement; returns an alert or a dead letter when it raises one.

        `deduplicated`: the movement's producer already let each event through once (an `OrderBook`'s,
        which remembers its orders' events far longer than the dedup window), so the window is not asked.
        Stock ends the same; only `version` may count a whole-order cancel that the book sends again with
        a later purchase of the order (it releases nothing more), so a ledger whose versions fence
        writes (the inventory flow's) leaves this off.
        """
        ts, location_id = move.ts, move.location_id
        if not deduplicated and not self._seen.add(move.event_id, ts):
            self.duplicates += 1
            return None
        loc = self._locations.get(location_id)
        if loc is None:
            loc = self._new_location(location_id)
        self.version += 1
        self._stale[location_id] = None
        if ts > self.as_of:
            self.as_of = ts
            if ts >= self._next_lapse:
                self._lapse_holds()
        if ts > loc.updated_at:
            loc.updated_at = ts
        kind = move.kind
        if kind == _ON_HAND:
            self._change_on_hand(loc, move.qty, ts)
        elif kind == _COUNT:
            if ts < loc.folded_until:
                return self._stale_count(move, loc)
            self._count(loc, move)
        else:
            line = loc.orders.get(move.order_id)  # type: ignore[arg-type]
            if line is None:
                if len(loc.orders) >= loc.sweep_orders_at:
                    self._sweep_orders(location_id, loc)  # before inserting: a new, empty line must not be swept
                line = loc.orders[move.order_id] = _OrderLine()  # type: ignore[index]
            before = line.reserved
            if kind == _RESERVE:
                line.purchased += move.qty
            elif kind == _FULFIL:
                line.fulfilled += move.qty
                self._change_on_hand(loc, -move.qty, ts)
            elif kind == _CANCEL:
                if move.qty:
                    line.cancel_qty += move.qty
                else:
                    line.cancelled = True
            else:
                self._decide_hold(loc, line, move)
            if ts > line.last_ts:
                line.last_ts = ts
            line.events += 1
            loc.reserved += line.reserved - before
            if self._line_updates:
                self._changed_lines[location_id, move.order_id] = None  # type: ignore[index]
        return self._level_alert(loc, move)

    def _new_location(self, location_id: str) -> _Location:
        """Add a location, keeping `_locations` and `_shown` sorted by location id.

        Sorted so `stock()` need not sort on every write: first-seen order depends on arrival order,
        which a recovery replay changes. A location after every known one is appended (in the
        benchmark's simulator stream, 3 new locations in 7); otherwise both are rebuilt in order.
        """
        loc = _Location()
        locations, shown = self._locations, self._shown
        if not locations or location_id > next(reversed(locations)):
            locations[location_id] = loc
            shown[location_id] = None
        else:
            locations[location_id] = loc
            self._locations = locations = dict(sorted(locations.items()))
            self._shown = {known: shown.get(known) for known in locations}
        return loc

    def order_updates(self) -> list[OrderLineState | ReservationState]:
        """The order lines and holds changed since the last call, as they stand now (then forgotten)."""
        updates: list[OrderLineState | ReservationState] = []
        for location_id, order_id in self._changed_lines:
            line = self._locations[location_id].orders.get(order_id)
            if line is None:
                continue  # swept since it changed: it held nothing
            if line.hold == NOT_A_HOLD:
                if not (line.purchased or line.fulfilled):
                    continue  # only cancels so far: the order is known from its purchase, or goods leaving for it
                updates.append(OrderLineState(order_id, self.sku, location_id, line.purchased, line.fulfilled,
                                              line.cancelled, line.cancel_qty, line.version, line.last_ts))  # fmt: skip
            else:
                updates.append(self._hold_state(order_id, location_id, line))
        self._changed_lines.clear()
        return updates

    def _decide_hold(self, loc: _Location, line: _OrderLine, move: StockMovement) -> None:
        """Hold `move.qty` if that much is available here now, else reject: first come, first served.

        A hold whose decision was published before a recovery replay (`move.prior`) keeps it: the
        replay may interleave the SKU's events differently, and what a shopper was told stands.
        """
        if line.hold != NOT_A_HOLD or line.purchased:
            return  # decided already (the same reservation asked twice under new event ids): the first answer stands
        line.purchased = move.qty
        line.hold_until = move.until
        if move.prior == REJECTED_BEFORE or (not move.prior and move.qty > loc.on_hand - loc.reserved):
            line.hold = REJECTED  # a decision published before a replay stands, whatever the interleaving now
            return
        line.hold = HELD
        if self.as_of >= move.until:
            line.lapsed = True  # so late that it lapsed before it arrived
        elif move.until < loc.next_lapse:
            loc.next_lapse = move.until
            if move.until < self._next_lapse:
                self._next_lapse = move.until

    def _lapse_holds(self) -> None:
        """Release the held lines whose `hold_until` the SKU's event time (`as_of`) has reached."""
        now, soonest = self.as_of, _NO_EXPIRY
        for location_id, loc in self._locations.items():
            if loc.next_lapse <= now:
                next_lapse = _NO_EXPIRY
                for order_id, line in loc.orders.items():
                    if line.hold != HELD or line.lapsed:
                        continue
                    if line.hold_until <= now:
                        before = line.reserved
                        line.lapsed = True
                        loc.reserved += line.reserved - before
                        self._changed_lines[location_id, order_id] = None
                        self._stale[location_id] = None
                    elif line.hold_until < next_lapse:
                        next_lapse = line.hold_until
                loc.next_lapse = next_lapse
            if loc.next_lapse < soonest:
                soonest = loc.next_lapse
        self._next_lapse = soonest

    def _hold_state(self, reservation_id: str, location_id: str, line: _OrderLine) -> ReservationState:
        if line.hold == REJECTED:
            status, reason = HoldStatus.REJECTED, "insufficient_stock"
        elif line.fulfilled >= line.purchased:
            status, reason = HoldStatus.FULFILLED, ""
        elif line.cancelled or line.fulfilled + line.cancel_qty >= line.purchased:
            status, reason = HoldStatus.CANCELLED, ""
        elif line.lapsed:
            status, reason = HoldStatus.EXPIRED, ""
        else:
            status, reason = HoldStatus.HELD, ""
        return ReservationState(reservation_id, self.sku, location_id, line.purchased, status, reason,
                                line.last_ts, line.hold_until, line.fulfilled, line.version)  # fmt: skip

    def to_bytes(self) -> bytes:
        """The ledger as compact bytes, for the flow's snapshots (`from_bytes` reverses it).

        Bytewax snapshots every touched ledger at each epoch and the flow
        pauses meanwhile: MessagePack of Structs and plain containers encodes
        in C, and the pause sets the flow's tail latency.

        >>> ledger = StockLedger("SKU-1")
        >>> _ = ledger.apply(StockMovement("SKU-1", "S1", Move.ON_HAND, 3, 1.0, "e1"))
        >>> StockLedger.from_bytes(ledger.to_bytes()).stock() == ledger.stock()
        True
        """
        return _ENCODER.encode((self.sku, self.dedup_window_s, self.count_window_s, self.order_retention_s,
                                self.low_stock_threshold, self.version, self.as_of, self.duplicates,
                                self._seen.to_state(), self._locations))  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes, *, line_updates: bool = True) -> StockLedger:
        """The ledger `to_bytes` gave; `line_updates` as the constructor's (not part of the bytes)."""
        ledger = cls.__new__(cls)
        (ledger.sku, ledger.dedup_window_s, ledger.count_window_s, ledger.order_retention_s, ledger.low_stock_threshold,
         ledger.version, ledger.as_of, ledger.duplicates, seen, locations) = _DECODER.decode(data)  # fmt: skip
        ledger._locations = dict(sorted(locations.items()))  # kept sorted (see `apply`)
        ledger._seen = SeenEvents.from_state(seen)
        ledger._shown = dict.fromkeys(ledger._locations)
        ledger._stale = dict.fromkeys(ledger._locations)
        ledger._next_lapse = min((loc.next_lapse for loc in locations.values()), default=_NO_EXPIRY)
        ledger._changed_lines = {}
        ledger._line_updates = line_updates
        return ledger

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle (the merchandising flow pickles its ledgers whole); the reported-stock cache is rebuilt.

        Snapshots of the code before `_stale` existed hold a `_shown` of only some locations: rebuilt
        from `_locations` either way, it reports every location anew, with the same values.
        """
        self.__dict__.update(state)
        self.__dict__.setdefault("_line_updates", True)  # pickled before the option existed
        self._shown = dict.fromkeys(self._locations)
        self._stale = dict.fromkeys(self._locations)

    def stock(self) -> SkuStock:
        """The SKU's stock at every location, as of the last applied movement.

        Only the locations changed since the last call are built again; the others are the very
        `LocationStock`s reported before, which lets `operators.availability` skip them by identity.
        """
        shown, stale = self._shown, self._stale
        if stale:
            locations = self._locations
            for location_id in stale:
                loc = locations[location_id]
                shown[location_id] = LocationStock(location_id, loc.on_hand, loc.reserved, loc.updated_at)
            stale.clear()
        # Every location is reported once stale ones are rebuilt; `_shown` is in `_locations`' (sorted) order.
        return SkuStock(self.sku, self.version, self.as_of, cast(tuple[LocationStock, ...], tuple(shown.values())))

    def available_at(self, location_id: str) -> int | None:
        """Units available (on hand less reserved) at `location_id`, None if no movement reached it.

        >>> ledger = StockLedger("SKU-1")
        >>> _ = ledger.apply(StockMovement("SKU-1", "S1", Move.ON_HAND, 3, 1.0, "e1"))
        >>> ledger.available_at("S1"), ledger.available_at("S2")
        (3, None)
        """
        loc = self._locations.get(location_id)
        return None if loc is None else loc.on_hand - loc.reserved

    def _change_on_hand(self, loc: _Location, qty: int, ts: float) -> None:
        if ts <= loc.count_ts:
            return  # already in the count (CONTRACT.md: counts are as of their ts)
        loc.on_hand += qty
        if ts >= loc.folded_until:
            loc.moves.append(_Move(ts, qty))
            if len(loc.moves) >= loc.sweep_moves_at:
                self._fold_old_moves(loc)

    def _count(self, loc: _Location, move: StockMovement) -> None:
        if (move.ts, move.event_id) <= (loc.count_ts, loc.count_id):
            return  # a newer count is already applied
        later = [m for m in loc.moves if m.ts > move.ts]
        loc.moves = later
        loc.on_hand = move.qty + sum(m.qty for m in later)
        loc.count_ts, loc.count_id = move.ts, move.event_id

    def _fold_old_moves(self, loc: _Location) -> None:
        # Amortised O(1): sweep when the list has doubled since the last sweep.
        horizon = self.as_of - self.count_window_s
        if horizon > loc.folded_until:
            loc.folded_until = horizon
            loc.moves = [m for m in loc.moves if m.ts >= horizon]
        loc.sweep_moves_at = max(_FIRST_SWEEP, 2 * len(loc.moves))

    def _sweep_orders(self, location_id: str, loc: _Location) -> None:
        horizon = self.as_of - self.order_retention_s
        # Only lines that hold nothing go: closed ones (rejected and lapsed holds too), and cancels or
        # fulfilments whose purchase never came. Evicting them leaves `reserved` unchanged. A line changed
        # since `order_updates` stays until it is published: a hold's decision or a line's last state,
        # dated before the horizon (a producer's clock far behind), would otherwise never be told.
        changed = self._changed_lines
        loc.orders = {
            order_id: line
            for order_id, line in loc.orders.items()
            if line.last_ts >= horizon or (line.purchased > 0 and not line.closed) or (location_id, order_id) in changed
        }
        loc.sweep_orders_at = max(_FIRST_SWEEP, 2 * len(loc.orders))

    def _stale_count(self, move: StockMovement, loc: _Location) -> DeadLetter:
        topic, partition, offset, raw = move.source or ("", -1, -1, b"")
        horizon = datetime.fromtimestamp(loc.folded_until, UTC).isoformat()
        error = f"Cycle count older than the kept movement history (before {horizon}); cannot be applied exactly"
        return DeadLetter.of(topic, partition, offset, error, raw)

    def _level_alert(self, loc: _Location, move: StockMovement) -> Alert | None:
        available = loc.on_hand - loc.reserved
        if available < 0:
            level = OVERSOLD
        elif available == 0:
            level = OUT
        elif available <= self.low_stock_threshold:
            level = LOW
        else:
            level = OK
        entered_worse = level > loc.level
        loc.level = level
        if not entered_worse:
            return None
        kind, severity = _ALERTS[level]
        return Alert(
            alert_id=f"{kind}:{self.sku}:{move.location_id}:{self.version}",
            kind=kind,
            severity=severity,
            entity=Entity("stock", f"{self.sku}@{move.location_id}"),
            reasons=[
                f"available {available} (on_hand {loc.on_hand}, reserved {loc.reserved})",
                f"low_stock_threshold {self.low_stock_threshold}",
            ],
            ts=rfc3339_ms(move.ts),
            source_event_ids=[move.event_id],
        )
