"""The customers flow's steps: the decoder and the Bytewax logic of each keyed stage.

`flows.customers` wires them. Each keyed step holds shards (`operators.customers`): the
clock a `TimerClock`, each due hour a `HourTimers`, each customers bucket a `CustomerShard`,
the stock stage a `StockWatches`, the gate a `TriggerGate`; items travel between them as
`ShardBatch`es naming a `Stage`. Every decoded batch sends the clock a `Tick` (the batch's
newest event time per partition) after the `Due`s of its activities; the hour keys wake the
buckets whose `Due`s the watermark passed (`operators.customers.timers`), so timers fire by
event time even for customers who send nothing more, and a snapshot writes only the buckets
touched. The customers stage's relay key passes the watermark on to the gate shards after the
candidates the woken buckets sent them, so the gate's clock never passes a candidate still on its
way; the stock shards, whose clock only says when to forget, hear it once per sixteenth of the watch window.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
import time
import zlib
from collections import Counter
from enum import StrEnum
from typing import Any, Literal

import msgspec
import orjson
from bytewax.operators import StatefulBatchLogic

from events.availability import AVAILABILITY_DECODER
from events.dead_letter import DeadLetter
from events.models import (
    AddToCart,
    Consent,
    Event,
    PaymentResult,
    ProductView,
    Purchase,
    RemoveFromCart,
    Return,
    Sale,
)
from events.timestamps import rfc3339_ms
from events.topics import Topic
from events.triggers import Trigger
from flows.dead_letters import owns_dead_letters
from flows.decoding import BatchDecoder, ahead_of_clock
from flows.kafka_source import KafkaRecord, unread_partitions
from flows.keyed import RouterPerThread
from flows.metrics import CUSTOMER_TRIGGERS, DUPLICATES, LATE_EVENTS, SKIPPED, STATE_ENTITIES, StateEntities
from omnistream.settings import Settings
from operators.customers.clock import EventClock
from operators.customers.doc import customer_doc, segments_of
from operators.customers.gate import TriggerGate
from operators.customers.lifecycle import DAY_S, LifecycleRules
from operators.customers.population import Populations
from operators.customers.profile import CustomerConfig
from operators.customers.records import (
    Bought,
    Candidate,
    Clicked,
    ConsentSeen,
    Due,
    Flip,
    PaymentSeen,
    PopulationMove,
    Tick,
)
from operators.customers.shard import CustomerShard
from operators.customers.timers import DueTimes, HourTimers, TimerClock
from operators.customers.watches import StockWatches
from operators.keyed_shards import ShardBatch, ShardRouter
from state import keys
from state.customer_writer import CustomerDoc
from state.doc_writer import FencedDoc

FLOW = "customers"
CUSTOMER_TOPICS = (Topic.POS, Topic.CLICKSTREAM, Topic.CUSTOMERS, Topic.AVAILABILITY)
"""The topics the flow reads (`flows.customers.INPUT_TOPICS`); their partitions drive the event clock."""
_RETAIN = StatefulBatchLogic.RETAIN
_ENTITIES = StateEntities(FLOW)


class Stage(StrEnum):
    """The keyed stages of the flow; a stage's value is the prefix of its shard keys (`customers:3`)."""

    CLOCK = "clock"
    TIMERS = "timers"
    CUSTOMERS = "customers"
    STOCK = "stock"
    GATE = "gate"
    POPULATION = "population"


Routed = ShardBatch[Stage, Any]


def config_of(settings: Settings) -> CustomerConfig:
    """The pure rules of `settings.customers`."""
    s = settings.customers
    return CustomerConfig(
        lifecycle=LifecycleRules(s.new_days * DAY_S, s.at_risk_days * DAY_S, s.lapsed_days * DAY_S,
                                 s.won_back_days * DAY_S),
        windows_s=s.windows_s,
        cart_window_s=s.cart_window_s,
        payment_window_s=s.payment_window_s,
        vip_spend=s.vip_spend,
        dedup_window_s=settings.dedup_window_s,
        lateness_s=s.lateness_s,
        idle_s=s.idle_partition_s,
        watch_window_s=s.watch_window_s,
        cooldown_s=s.cooldown_s,
        partitions=settings.topic.partitions * len(CUSTOMER_TOPICS),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- decode


class CustomerBatch:
    """One batch of decoded records as the customers flow routes them (a `flows.decoding.DecodedBatch`).

    Loyalty sales and returns, identified shoppers' views, carts, orders and payment
    results, and consent changes become activities for their customer's bucket (consent
    also for the gate's shard), and the times they may make the customer due go to the
    clock (`Due`, `operators.customers.timers`); availability flips go to their SKU's stock
    shard. An event dated more than `max_future_s` ahead of the wall clock is refused (a
    producer's clock is wrong; it would drag every timer forward), as a dead letter of this flow.
    """

    __slots__ = ("buckets", "due_times", "filed", "letters", "max_ts", "newest", "pacer", "router")

    def __init__(self, router: ShardRouter[Stage, Any], max_ts: float, pacer: TickPacer, due_times: DueTimes) -> None:
        self.router = router
        self.buckets = router.stage_shards[Stage.CUSTOMERS]
        self.max_ts = max_ts
        self.pacer = pacer
        self.due_times = due_times
        self.filed: set[tuple[int, int]] = set()
        self.newest: dict[tuple[str, int], float] = {}
        self.letters: list[DeadLetter] = []

    def _seen(self, topic: Topic, record: KafkaRecord, ts: float) -> bool:
        if ts > self.max_ts:
            # Dead-lettered once, by the flow that owns the topic's dead letters (the inventory flow refuses
            # pos and clickstream events ahead of its own bound, `OMNISTREAM_MAX_FUTURE_S`).
            if owns_dead_letters(FLOW, topic):
                self.letters.append(ahead_of_clock(record, ts))
            else:
                SKIPPED.labels(FLOW, topic.value).inc()
            return False
        part = (record.topic, record.partition)
        if ts > self.newest.get(part, float("-inf")):
            self.newest[part] = ts
        return True

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        ts = event.ts.timestamp()
        if not self._seen(topic, record, ts):
            return
        item = _activity(event, ts)
        if item is None:
            return
        router = self.router
        router.add(Stage.CUSTOMERS, item.customer, item)
        if type(item) is ConsentSeen:
            router.add(Stage.GATE, item.customer, item)
            return
        times = self.due_times.of(item)
        if times:
            # The bucket `router.add` chose (`ShardRouter`: crc32 of the id modulo the buckets).
            bucket, filed = zlib.crc32(item.customer.encode()) % self.buckets, self.filed
            for due in times:
                entry = (math.ceil(due * 1000), bucket)  # the bucket files its own timer by the same millisecond
                if entry not in filed:
                    filed.add(entry)
                    router.add_to_single(Stage.CLOCK, Due(*entry))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        """An `availability` record: a flip for its SKU's stock shard, or a dead letter if malformed.

        `latest_s` is unbounded here (this flow opts out of `refuse_future`): `_seen` applies the
        flow's own bound, `CustomersSettings.max_future_s`, to these records as to its events.
        """
        try:
            change = AVAILABILITY_DECODER.decode(record.value or b"")
        except msgspec.DecodeError as ex:
            self.letters.append(DeadLetter.of(record.topic, record.partition, record.offset, str(ex), record.value))
            return 0
        if not self._seen(topic, record, change.ts):
            return 0
        flip = Flip(change.sku, change.location_id, change.ts, change.sellable, change.version)
        self.router.add(Stage.STOCK, change.sku, flip)
        return 1

    def output(self) -> list[DeadLetter | Routed]:
        out: list[DeadLetter | Routed] = [*self.letters]
        tick = self.pacer.tick(self.newest, unread_partitions(unknown=False))
        if tick is not None:  # to the clock, after this batch's `Due`s: the clock files them before it moves
            self.router.add_to_single(Stage.CLOCK, tick)
        out.extend(self.router.drain())
        return out


TICK_STEP_S = 0.02
"""Event time a partition must advance before a tick reports it (`TickPacer`)."""


class TickPacer:
    """Which batches tick the clock: one that moves some partition `step_s` past what the last tick said.

    A tick that moves the watermark goes on to the hours it passes, to the relay and from there to every
    gate shard: with `shards` 8, ~12 routed items per tick (it was ~200 when every tick went to every
    customers shard, ~80 while every stock shard passed it to every gate shard). Live, a batch holds a few events (a few
    milliseconds of event time), so a tick per batch was most of the flow's work at 2,000 events/s and
    it fell seconds behind. Held-back times go out with the next tick (ticks say the newest time per
    partition, so a later one covers an earlier one); a partition that stops is at most `step_s` short.
    A partition's first time always goes out. One pacer per decoding thread, like the routers.

    Each tick also carries the thread's hold (`operators.customers.clock`): the oldest newest time
    among the partitions the source still has messages to read on (`unread`; -inf for one not read
    from yet). A hold that moves by `step_s`, or goes (everything read), makes a tick due too, so a
    backlog's last batch releases the clock.

    >>> pacer = TickPacer(step_s=0.02, origin="w0")
    >>> pacer.tick({("pos", 0): 10.0}).newest, pacer.tick({("pos", 0): 10.005}), pacer.tick({("pos", 1): 9.0}).newest
    (((('pos', 0), 10.0),), None, ((('pos', 0), 10.005), (('pos', 1), 9.0)))
    >>> pacer.tick({("pos", 0): 10.01}, unread={("pos", 1), ("pos", 2)}).holds  # pos 2 not read from yet
    (('w0', -inf),)
    >>> pacer.tick({}, unread=set()).holds  # all read to the end: the hold goes
    (('w0', inf),)
    """

    __slots__ = ("_hold", "_newest", "_pending", "_sent", "origin", "step_s")

    def __init__(self, step_s: float = TICK_STEP_S, origin: str = "") -> None:
        self.step_s = step_s
        self.origin = origin or f"{os.getpid()}/{threading.get_ident()}"
        self._pending: dict[tuple[str, int], float] = {}
        self._sent: dict[tuple[str, int], float] = {}
        self._newest: dict[tuple[str, int], float] = {}  # every partition's newest time this thread has read
        self._hold = math.inf

    def tick(self, newest: dict[tuple[str, int], float], unread: set[tuple[str, int]] | None = None) -> Tick | None:
        """The tick to send after a batch whose newest time per partition is `newest`, or None (held back).

        `unread`: the partitions with messages left to read (`flows.kafka_source.unread_partitions`;
        None without Kafka partitions, as in the wiring tests: no hold).
        """
        pending, sent, seen = self._pending, self._sent, self._newest
        due = False
        for part, ts in newest.items():
            if ts > pending.get(part, float("-inf")):
                pending[part] = ts
                if ts > seen.get(part, float("-inf")):
                    seen[part] = ts
                if ts - sent.get(part, float("-inf")) >= self.step_s:
                    due = True
        hold = math.inf if not unread else min(seen.get(part, -math.inf) for part in unread)
        if hold != self._hold and (hold == math.inf or abs(hold - self._hold) >= self.step_s):
            due = True
        if not due:
            return None
        sent.update(pending)
        self._hold = hold
        tick = Tick(tuple(pending.items()), ((self.origin, hold),) if unread is not None else ())
        pending.clear()
        return tick


def _activity(event: Event, ts: float) -> Bought | Clicked | PaymentSeen | ConsentSeen | None:
    """The activity a decoded event is for its customer, or None (anonymous, or nothing to learn)."""
    kind = type(event)
    if kind is Sale or kind is Return:
        till: Sale | Return = event  # type: ignore[assignment]
        if not till.customer_id:
            return None
        amount = till.total if kind is Sale else -till.total
        skus = tuple(dict.fromkeys(line.sku for line in till.items))
        return Bought(till.customer_id, till.event_id, ts, amount, "store", till.store_id, None, skus)
    if kind is Consent:
        consent: Consent = event  # type: ignore[assignment]
        return ConsentSeen(consent.customer_id, consent.event_id, ts, consent.marketing)
    user_id = getattr(event, "user_id", None)
    if not user_id:
        return None
    if kind is Purchase:
        order: Purchase = event  # type: ignore[assignment]
        skus = tuple(dict.fromkeys(line.sku for line in order.items))
        country = order.shipping_country or order.ip_country
        return Bought(user_id, order.event_id, ts, order.total, order.channel, None, country, skus)
    if kind is ProductView or kind is AddToCart or kind is RemoveFromCart:
        click: ProductView | AddToCart | RemoveFromCart = event  # type: ignore[assignment]
        action: Literal["view", "cart", "uncart"] = (
            "view" if kind is ProductView else "cart" if kind is AddToCart else "uncart"
        )
        return Clicked(user_id, click.event_id, ts, action, click.sku, click.channel, click.ip_country)
    if kind is PaymentResult:
        paid: PaymentResult = event  # type: ignore[assignment]
        return PaymentSeen(user_id, paid.event_id, ts, paid.payment_ref, paid.status == "approved", paid.amount)
    return None


class Decoder(BatchDecoder[DeadLetter | Routed]):
    """Raw Kafka messages to routed activities, flips and ticks; never raises.

    `BatchDecoder` with a `CustomerBatch` per batch and `availability` read raw. No raw-byte
    pre-filter: every event, even one of no use here (a page view), moves its partition's
    time, which the timers wait on. Malformed `pos` and `clickstream` events are skipped and
    counted (the inventory flow dead-letters them, `flows.dead_letters`).
    """

    def __init__(
        self, source_topics: dict[str, Topic], shards: int, max_future_s: float, config: CustomerConfig, buckets: int
    ) -> None:
        super().__init__(FLOW, source_topics, self._new_batch, raw_topics={Topic.AVAILABILITY})
        self.ahead_s = max_future_s  # its own refusal (`CustomerBatch`), which covers its raw records too
        self.due_times = DueTimes(config)
        self._routers: RouterPerThread[Stage, Any] = RouterPerThread(shards, {Stage.CUSTOMERS: buckets})
        self._pacers = threading.local()

    def refuse_future(self, max_future_s: float) -> None:
        """Refused in `CustomerBatch` instead, by this flow's own bound (`ahead_s`): its raw records too."""

    def _new_batch(self) -> CustomerBatch:
        pacer: TickPacer | None = getattr(self._pacers, "pacer", None)
        if pacer is None:
            pacer = self._pacers.pacer = TickPacer()
        # The one wall-clock read of the flow: the refusal of events from the future, at the edge.
        return CustomerBatch(self._routers.get(), time.time() + self.ahead_s, pacer, self.due_times)


# --------------------------------------------------------------------------------------------- stages


def _ticks(tick: Tick, stages: tuple[Stage, ...], shards: int) -> list[Routed]:
    """`tick` to every shard of `stages`."""
    return [ShardBatch(stage, f"{stage.value}:{i}", [tick]) for stage in stages for i in range(shards)]


class _Step(StatefulBatchLogic[list[Any], Any, bytes]):
    router: ShardRouter[Stage, Any]

    @staticmethod
    def _items(groups: list[list[Any]]) -> list[Any]:
        return groups[0] if len(groups) == 1 else [item for group in groups for item in group]


class ClockLogic:
    """Builds the clock step (one key): the flow's event clock; files `Due`s by hour and tells the hours it passes."""

    def __init__(self, settings: Settings) -> None:
        s = settings.customers
        self.clock_args = (s.lateness_s, s.idle_partition_s, settings.topic.partitions * len(CUSTOMER_TOPICS))

    def __call__(self, resume: bytes | None) -> _ClockStep:
        return _ClockStep(TimerClock.from_bytes(resume) if resume else TimerClock(EventClock(*self.clock_args)))


class _ClockStep(_Step):
    def __init__(self, clock: TimerClock) -> None:
        self.clock = clock

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        timers = Stage.TIMERS.value
        filed = self.clock.apply(self._items(groups))
        return [ShardBatch(Stage.TIMERS, f"{timers}:{hour}", items) for hour, items in filed], _RETAIN

    def snapshot(self) -> bytes:
        return self.clock.to_bytes()


class TimerLogic:
    """Builds the timers step (by due hour): wakes the customer buckets whose `Due` the watermark passed."""

    def __call__(self, resume: bytes | None) -> _TimerStep:
        return _TimerStep(HourTimers.from_bytes(resume) if resume else HourTimers())


class _TimerStep(_Step):
    def __init__(self, timers: HourTimers) -> None:
        self.timers = timers

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        woken, now, relay = self.timers.apply(self._items(groups))
        out: list[Routed] = []
        if woken:
            wake = Tick((), (), now)
            out = [ShardBatch(Stage.CUSTOMERS, bucket, [wake]) for bucket in woken]
        if relay is not None:  # after the wake-ups: through the customers stage to the stock and gate shards
            out.append(ShardBatch(Stage.CUSTOMERS, Stage.CUSTOMERS.value, [relay]))
        # An hour with nothing left to wake holds nothing: the key goes (a later `Due` makes it again).
        return out, len(self.timers) == 0

    def snapshot(self) -> bytes:
        return self.timers.to_bytes()


class CustomerLogic:
    """Builds the customers step (by bucket): profiles, RFM inputs, lifecycle, timers; documents out, watches and
    candidates on. Its key `customers` (no bucket number) holds nobody: the relay of the clock to the stock and
    gate shards (`operators.customers.timers`)."""

    def __init__(self, settings: Settings) -> None:
        self.config = config_of(settings)
        self.shards = settings.customers.shards
        self.routers: RouterPerThread[Stage, Any] = RouterPerThread(self.shards)
        self.held = 0  # customers held by this process's buckets, as of their last snapshots
        self.stock_tick_s = settings.customers.watch_window_s / 16

    def __call__(self, resume: bytes | None) -> _CustomerStep:
        shard = CustomerShard.from_bytes(resume, self.config) if resume else CustomerShard(self.config)
        return _CustomerStep(shard, self)

    def report(self, before: int, now: int) -> None:
        """A bucket held `before` customers at its last snapshot and `now` at this one (one gauge per process:
        summing thousands of buckets at each snapshot would cost their number squared per epoch)."""
        self.held += now - before
        STATE_ENTITIES.labels(FLOW, "customers").set(self.held)


class _CustomerStep(_Step):
    def __init__(self, shard: CustomerShard, builder: CustomerLogic) -> None:
        self.shard = shard
        self.builder = builder
        self.reported = 0
        self.stock_told = -math.inf  # the relay's last tick to the stock shards (not kept: a restart tells them)

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Any], bool]:
        shard, builder = self.shard, self.builder
        router, config = builder.routers.get(), builder.config
        result = shard.apply(self._items(groups))
        if result.duplicates:
            DUPLICATES.labels(FLOW).inc(result.duplicates)
        if result.late:
            LATE_EVENTS.labels(FLOW).inc(result.late)
        now = shard.clock.watermark
        out: list[Any] = []
        visited = result.visited
        for customer, state in result.changed.items():
            doc = customer_doc(customer, state, config, now)
            as_of = state.seen
            segments = segments_of(state)
            left = frozenset(visited[customer]) - segments
            out.append(CustomerDoc(customer, state.version, orjson.dumps(doc), segments, as_of or None, left))
        for candidate in result.candidates:
            router.add(Stage.GATE, candidate.customer, candidate)
        for watch in result.watches:
            router.add(Stage.STOCK, watch.sku, watch)
        for move in result.moves:
            router.add(Stage.POPULATION, move.scope, move)
        out.extend(router.drain())
        tick = result.tick
        if tick is not None:  # the relay: after what the woken buckets sent them, so no clock runs ahead
            stages: tuple[Stage, ...] = (Stage.GATE,)
            # The stock shards' clock only says when to forget old flips and watches (`StockWatches`, lazily,
            # every eighth of the watch window): they hear it once per `stock_tick_s`, not every move, so an
            # epoch does not snapshot each of them whole for nothing.
            if tick.watermark >= self.stock_told + builder.stock_tick_s:
                self.stock_told = tick.watermark
                stages = (Stage.STOCK, Stage.GATE)
            out.extend(_ticks(tick, stages, builder.shards))
        return out, _RETAIN

    def snapshot(self) -> bytes:
        held = len(self.shard)
        self.builder.report(self.reported, held)
        self.reported = held
        return self.shard.to_bytes()


class StockLogic:
    """Builds the stock step: availability history per SKU and back-in-stock watches; candidates on to the gate."""

    def __init__(self, settings: Settings) -> None:
        self.window_s = settings.customers.watch_window_s
        self.shards = settings.customers.shards
        s = settings.customers
        self.clock_args = (s.lateness_s, s.idle_partition_s, settings.topic.partitions * len(CUSTOMER_TOPICS))

    def __call__(self, resume: bytes | None) -> _StockStep:
        watches = pickle.loads(resume) if resume else StockWatches(self.window_s, EventClock(*self.clock_args))
        return _StockStep(watches, self.shards)


class _StockStep(_Step):
    def __init__(self, watches: StockWatches, shards: int) -> None:
        self.watches = watches
        self.router = ShardRouter(shards)

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Any], bool]:
        # Candidates only: the gate hears the watermark from the relay itself, and takes the newest it is told,
        # so a tick passed on from here (it was: every stock shard to every gate shard, 64 items a watermark
        # move) never moved it; a candidate that reaches it already due is released on arrival.
        for candidate in self.watches.apply(self._items(groups)):
            self.router.add(Stage.GATE, candidate.customer, candidate)
        return list(self.router.drain()), _RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("stock_watches", self.watches, len(self.watches.skus))
        return pickle.dumps(self.watches, protocol=pickle.HIGHEST_PROTOCOL)


class GateLogic:
    """Builds the gate step: consent, cooldown and one release per cause; triggers out."""

    def __init__(self, settings: Settings) -> None:
        s = settings.customers
        partitions = settings.topic.partitions * len(CUSTOMER_TOPICS)
        self.args = (s.cooldown_s, s.lateness_s, s.idle_partition_s, s.consent_required, partitions)

    def __call__(self, resume: bytes | None) -> _GateStep:
        return _GateStep(pickle.loads(resume) if resume else TriggerGate(*self.args))


class _GateStep(_Step):
    def __init__(self, gate: TriggerGate) -> None:
        self.gate = gate

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Trigger], bool]:
        gate = self.gate
        before = Counter(gate.suppressed)
        released = gate.apply(self._items(groups))
        sent: Counter[str] = Counter(c.kind.value for c in released)
        for kind, n in sent.items():
            CUSTOMER_TRIGGERS.labels(FLOW, kind, "sent").inc(n)
        for outcome, n in (gate.suppressed - before).items():
            CUSTOMER_TRIGGERS.labels(FLOW, "any", outcome).inc(n)
        return [trigger_of(candidate) for candidate in released], _RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.gate, protocol=pickle.HIGHEST_PROTOCOL)


class PopulationLogic:
    """Builds the population step (by scope shard): RFM histograms per scope, written as documents."""

    def __call__(self, resume: bytes | None) -> _PopulationStep:
        return _PopulationStep(pickle.loads(resume) if resume else Populations())


class _PopulationStep(_Step):
    def __init__(self, populations: Populations) -> None:
        self.populations = populations

    def on_batch(self, groups: list[list[PopulationMove]]) -> tuple[list[FencedDoc], bool]:
        pops = self.populations
        changed = pops.apply([(m.scope, m.old, m.new, m.as_of) for m in self._items(groups)])
        out = []
        for scope in changed:
            as_of = pops.as_of[scope]
            # Versioned by event time: a replay reaches the same times, and the newest histogram wins.
            doc = {"scope": scope, **pops.scopes[scope].to_doc(), "as_of": rfc3339_ms(as_of)}
            out.append(FencedDoc(keys.customer_population(scope), round(as_of * 1000), orjson.dumps(doc), as_of=as_of))
        return out, _RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.populations, protocol=pickle.HIGHEST_PROTOCOL)


def trigger_of(candidate: Candidate) -> Trigger:
    """The published record of a released candidate."""
    due_at = rfc3339_ms(candidate.due_ts)
    return Trigger(
        trigger_id=candidate.trigger_id,
        kind=candidate.kind,
        customer_id=candidate.customer,
        due_at=due_at,
        reasons=list(candidate.reasons),
        facts=dict(candidate.facts),
        source_event_ids=list(candidate.source_event_ids),
        ts=due_at,
    )
