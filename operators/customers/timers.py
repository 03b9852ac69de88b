"""Who wakes the customer buckets: the flow's one event clock and its wake-ups filed by due hour.

Bytewax snapshots, each epoch, every key an item reached in it. When every clock tick went to every
customers shard (their timers wait on the clock), every shard was snapshotted every epoch, whole: the
cost followed the customers held (~100 MB an epoch at 1M, docs/customers.md). Now customers live in
many small buckets, and a bucket hears the clock only when something of its own may be due:

- the decoder knows, from an activity alone, every time at which it can make its customer due: the
  purchase itself (walked when the watermark passes it) and its lifecycle thresholds (`new`, `at_risk`,
  `lapsed`, `won_back` after it), a view's time, a cart's or a failed payment's deadline. It files one
  `Due` (time, bucket) per such time: a superset of the bucket's own timers (`operators.customers.shard`
  keeps the exact ones), so a bucket is woken at or after each of them; a stale one wakes it for nothing.
- `TimerClock` (one key: the flow's clock) takes every decoded batch's tick and those `Due`s, and sends
  each `Due` to the key of its due hour, every batch to an hour key followed by the watermark; when the
  watermark moves, it tells each hour it passed into or through.
- `HourTimers` (one key per due hour) holds its hour's `Due`s until the watermark passes them, then
  wakes their buckets with it. The hour the watermark is in also forwards the watermark to the
  customers stage's relay key, which passes it on to the gate shards after what the woken buckets
  sent them, and to the stock shards once per sixteenth of the watch window (`flows.customers_stages`).

So an epoch snapshots the clock, the hours touched (the current one and those new `Due`s landed in:
30, 60, 180 days ahead for a purchase) and the buckets touched: the cost follows the customers active
or due, not those held.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Iterable
from typing import Any

import msgspec

from operators.customers.clock import EventClock
from operators.customers.profile import CustomerConfig
from operators.customers.records import Bought, Clicked, ConsentSeen, Due, PaymentSeen, Tick

HOUR_MS = 3_600_000


def hour_of(due_ms: int) -> int:
    """The hour key index of a due millisecond.

    >>> hour_of(3_599_999), hour_of(3_600_000)
    (0, 1)
    """
    return due_ms // HOUR_MS


class DueTimes:
    """When an activity may make its customer due, from the activity alone (`operators.customers.timers`).

    A purchase: itself (walked when the watermark passes it) and each lifecycle threshold after it (it may
    be the first purchase, the last one, or a win-back); a view: itself; a cart or a failed payment: its
    deadline. Removals, approvals, returns and consent changes start no timer.

    >>> times = DueTimes(CustomerConfig())
    >>> times.of(Clicked("C1", "e1", 100.0, "cart", "SKU-1", "web", None))
    (1900.0,)
    >>> len(times.of(Bought("C1", "e2", 100.0, 5.0, "web", None, None, ())))  # new and won_back: both 30 days
    4
    >>> times.of(Bought("C1", "e3", 100.0, -5.0, "web", None, None, ()))  # a return
    ()
    """

    __slots__ = ("cart_s", "payment_s", "purchase_offsets")

    def __init__(self, config: CustomerConfig) -> None:
        rules = config.lifecycle
        self.purchase_offsets = tuple(dict.fromkeys((0.0, rules.new_s, rules.at_risk_s, rules.lapsed_s,
                                                     rules.won_back_s)))  # fmt: skip
        self.cart_s = config.cart_window_s
        self.payment_s = config.payment_window_s

    def of(self, item: Bought | Clicked | PaymentSeen | ConsentSeen) -> tuple[float, ...]:
        kind = type(item)
        if kind is Bought:
            bought: Bought = item  # type: ignore[assignment]
            return () if bought.amount < 0 else tuple(bought.ts + offset for offset in self.purchase_offsets)
        if kind is Clicked:
            click: Clicked = item  # type: ignore[assignment]
            if click.kind == "cart":
                return (click.ts + self.cart_s,)
            return (click.ts,) if click.kind == "view" else ()
        if kind is PaymentSeen:
            paid: PaymentSeen = item  # type: ignore[assignment]
            return () if paid.ok else (paid.ts + self.payment_s,)
        return ()


class TimerClock:
    """The flow's event clock; files `Due`s with their hour and tells the hours when the watermark moves.

    Examples
    --------
    >>> clock = TimerClock(EventClock(lateness_s=0.0, idle_s=1e9))
    >>> groups = clock.apply([Due(7_200_500, 3), Tick(((("pos", 0), 3_700.0),))])
    >>> [(hour, [type(i).__name__ for i in items], items[-1].watermark, items[-1].relay) for hour, items in groups]
    [(2, ['Due', 'Tick'], 3700.0, False), (1, ['Tick'], 3700.0, True)]
    >>> groups = clock.apply([Tick(((("pos", 0), 7_300.0),))])  # passes into hour 2: hours 1 and 2 hear it
    >>> [(hour, items[-1].watermark, items[-1].relay) for hour, items in groups]
    [(1, 7300.0, False), (2, 7300.0, True)]
    """

    def __init__(self, clock: EventClock, first_filed: int | None = None) -> None:
        self.clock = clock
        # The earliest hour a `Due` went to while the watermark had not moved yet (the clock waits for every
        # partition at the start): the watermark's first move must tell every hour from there, not only its own.
        self.first_filed = first_filed

    def apply(self, items: Iterable[Due | Tick]) -> list[tuple[int, list[Any]]]:
        """Take `Due`s and ticks; returns per hour key its `Due`s (if any) then a tick saying the watermark.

        The hour the watermark is in gets the relay tick (`Tick.relay`), when the watermark moved.
        """
        clock = self.clock
        before = clock.watermark
        filed: dict[int, list[Any]] = {}
        for item in items:
            if isinstance(item, Tick):
                clock.advance(item.newest, item.holds, item.watermark)
            else:
                hour = item.due_ms // HOUR_MS
                group = filed.get(hour)
                if group is None:
                    filed[hour] = [item]
                else:
                    group.append(item)
        now = clock.watermark
        if filed and before == -math.inf:
            earliest = min(filed)
            if self.first_filed is None or earliest < self.first_filed:
                self.first_filed = earliest
        mark = Tick((), (), now)
        out = {hour: [*group, mark] for hour, group in filed.items()}
        if now > before:  # every hour passed into or through hears it, once: their `Due`s wake their buckets
            last = math.floor(now * 1000) // HOUR_MS
            if before == -math.inf:  # from the earliest hour filed while waiting, if that is before this one
                first = last if self.first_filed is None else min(self.first_filed, last)
                self.first_filed = None
            else:
                first = math.floor(before * 1000) // HOUR_MS
            for hour in range(first, last + 1):
                tick = Tick((), (), now, relay=hour == last)
                group = out.get(hour)
                if group is None:
                    out[hour] = [tick]
                else:
                    group[-1] = tick
        return list(out.items())

    def to_bytes(self) -> bytes:
        if self.first_filed is None:  # the format of snapshots before `first_filed`, which they restore as None
            return msgspec.msgpack.encode(self.clock.to_state())
        return msgspec.msgpack.encode({"clock": self.clock.to_state(), "first_filed": self.first_filed})

    @classmethod
    def from_bytes(cls, data: bytes) -> TimerClock:
        state = msgspec.msgpack.decode(data)
        if isinstance(state, dict):
            return cls(EventClock.from_state(state["clock"]), state["first_filed"])
        return cls(EventClock.from_state(state))


BUCKET_BITS = 20
"""A timer entry is one int64: the due millisecond above the bucket number (`OMNISTREAM_CUSTOMERS_BUCKETS` <= 2^20)."""
_BUCKET_MASK = (1 << BUCKET_BITS) - 1


def bucket_key(bucket: int) -> str:
    """The Bytewax key of customer bucket number `bucket` (`operators.keyed_shards.ShardRouter` names it so)."""
    return f"customers:{bucket}"


class HourTimers:
    """The `Due`s of one hour, until the watermark passes them: 8 bytes each.

    Every customer held has a few `Due`s days ahead (their lifecycle thresholds), so these keys hold
    several entries per customer: each is one int64 (due millisecond, bucket) in an array, not a tuple
    in a heap (~150 bytes). The array is sorted once, the first time the watermark reaches its earliest
    entry; entries filed after that go to a small heap beside it.

    Examples
    --------
    >>> hour = HourTimers()
    >>> hour.apply([Due(1_500, 1), Due(1_500, 1), Due(2_500, 2), Tick((), (), 2.0)])
    (['customers:1'], 2.0, None)
    >>> len(hour), hour.apply([Due(2_200, 3), Tick((), (), 3.0, relay=True)])
    (1, (['customers:2', 'customers:3'], 3.0, Tick(newest=(), holds=(), watermark=3.0, relay=True)))
    >>> len(hour)
    0
    """

    __slots__ = ("_bulk", "_late", "_min", "_next", "_sorted")

    def __init__(self, entries: array[int] | None = None) -> None:
        self._bulk: array[int] = entries if entries is not None else array("q")
        self._min = min(self._bulk) if self._bulk else _NEVER
        self._sorted = False
        self._next = 0  # the sorted array's first entry not yet due
        self._late: list[int] = []  # filed after the array was sorted: a heap

    def __len__(self) -> int:
        return len(self._bulk) - self._next + len(self._late)

    def apply(self, items: Iterable[Due | Tick]) -> tuple[list[str], float, Tick | None]:
        """File `Due`s, take the watermark; returns the buckets now due (each once), the watermark and the relay
        tick, if any."""
        bulk, late = self._bulk, self._late
        now = -math.inf
        relay: Tick | None = None
        for item in items:
            if isinstance(item, Tick):
                if item.watermark > now:
                    now = item.watermark
                if item.relay:
                    relay = item
            else:
                entry = item.due_ms << BUCKET_BITS | item.bucket
                if self._sorted:
                    heapq.heappush(late, entry)
                else:
                    bulk.append(entry)
                    if entry < self._min:
                        self._min = entry
        woken: dict[str, None] = {}
        if now == -math.inf:
            return [], now, relay
        limit = (math.floor(now * 1000) << BUCKET_BITS) | _BUCKET_MASK  # every entry due at or before `now`
        if not self._sorted:
            if self._min > limit:
                return [], now, relay
            self._bulk = bulk = array("q", sorted(bulk))
            self._sorted = True
        i, end = self._next, len(bulk)
        while i < end and bulk[i] <= limit:
            woken[bucket_key(bulk[i] & _BUCKET_MASK)] = None
            i += 1
        if i > 4096 and i > end // 2:  # let the passed entries go
            del bulk[:i]
            i = 0
        self._next = i
        while late and late[0] <= limit:
            woken[bucket_key(heapq.heappop(late) & _BUCKET_MASK)] = None
        return list(woken), now, relay

    def to_bytes(self) -> bytes:
        left = self._bulk[self._next :]
        left.extend(self._late)
        return left.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> HourTimers:
        entries = array("q")
        entries.frombytes(data)
        return cls(entries)


_NEVER = 1 << 62
