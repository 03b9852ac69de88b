"""Net demand of the days still open, per location and SKU, until the watermark closes them.

The first keyed step of the demand flow. It takes demand lines (till sales and returns, online
order lines), voids and order cancels (which undo what they name), weather and the watermark, and
hands the model step (`operators.demand.series`) one `DayClose` per location and day, in day order,
empty days included, once the watermark has passed the day's local midnight plus the allowed
lateness. Demand for a day already closed goes on as a `LateDemand` correction: the model keeps it
in the history, but the forecasts made at that close stay as they were (a forecast uses only what
had arrived, all of it dated on or before its origin).

Why a step of its own: it holds only what is open (a day or two of lines, time-bounded journals),
while the models' large columns change, and are snapshotted, only when a day closes. Its
journals are still written whole with each touched shard at every epoch (several MB per shard
with a week of orders held: docs/demand.md, "State and snapshots"), as one MessagePack document:
pickle memoises every container it writes, and took 5-9x as long over the same journals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from operators.demand.locations import LocationBook
from operators.demand.series import DayWeather
from operators.seen_events import SeenEvents


class Demand(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """Signed units of one SKU at one location at `ts`: a sale or order line (+), a till return (−).

    `txn_id` (till) or `order_id` (online) name what a later void or cancel undoes; `line` is the
    line's position in its event (a basket may list a SKU twice: each line counts, a redelivery not).
    """

    event_id: str
    ts: float
    location_id: str
    sku: str
    qty: int
    txn_id: str = ""
    order_id: str = ""
    line: int = 0


class VoidTxn(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """A till transaction was voided: its lines are undone on their own day. Sent to every shard."""

    event_id: str
    ts: float
    store_id: str
    original_txn_id: str


class CancelOrder(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """An online order, or a line of it, was cancelled: the units it names are undone on the order's day.

    `sku` empty: the whole order (every line this shard holds, whenever its purchase arrives); sent to
    every shard, as is a line cancel without `location_id` (the line wherever the purchase put it).
    `qty` 0 undoes all that remains of the line; otherwise that many units of it.
    """

    event_id: str
    ts: float
    location_id: str
    sku: str
    order_id: str
    qty: int = 0


class WeatherDay(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """The weather of local `day` at a location (an observation supersedes a forecast). Sent to every shard."""

    event_id: str
    ts: float
    location_id: str
    day: int
    observed: bool
    temperature_c: float
    precipitation_mm: float


class Tick(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """The newest event time a decoder has read, sent to every shard last in each batch; `shard` is its index."""

    ts: float
    shard: int


class DayClose(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """A location's day is closed: its net demand per SKU and the weather known for it and the days after."""

    location_id: str
    day: int
    demand: dict[str, float]
    weather: dict[int, tuple[float, float]]
    """Local day -> (temperature °C, precipitation mm), for the closed day and those ahead."""
    shard: int = -1
    """The index of the days shard that closed it (its models shard has the same index)."""


class LateDemand(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """Demand for a day already closed: a correction of the history."""

    location_id: str
    day: int
    sku: str
    qty: float


DaysInput = Demand | VoidTxn | CancelOrder | WeatherDay | Tick
DaysOutput = DayClose | LateDemand


@dataclass(slots=True)
class _Location:
    closed_through: int
    open: dict[int, dict[str, float]] = field(default_factory=dict)
    weather: dict[int, tuple[float, float, bool]] = field(default_factory=dict)


_Order = list[Any]
"""One order's lines this shard holds and every cancel of it seen, so that netting is order-free:
`[lines, cancels, last_ts]` (plain containers: the days step is pickled at every epoch, and these pickle in C).

`lines`: (location, SKU) -> [order day, units purchased, units booked]; `cancels`: cancel event id -> (SKU or ""
for the whole order, location or "" for wherever, units or 0 for all). A line's counted units are a function of its
purchased units and the cancels that reach it, whatever order they arrived in; `booked` is what the days hold for
the line now, so a change books only the difference, on the order's day.
"""
_LINES, _CANCELS, _LAST_TS = 0, 1, 2

_JOURNALS = msgspec.msgpack.Encoder()
_JOURNALS_DECODER = msgspec.msgpack.Decoder(
    tuple[
        dict[str, list[tuple[str, int, str, int]]],  # txns
        dict[str, tuple[dict[tuple[str, str], list[int]], dict[str, tuple[str, str, int]], float]],  # orders
        list[str],  # voided
        list[tuple[float, int, str]],  # expiry
    ]
)
_FORMAT = 3
"""The layout of `OpenDays.__getstate__`; 1 was the dataclass's own (every slot pickled as objects), 2 recorded
each demand line in the dedup window (`event_id#line`) where 3 records each delivery's event id once."""


def _counted(cancels: dict[str, tuple[str, str, int]], location_id: str, sku: str, purchased: int) -> int:
    """Units of the line (location, SKU) that stay demand after the order's cancels.

    A whole-order cancel, or a line cancel without a quantity, leaves nothing; line cancels with quantities
    take off their sum.
    """
    taken = 0
    for c_sku, c_location, qty in cancels.values():
        if c_sku == "" or (c_sku == sku and c_location in ("", location_id)):
            if c_sku == "" or qty == 0:
                return 0
            taken += qty
    return max(0, purchased - taken)


@dataclass(slots=True)
class OpenDays:
    """One shard's open days, journals and watermark.

    Parameters
    ----------
    lateness_s
        Event time the watermark must pass a local midnight by before the day closes.
    journal_s
        Event time a till transaction (for voids) and an order line (for cancels) are remembered.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> book = LocationBook.parse("WEB=Europe/London,GB-ENG")
    >>> days = OpenDays(lateness_s=3600.0, journal_s=86400.0)
    >>> at = lambda d, h: datetime(2011, 7, d, h, tzinfo=UTC).timestamp()
    >>> days.apply([Demand("e1", at(4, 9), "WEB", "SKU-1", 3, order_id="O1"), Tick(at(4, 9), 0)], book)
    []
    >>> days.apply([CancelOrder("e2", at(4, 10), "WEB", "SKU-1", "O1"),
    ...             Demand("e3", at(4, 11), "WEB", "SKU-1", 2), Tick(at(5, 1), 0)], book)
    [DayClose(location_id='WEB', day=15159, demand={'SKU-1': 2.0}, weather={}, shard=0)]
    """

    lateness_s: float
    journal_s: float
    shard: int = -1
    watermark: float = float("-inf")
    locations: dict[str, _Location] = field(default_factory=dict)
    seen: SeenEvents = field(default_factory=SeenEvents)
    txns: dict[str, list[tuple[str, int, str, int]]] = field(default_factory=dict)
    """Till transaction id -> its lines here: (location, day, SKU, signed units)."""
    orders: dict[str, _Order] = field(default_factory=dict)
    """Order id -> its lines here and its cancels (a cancel before its order is kept, and applied on arrival)."""
    voided: set[str] = field(default_factory=set)
    expiry: list[tuple[float, int, str]] = field(default_factory=list)
    """(ts, kind, txn or order id) in arrival order, to forget journal entries after `journal_s`."""
    late_dropped: int = 0
    legacy_until: float = float("-inf")
    """Lines dated up to this may have been recorded one by one (a snapshot of `_FORMAT` 2): see `_fresh`."""
    delivery_id: str = ""
    """The event of the last demand line taken, its `line` and whether its delivery was new (`_fresh`)."""
    delivery_line: int = -1
    delivery_fresh: bool = False

    def __post_init__(self) -> None:
        if self.seen.window_s != self.journal_s:
            self.seen = SeenEvents(self.journal_s)

    def __getstate__(self) -> dict[str, Any]:
        """The shard for a snapshot: the journals (most of it) as one MessagePack document."""
        journals = _JOURNALS.encode((self.txns, self.orders, list(self.voided), self.expiry))
        return {
            "format": _FORMAT,
            "windows": (self.lateness_s, self.journal_s),
            "shard": self.shard,
            "watermark": self.watermark,
            "locations": self.locations,
            "seen": self.seen,
            "journals": journals,
            "late_dropped": self.late_dropped,
            "legacy_until": self.legacy_until,
        }

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # a snapshot of the code before `_FORMAT`: the slots' values as they were
            for name, value in state[1].items():
                setattr(self, name, value)
            self.delivery_id, self.delivery_line, self.delivery_fresh = "", -1, False
            self.legacy_until = self.seen.newest
            return
        self.lateness_s, self.journal_s = state["windows"]
        self.shard, self.watermark = state["shard"], state["watermark"]
        self.locations, self.seen, self.late_dropped = state["locations"], state["seen"], state["late_dropped"]
        self.delivery_id, self.delivery_line, self.delivery_fresh = "", -1, False
        # Before `_FORMAT` 3 each demand line was recorded as `event_id#line`, so a redelivery of an event
        # seen then is recognised by those keys until the window forgets them.
        self.legacy_until = state.get("legacy_until", self.seen.newest)
        txns, orders, voided, expiry = _JOURNALS_DECODER.decode(state["journals"])
        self.txns, self.voided, self.expiry = txns, set(voided), expiry
        self.orders = {order_id: [lines, cancels, last_ts] for order_id, (lines, cancels, last_ts) in orders.items()}

    def apply(self, items: list[DaysInput], book: LocationBook) -> list[DaysOutput]:
        """Take one batch of items in order; returns the day closes and late corrections it causes."""
        out: list[DaysOutput] = []
        for item in items:
            kind = type(item)
            if kind is Demand:
                self._demand(item, book, out)  # type: ignore[arg-type]
            elif kind is Tick:
                tick: Tick = item  # type: ignore[assignment]
                self.shard = tick.shard
                if tick.ts > self.watermark:
                    self.watermark = tick.ts
                    self._close_due(book, out)
            elif kind is VoidTxn:
                self._void(item, out)  # type: ignore[arg-type]
            elif kind is CancelOrder:
                self._cancel(item, out)  # type: ignore[arg-type]
            else:
                self._weather(item)  # type: ignore[arg-type]
        return out

    # --- inputs -----------------------------------------------------------------------------------------------

    def _location(self, location_id: str, day: int) -> _Location:
        held = self.locations.get(location_id)
        if held is None:
            held = self.locations[location_id] = _Location(closed_through=day - 1)
        return held

    def _book(self, location_id: str, day: int, sku: str, qty: float, out: list[DaysOutput]) -> None:
        held = self._location(location_id, day)
        if day > held.closed_through:
            open_day = held.open.setdefault(day, {})
            open_day[sku] = open_day.get(sku, 0.0) + qty
        else:
            out.append(LateDemand(location_id, day, sku, qty))

    def _demand(self, line: Demand, book: LocationBook, out: list[DaysOutput]) -> None:
        if not self._fresh(line):
            return
        day = book.days(line.location_id).day(line.ts)
        self._remember(line.ts)
        if line.txn_id:
            if line.txn_id in self.voided:
                return  # its void came first
            self.txns.setdefault(line.txn_id, []).append((line.location_id, day, line.sku, line.qty))
            self.expiry.append((line.ts, 0, line.txn_id))
        if line.order_id:
            order = self._order(line.order_id, line.ts)
            key = (line.location_id, line.sku)
            lines = order[_LINES]
            held = lines.get(key)
            if held is None:
                held = lines[key] = [day, 0, 0]
            held[1] += line.qty
            if order[_CANCELS]:
                self._net_line(order, key, held, out)  # only this line changed
                return
            held[2] += line.qty  # no cancel: all of it counts, booked below
        self._book(line.location_id, day, line.sku, float(line.qty), out)

    def _fresh(self, line: Demand) -> bool:
        """Whether `line`'s delivery is new: one dedup look-up per delivery of an event, not per line.

        The decoder routes an event's lines one after another, in line order, so the lines of one delivery
        reach a shard in one batch with rising `line`; a line that does not follow the previous one of the
        same event (a lower or equal index) starts another delivery, which the window decides on.
        """
        if line.event_id == self.delivery_id and line.line > self.delivery_line:
            self.delivery_line = line.line
            return self.delivery_fresh
        fresh = self.seen.add(line.event_id, line.ts)
        if fresh and line.ts <= self.legacy_until:
            # Lines a snapshot of the layout before `_FORMAT` 3 recorded one by one, as `event_id#line`.
            fresh = f"{line.event_id}#{line.line}" not in self.seen
        self.delivery_id, self.delivery_line, self.delivery_fresh = line.event_id, line.line, fresh
        return fresh

    def _void(self, void: VoidTxn, out: list[DaysOutput]) -> None:
        if not self.seen.add(void.event_id, void.ts):
            return
        self._remember(void.ts)
        lines = self.txns.pop(void.original_txn_id, None)
        if lines is None:
            self.voided.add(void.original_txn_id)
            self.expiry.append((void.ts, 2, void.original_txn_id))
            return
        for location_id, day, sku, qty in lines:
            self._book(location_id, day, sku, -float(qty), out)

    def _cancel(self, cancel: CancelOrder, out: list[DaysOutput]) -> None:
        if not self.seen.add(cancel.event_id, cancel.ts):
            return
        self._remember(cancel.ts)
        order = self._order(cancel.order_id, cancel.ts)
        order[_CANCELS][cancel.event_id] = (cancel.sku, cancel.location_id, cancel.qty)
        self._net_order(order, out)  # lines not here yet get it on arrival

    def _order(self, order_id: str, ts: float) -> _Order:
        order = self.orders.get(order_id)
        if order is None:
            order = self.orders[order_id] = [{}, {}, ts]
            self.expiry.append((ts, 1, order_id))
        elif ts > order[_LAST_TS]:
            self.expiry.append((ts, 1, order_id))  # looked at again when this later event ages out
            order[_LAST_TS] = ts
        return order

    def _net_order(self, order: _Order, out: list[DaysOutput]) -> None:
        """Book the difference between what each line of `order` counts now and what the days hold for it."""
        for key, held in order[_LINES].items():
            self._net_line(order, key, held, out)

    def _net_line(self, order: _Order, key: tuple[str, str], held: list[int], out: list[DaysOutput]) -> None:
        location_id, sku = key
        cancels = order[_CANCELS]
        counted = _counted(cancels, location_id, sku, held[1]) if cancels else held[1]
        if counted != held[2]:
            self._book(location_id, held[0], sku, float(counted - held[2]), out)
            held[2] = counted

    def _weather(self, weather: WeatherDay) -> None:
        held = self.locations.get(weather.location_id)
        if held is None:
            return  # no demand here yet: nothing to forecast with it
        known = held.weather.get(weather.day)
        if known is not None and known[2] and not weather.observed:
            return  # an observation is not replaced by a forecast
        held.weather[weather.day] = (weather.temperature_c, weather.precipitation_mm, weather.observed)

    # --- closing ----------------------------------------------------------------------------------------------

    def _close_due(self, book: LocationBook, out: list[DaysOutput]) -> None:
        watermark = self.watermark - self.lateness_s
        for location_id, held in self.locations.items():
            clock = book.days(location_id)
            while clock.end_of(held.closed_through + 1) <= watermark:
                day = held.closed_through + 1
                demand = held.open.pop(day, {})
                weather = {d: (w[0], w[1]) for d, w in held.weather.items() if d >= day}
                out.append(DayClose(location_id, day, {s: q for s, q in demand.items() if q}, weather, self.shard))
                held.closed_through = day
                held.weather = {d: w for d, w in held.weather.items() if d > day}

    def _remember(self, ts: float) -> None:
        expiry = self.expiry
        horizon = ts - self.journal_s
        if not expiry or expiry[0][0] >= horizon:
            return
        cut = 0
        while cut < len(expiry) and expiry[cut][0] < horizon:
            _, kind, name = expiry[cut]
            if kind == 0:
                self.txns.pop(name, None)
            elif kind == 2:
                self.voided.discard(name)
            else:
                order = self.orders.get(name)
                if order is not None and order[_LAST_TS] < horizon:
                    del self.orders[name]  # its last event is older than the journal: forgotten
            cut += 1
        del expiry[:cut]


def day_weather(weather: dict[int, tuple[float, float]], day: int) -> DayWeather | None:
    """The `DayWeather` of `day` in a `DayClose`'s weather, if any."""
    known = weather.get(day)
    return DayWeather(known[0], known[1]) if known is not None else None
