"""Operational anomalies: stores and registers gone quiet, shrink spikes, bursts of dead letters.

Silence cannot be seen in the silent entity's own events (there are none), so
each watcher holds ALL its entities (low-volume state: stores, registers,
locations, topics) and is driven by a clock: `tick(now)` with the event time of
any other traffic. A store whose tills stop while the rest of the chain sells
is noticed, and nothing is noticed when the whole stream merely pauses (the
clock stops with it). Every alert goes through an `AlertBook`: one open alert
per entity, one `resolved` when it clears.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from events.alerts import Alert, Entity, Severity
from operators.fraud.alerts import AlertBook
from operators.fraud.hourly_rate import HourlyRate


@dataclass(slots=True)
class _Pulse:
    entity: Entity
    first_ts: float
    last_ts: float
    sales_by_hour: list[float]  # sales per hour of day since `first_ts` (halved as history ages)
    seen: int
    severity: Severity | None = None  # of the open alert, None when none is open
    store: _Pulse | None = None  # a register's store
    alert_day: int = -1
    alerts_that_day: int = 0
    wake_at: float = math.inf  # the earliest look-again of this entity in the heap (inf: none known)

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        # Pickled as (None, {slot: value}); a pulse pickled before `wake_at` existed keeps the default.
        self.wake_at = math.inf
        for name, value in state[1].items():
            setattr(self, name, value)


_DAY_S = 86_400.0
_HOUR_S = 3_600.0
_RANK = {Severity.WARNING: 1, Severity.ATTENTION: 2, Severity.EMERGENCY: 3}


class SalesPulse:
    """Sales per store and per register against each one's own rate by hour of day; flags improbable silence.

    Each entity learns how many sales it usually makes in each hour of the day. A silence is
    judged by the sales that would have been expected in it: with `expected` sales expected
    and none made (a Poisson chance of e^-expected, 1 in 22,000 with the default 10), the
    entity is silent. A store selling once a day is not silent after an hour, nor overnight
    if it never sells at night; a till selling every few seconds is silent within minutes.
    Severity follows the evidence: a store is `warning` at `expected` missing sales and
    `attention` at three times as many; a register is `warning`; the registers of a silent
    store raise nothing of their own. At most `max_alerts_per_day` alerts per entity per day
    (escalations included). Any sale resolves it. Before a day of history the rate is the
    entity's overall rate so far.

    Parameters
    ----------
    expected
        Sales expected during a silence before it counts.
    store_min_silence_s, register_min_silence_s
        Silences shorter than these never count.
    min_sales
        Sales an entity needs before its silence counts (a baseline first).
    max_alerts_per_day
        Alerts per entity per event-time day at most.
    history_days
        Days of sales per hour kept (older history is halved away).

    Examples
    --------
    >>> pulse = SalesPulse(store_min_silence_s=300, register_min_silence_s=600, min_sales=5)
    >>> for i in range(20):
    ...     _ = pulse.learn_one("S1", "S1-R1", i * 10.0)
    ...     _ = pulse.learn_one("S2", "S2-R1", i * 10.0 + 5)
    >>> for t in range(200, 800, 10):
    ...     _ = pulse.learn_one("S2", "S2-R1", float(t))
    >>> [(a.entity.type, a.entity.id, a.severity.value) for a in pulse.tick(800.0)]
    [('store', 'S1', 'attention')]
    >>> [(a.entity.id, a.reasons[0]) for a in pulse.learn_one("S1", "S1-R1", 810.0)]
    [('S1', 'resolved')]
    """

    def __init__(
        self,
        expected: float = 10.0,
        store_min_silence_s: float = 300.0,
        register_min_silence_s: float = 900.0,
        min_sales: int = 20,
        max_alerts_per_day: int = 3,
        history_days: float = 28.0,
        max_entities: int = 100_000,
    ) -> None:
        self.expected = expected
        self.store_min_silence_s = store_min_silence_s
        self.register_min_silence_s = register_min_silence_s
        self.min_sales = min_sales
        self.max_alerts_per_day = max_alerts_per_day
        self.history_days = history_days
        self.max_entities = max_entities
        self._pulses: dict[tuple[str, str], _Pulse] = {}  # by (entity type, id): no Entity built per sale
        # (time to look again, entity key, the last sale it was pushed for): a heap, stale entries skipped.
        # A sale pushes an entry only if it is due before the entity's earliest one (`_Pulse.wake_at`);
        # that one, found stale when it pops, is pushed again for the entity's last sale. So the heap
        # holds about one entry per entity, not one per sale of the last `*_min_silence_s` (at 1,000
        # sales a second and a 5-minute floor: 600,000 entries, pickled at every snapshot), and
        # pops the live entries at the same times and in the same order as one entry per sale.
        self._due: list[tuple[float, tuple[str, str], float]] = []
        self.book = AlertBook("anomaly", quiet_s=math.inf, max_open=max_entities)

    @property
    def wakeups(self) -> int:
        """Look-again entries held (about one per store and register): pickled at every snapshot."""
        return len(self._due)

    def learn_one(self, store_id: str, register_id: str, ts: float) -> list[Alert]:
        """A sale at `register_id` of `store_id` at event time `ts`; the resolved alerts it brings.

        A resolution is emitted at once rather than at the next tick: the tick runs on the
        event-time clock, which a sale older than the newest one seen does not move, so a
        resumed store could otherwise wait for traffic that never comes.
        """
        resolved: list[Alert] = []
        store = self._beat("store", store_id, ts, None, resolved)
        self._beat("register", register_id, ts, store, resolved)
        return resolved

    def _beat(
        self, entity_type: str, entity_id: str, ts: float, store: _Pulse | None, resolved: list[Alert]
    ) -> _Pulse | None:
        key = (entity_type, entity_id)
        pulse = self._pulses.get(key)
        if pulse is None:
            if len(self._pulses) >= self.max_entities:
                return None
            pulse = self._pulses[key] = _Pulse(Entity(entity_type, entity_id), ts, ts, [0.0] * 24, 1, store=store)
            pulse.sales_by_hour[int(ts // _HOUR_S) % 24] += 1.0
            return pulse
        pulse.sales_by_hour[int(ts // _HOUR_S) % 24] += 1.0
        pulse.seen += 1
        if ts <= pulse.last_ts:
            return pulse  # a late sale says nothing about the silence now
        pulse.last_ts = ts
        if ts - pulse.first_ts > self.history_days * _DAY_S:  # forget half of the history
            pulse.sales_by_hour = [n / 2.0 for n in pulse.sales_by_hour]
            pulse.first_ts += (ts - pulse.first_ts) / 2.0
        floor = self.store_min_silence_s if entity_type == "store" else self.register_min_silence_s
        if ts + floor < pulse.wake_at:
            pulse.wake_at = ts + floor
            heapq.heappush(self._due, (ts + floor, key, ts))
        if pulse.severity is not None:
            pulse.severity = None
            resolved += self.book.clear(pulse.entity, ts, ["sales resumed"])
        return pulse

    def _rate(self, pulse: _Pulse) -> HourlyRate | None:
        """Its sales by hour of an average day; None before a day of history (then the overall rate counts)."""
        span = pulse.last_ts - pulse.first_ts
        if span < _DAY_S:
            return None
        return HourlyRate([n * _DAY_S / span for n in pulse.sales_by_hour])

    def _overall_per_s(self, pulse: _Pulse) -> float:
        span = pulse.last_ts - pulse.first_ts
        return (pulse.seen - 1) / span if span > 0 else 0.0

    def expected_sales(self, pulse: _Pulse, start: float, end: float, rate: HourlyRate | None = None) -> float:
        """Sales `pulse` would usually make in (`start`, `end`]: its rate by hour of day (overall before a day)."""
        rate = rate or self._rate(pulse)
        if rate is None:
            return self._overall_per_s(pulse) * (end - start)
        return rate.expected(start, end)

    def _deadline(self, pulse: _Pulse, expected: float, rate: HourlyRate | None = None) -> float:
        """When the silence since the last sale reaches `expected` missing sales (inf: not within 60 days)."""
        rate = rate or self._rate(pulse)
        if rate is None:
            per_s = self._overall_per_s(pulse)
            return pulse.last_ts + expected / per_s if per_s > 0 and expected <= per_s * 60 * _DAY_S else math.inf
        return rate.reaching(pulse.last_ts, expected)

    def tick(self, now: float) -> list[Alert]:
        """Alerts at event time `now`: the silences that became improbable (or more so)."""
        alerts: list[Alert] = []
        due = self._due
        found: list[_Pulse] = []
        while due and due[0][0] <= now:
            at, key, pushed_for = heapq.heappop(due)
            pulse = self._pulses.get(key)
            if pulse is None:
                continue
            if at == pulse.wake_at:
                pulse.wake_at = math.inf
            if pulse.last_ts != pushed_for:
                # A later sale came: look again `floor` after it, unless an entry still in the heap does.
                again = pulse.last_ts + (self.store_min_silence_s if key[0] == "store" else self.register_min_silence_s)
                if pulse.wake_at == math.inf and again > at:
                    pulse.wake_at = again
                    heapq.heappush(due, (again, key, pulse.last_ts))
                continue
            found.append(pulse)
        # Stores first: a register of a silent store is not news of its own (one alert per incident).
        found.sort(key=lambda p: p.store is not None)
        for pulse in found:
            if pulse.seen < self.min_sales or (pulse.store is not None and pulse.store.severity is not None):
                continue
            is_store = pulse.store is None
            rate = self._rate(pulse)
            missing = self.expected_sales(pulse, pulse.last_ts, now, rate)
            severity = None
            if missing >= 3 * self.expected and is_store:
                severity = Severity.ATTENTION
            elif missing >= self.expected:
                severity = Severity.WARNING
            if severity is not None and (pulse.severity is None or _RANK[severity] > _RANK[pulse.severity]):
                day = int(now // _DAY_S)
                if day != pulse.alert_day:
                    pulse.alert_day, pulse.alerts_that_day = day, 0
                if pulse.alerts_that_day < self.max_alerts_per_day:
                    pulse.alerts_that_day += 1
                    pulse.severity = severity
                    reason = "store sales stopped" if is_store else "register silent"
                    detail = f"{missing:.0f} sales expected in the silence"
                    alerts += self.book.observe(pulse.entity, now, severity, [reason, detail])
            # Look again when the silence would next change the verdict (an alert, or its escalation).
            if pulse.severity is None or (is_store and pulse.severity is Severity.WARNING):
                target = self.expected if pulse.severity is None else 3 * self.expected
                again = max(now + 60.0, self._deadline(pulse, target, rate))
                pulse.wake_at = min(pulse.wake_at, again)
                heapq.heappush(due, (again, (pulse.entity.type, pulse.entity.id), pulse.last_ts))
        return alerts


class ShrinkWatch:
    """Shrink adjustments per location over a sliding window, against the other locations' norm.

    A spike of shrink write-offs at one location (theft, a mis-scanning
    handheld) stands out against the chain: the threshold is the mean count of
    the other locations plus `z` Poisson standard deviations, plus `min_excess`.
    Comparing with peers works from the first hour, where a location's own
    baseline would need days.

    Parameters
    ----------
    window_s
        Event-time seconds of history that count.
    z
        Standard deviations above the peer mean.
    min_excess
        Adjustments above the peer mean needed at least.
    max_per_location
        Adjustments kept per location (bounds a runaway location).
    max_locations
        Locations watched at most; adjustments at further new ones are not watched (bounded state
        whatever ids arrive).

    Examples
    --------
    >>> watch = ShrinkWatch(window_s=1800, min_excess=5)
    >>> for loc in ("S1", "S2", "S3"):
    ...     _ = watch.learn_one(loc, 1, 0.0)
    >>> alerts = []
    >>> for i in range(10):
    ...     alerts += watch.learn_one("S2", 2, 60.0 + i)
    >>> [(a.entity.id, a.severity.value) for a in alerts]
    [('S2', 'attention')]
    >>> [a.reasons[0] for a in watch.tick(4000.0)]
    ['resolved']
    """

    def __init__(
        self,
        window_s: float = 1800.0,
        z: float = 4.0,
        min_excess: float = 10.0,
        max_per_location: int = 10_000,
        max_locations: int = 10_000,
    ) -> None:
        self.window_s = window_s
        self.z = z
        self.min_excess = min_excess
        self.max_per_location = max_per_location
        self.max_locations = max_locations
        self._events: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}
        self._newest = -math.inf
        self.book = AlertBook("anomaly", quiet_s=window_s)

    def learn_one(self, location_id: str, units: int, ts: float) -> list[Alert]:
        """A shrink adjustment of `units` (positive) at `location_id`; alerts it raises."""
        if location_id not in self._events and len(self._events) >= self.max_locations:
            return []
        kept = self._events.setdefault(location_id, deque(maxlen=self.max_per_location))
        if len(kept) == kept.maxlen:
            self._totals[location_id] -= 1
        kept.append((ts, abs(units)))
        self._totals[location_id] = self._totals.get(location_id, 0) + 1
        self._age(ts)
        count = self._totals[location_id]
        others = [n for loc, n in self._totals.items() if loc != location_id]
        norm = sum(others) / len(others) if others else 0.0
        if count > norm + max(self.min_excess, self.z * math.sqrt(max(norm, 1.0))):
            entity = Entity("location", location_id)
            reason = "shrink adjustments far above the other locations"
            return self.book.observe(entity, ts, Severity.ATTENTION, [reason], float(count))
        return []

    def _age(self, ts: float) -> None:
        self._newest = max(self._newest, ts)
        horizon = self._newest - self.window_s
        for location_id, kept in self._events.items():
            while kept and kept[0][0] <= horizon:
                kept.popleft()
                self._totals[location_id] -= 1

    def tick(self, now: float) -> list[Alert]:
        """Resolved alerts of locations back to normal for a whole window by event time `now`."""
        self._age(now)
        return self.book.sweep(now)


class DeadLetterRate:
    """Dead letters per source topic per minute, against the topic's own EWMA baseline.

    A burst of malformed events from one topic means a producer shipped a bad
    release or a schema changed under it; a steady trickle is normal life. A
    minute counts as a burst when it holds at least `min_burst` dead letters and
    `factor` times the baseline. The baseline learns only from minutes that were
    not bursts, so a long outage does not become the new normal.

    Parameters
    ----------
    factor
        Burst threshold as a multiple of the baseline per minute.
    min_burst
        Dead letters in one minute needed at least.
    alpha
        EWMA weight of a finished minute.

    Examples
    --------
    >>> rate = DeadLetterRate(min_burst=20)
    >>> for minute in range(10):
    ...     for i in range(2):
    ...         _ = rate.learn_one("omni.pos", minute * 60.0 + i)
    >>> alerts = [a for i in range(30) for a in rate.learn_one("omni.pos", 600.0 + i)]
    >>> [(a.entity.type, a.entity.id, a.severity.value) for a in alerts]
    [('topic', 'omni.pos', 'attention')]
    >>> [a.reasons[0] for a in rate.tick(800.0)]
    ['resolved']
    """

    def __init__(self, factor: float = 5.0, min_burst: int = 50, alpha: float = 0.1) -> None:
        self.factor = factor
        self.min_burst = min_burst
        self.alpha = alpha
        self._minute: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self._baseline: dict[str, float] = {}
        self.book = AlertBook("anomaly", quiet_s=math.inf)

    def learn_one(self, source_topic: str, ts: float) -> list[Alert]:
        """A dead letter from `source_topic` at `ts`; alerts it raises."""
        minute = int(ts // 60.0)
        alerts = self._roll(source_topic, minute)
        self._count[source_topic] = self._count.get(source_topic, 0) + 1
        count = self._count[source_topic]
        if count >= self._threshold(source_topic):
            entity = Entity("topic", source_topic)
            alerts += self.book.observe(entity, ts, Severity.ATTENTION, ["burst of malformed events"], float(count))
        return alerts

    def _threshold(self, source_topic: str) -> float:
        return max(float(self.min_burst), self.factor * self._baseline.get(source_topic, 0.0))

    def _roll(self, source_topic: str, minute: int) -> list[Alert]:
        current = self._minute.get(source_topic)
        if current is None:
            self._minute[source_topic] = minute
            self._count[source_topic] = 0
            return []
        if minute <= current:
            return []  # late dead letters count in the open minute
        count = self._count[source_topic]
        entity = Entity("topic", source_topic)
        alerts: list[Alert] = []
        if self.book.is_open(entity):
            calm_minute = current if count < self._threshold(source_topic) else current + 1
            if calm_minute < minute:  # a closed minute (maybe an empty one skipped) was below the threshold
                alerts = self.book.clear(entity, (calm_minute + 1) * 60.0, ["dead letters back to normal"])
        else:
            baseline = self._baseline.get(source_topic)
            # Minutes skipped without dead letters count as zeros.
            for observed in [count] + [0] * min(minute - current - 1, 60):
                baseline = observed if baseline is None else baseline + self.alpha * (observed - baseline)
            self._baseline[source_topic] = float(baseline or 0.0)
        self._minute[source_topic] = minute
        self._count[source_topic] = 0
        return alerts

    def tick(self, now: float) -> list[Alert]:
        """Close minutes up to event time `now` for every topic; resolved alerts of bursts that ended."""
        minute = int(now // 60.0)
        return [alert for topic in list(self._minute) for alert in self._roll(topic, minute)]
