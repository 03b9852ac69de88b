"""Buckets woken only by the clock and the hour keys fire what buckets ticked with every batch fire.

The flow no longer ticks every customer bucket (`operators/customers/timers.py`): a bucket hears
the watermark only when a `Due` the decoder filed from its activities comes due. These tests replay
the same random activities both ways, in the same batches, and compare the trigger candidates
(ids and due times) and every customer's state: the `Due`s must cover every timer a bucket has.
"""

from __future__ import annotations

import dataclasses
import math
import random
import zlib
from typing import Any

import pytest

from operators.customers.clock import EventClock
from operators.customers.lifecycle import DAY_S, LifecycleRules, Stage
from operators.customers.profile import CustomerConfig
from operators.customers.records import Bought, Clicked, Due, PaymentSeen, Tick
from operators.customers.shard import CustomerShard
from operators.customers.timers import DueTimes, HourTimers, TimerClock

BUCKETS = 7
CONFIG = CustomerConfig(
    lifecycle=LifecycleRules(1 * DAY_S, 2 * DAY_S, 4 * DAY_S, 1 * DAY_S),
    windows_s=(DAY_S, 3 * DAY_S),
    cart_window_s=1800.0,
    payment_window_s=900.0,
    vip_spend=300.0,
    lateness_s=60.0,
    idle_s=100 * DAY_S,
)
# Thresholds weeks apart: the buckets' timers wait in week slots first (`CustomerShard._schedule`).
WEEKS = CustomerConfig(
    lifecycle=LifecycleRules(10 * DAY_S, 20 * DAY_S, 40 * DAY_S, 10 * DAY_S),
    windows_s=(10 * DAY_S, 30 * DAY_S),
    cart_window_s=1800.0,
    payment_window_s=900.0,
    vip_spend=300.0,
    lateness_s=60.0,
    idle_s=1000 * DAY_S,
)


def _activities(seed: int, span_s: float = 12 * DAY_S) -> list[Any]:
    rng = random.Random(seed)
    items: list[Any] = []
    for n in range(1500):
        customer = f"C{rng.randrange(40)}"
        ts = rng.uniform(0, span_s)
        pick = rng.random()
        if pick < 0.3:
            store = f"ST{rng.randrange(3)}" if rng.random() < 0.5 else None
            channel = "store" if store else "web"
            items.append(Bought(customer, f"b{n}", ts, rng.uniform(5, 120), channel, store, "DE", (f"S{n % 5}",)))
        elif pick < 0.55:
            items.append(Clicked(customer, f"c{n}", ts, "cart", f"S{rng.randrange(5)}", "web", None))
        elif pick < 0.75:
            items.append(Clicked(customer, f"v{n}", ts, "view", f"S{rng.randrange(5)}", "web", None))
        else:
            items.append(PaymentSeen(customer, f"p{n}", ts, f"ref{rng.randrange(300)}", rng.random() < 0.4, 10.0))
    # In time order with up to a minute of disorder (within the lateness), as partitions deliver them.
    items.sort(key=lambda item: item.ts + rng.uniform(0, 50))
    return items


def _bucket(customer: str) -> int:
    return zlib.crc32(customer.encode()) % BUCKETS


def _candidates(out: Any) -> set[tuple[Any, ...]]:
    """The candidates (id, due time) and the views sent to the stock stage (with the store known then)."""
    return {(c.trigger_id, c.due_ts) for c in out.candidates} | {
        (w.customer, w.sku, w.ts, w.store) for w in out.watches
    }


@pytest.mark.parametrize(("seed", "config"), [(1, CONFIG), (2, CONFIG), (3, CONFIG), (4, WEEKS), (5, WEEKS)])
def test_buckets_woken_by_their_due_times_fire_what_buckets_ticked_every_batch_fire(
    seed: int, config: CustomerConfig
) -> None:
    items = _activities(seed, 12 * config.lifecycle.at_risk_s / 2)
    ticked = {f"customers:{i}": CustomerShard(config) for i in range(BUCKETS)}
    woken = {f"customers:{i}": CustomerShard(config) for i in range(BUCKETS)}
    clock, hours = TimerClock(EventClock(config.lateness_s, config.idle_s)), dict[int, HourTimers]()
    due_times = DueTimes(config)
    fired_ticked: set[tuple[Any, ...]] = set()
    fired_woken: set[tuple[Any, ...]] = set()
    batches = [items[i : i + 25] for i in range(0, len(items), 25)]
    batches.append([])  # the end: the stream's time moves far past everything (a closing event)
    newest = 0.0
    for batch in batches:
        newest = max([newest, *(item.ts for item in batch)]) if batch else newest + 5 * config.lifecycle.lapsed_s
        tick = Tick(((("pos", 0), newest),))
        groups: dict[str, list[Any]] = {}
        dues: list[Due] = []
        for item in batch:
            groups.setdefault(f"customers:{_bucket(item.customer)}", []).append(item)
            dues += [Due(math.ceil(due * 1000), _bucket(item.customer)) for due in due_times.of(item)]
        # Before: every bucket hears every tick, after its activities.
        for name, shard in ticked.items():
            fired_ticked |= _candidates(shard.apply([*groups.get(name, []), tick]))
        # Now: activities alone, then the clock files the `Due`s by hour and the hours wake their buckets.
        for name, group in groups.items():
            fired_woken |= _candidates(woken[name].apply(group))
        for hour, filed in clock.apply([*dues, tick]):
            timers = hours.setdefault(hour, HourTimers())
            buckets, now, _ = timers.apply(filed)
            for name in buckets:
                fired_woken |= _candidates(woken[name].apply([Tick((), (), now)]))
    assert fired_woken == fired_ticked
    kinds = {fired[0].split(":", 1)[0] for fired in fired_ticked if len(fired) == 2}
    assert {"cart_abandoned", "payment_failed_recovery", "at_risk", "win_back", "vip_reached"} <= kinds
    for name in ticked:
        # Every customer walked to the same stage with the same inputs; views went to the stock stage alike.
        for customer in ticked[name].records:
            before, after = ticked[name].state_of(customer), woken[name].state_of(customer)
            assert after is not None and before is not None
            assert (after.stage, after.orders, after.spend, after.walked, after.vip) == (
                before.stage, before.orders, before.spend, before.walked, before.vip
            ), customer  # fmt: skip


def test_the_watermarks_first_move_reaches_every_hour_filed_while_the_clock_waited() -> None:
    """At the start the clock waits to hear from every partition; `Due`s filed meanwhile, hours before the
    watermark's first value, must still wake their buckets then (a backlog read one partition first)."""
    config = dataclasses.replace(CONFIG, partitions=2)
    clock, hours = TimerClock(EventClock(config.lateness_s, config.idle_s, config.partitions)), dict[int, HourTimers]()
    shard = CustomerShard(config)
    due_times = DueTimes(config)
    purchase = Bought("C1", "b1", 1000.0, 20.0, "web", None, "DE", ("S1",))
    dues = [Due(math.ceil(due * 1000), 0) for due in due_times.of(purchase)]
    shard.apply([purchase])
    woken: list[str] = []

    def deliver(items: list[Any]) -> None:
        for hour, filed in clock.apply(items):
            buckets, now, _ = hours.setdefault(hour, HourTimers()).apply(filed)
            woken.extend(buckets)
            for _ in buckets:
                shard.apply([Tick((), (), now)])

    deliver([*dues, Tick(((("pos", 0), 1000.0),))])  # one partition heard: the watermark waits
    assert clock.clock.watermark == -math.inf and not woken
    deliver([Tick(((("pos", 0), 5 * 3600.0),))])  # hours on, still from that one partition
    assert clock.clock.watermark == -math.inf and not woken
    restored = TimerClock.from_bytes(clock.to_bytes())  # a snapshot taken while waiting keeps the earliest hour
    assert restored.first_filed == clock.first_filed == 0
    clock = restored
    deliver([Tick(((("pos", 0), 5 * 3600.0), (("pos", 1), 5 * 3600.0)))])  # the second partition: it moves
    assert woken == ["customers:0"]
    state = shard.state_of("C1")
    assert state is not None and state.walked and state.stage != Stage.PROSPECT
