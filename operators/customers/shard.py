"""A shard of customers: their states, an event-time timer wheel, the event clock, recent event ids.

`CustomerShard.apply` takes one batch's items for the shard (activities and clock ticks) and
returns what changed: customers whose document must be rewritten, trigger candidates (for
the gate), and views to watch for a restock (for the stock stage). Timers are kept in a
wheel of buckets by due millisecond holding customer ids (one-hour buckets for what is days away, filed
again by the millisecond when the watermark comes near); when the watermark passes a bucket, its
customers are re-evaluated (`_evaluate`), which is idempotent: a stale entry (the cart was
bought since) finds nothing due. Everything a customer has open (carts, failed payments,
the next lifecycle change) is in their own state, so a replay after recovery rebuilds the
same timers and fires the same triggers with the same ids.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from events.triggers import TriggerKind
from operators.customers.clock import EventClock
from operators.customers.lifecycle import Stage
from operators.customers.packing import pack, unpack
from operators.customers.population import rfm_keys
from operators.customers.profile import CHANNELS, CustomerConfig, CustomerState
from operators.customers.recent_ids import RecentIds
from operators.customers.records import (
    Bought,
    Candidate,
    Clicked,
    ConsentSeen,
    PaymentSeen,
    PopulationMove,
    Tick,
    Watch,
)

_SHARD_FORMAT = 2
_COARSE_S = 3600
_WEEK_S = 7 * 86_400
_WHEEL_MS = 1000  # wheel keys are milliseconds of event time: a timer fires in the batch its time is passed in
GLOBAL_SCOPE = "global"
_TRANSITION_TRIGGERS = {Stage.AT_RISK: TriggerKind.AT_RISK, Stage.LAPSED: TriggerKind.WIN_BACK}


@dataclass(slots=True)
class ShardOutput:
    """What one batch changed: customers to rewrite (id -> state), candidates, restock watches, refusals."""

    changed: dict[str, CustomerState] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)
    duplicates: int = 0
    late: int = 0
    tick: Tick | None = None  # the batch's ticks in one, for the stages downstream (after what it emitted)
    moves: list[PopulationMove] = field(default_factory=list)
    # Per changed customer, every stage they held since their last document: the one it showed, and each one
    # the walk passed through. A run killed after writing one of those and replayed in other batches may
    # write none of them again, so the segments writer removes the customer from all it may have set.
    visited: dict[str, set[str]] = field(default_factory=dict)


def merge_ticks(a: Tick, b: Tick) -> Tick:
    """One tick saying what both say: the newest event time per partition.

    >>> merge_ticks(Tick(((("pos", 0), 5.0),)), Tick(((("pos", 0), 3.0), (("pos", 1), 4.0)))).newest
    ((('pos', 0), 5.0), (('pos', 1), 4.0))
    """
    newest = dict(a.newest)
    for part, ts in b.newest:
        if ts > newest.get(part, float("-inf")):
            newest[part] = ts
    holds = dict(a.holds)
    holds.update(b.holds)  # a decoding thread's later hold replaces its earlier one
    return Tick(tuple(newest.items()), tuple(holds.items()), max(a.watermark, b.watermark), a.relay or b.relay)


class CustomerShard:
    """The customers of one shard, packed; see the module docstring.

    Examples
    --------
    >>> from operators.customers.records import Bought, Clicked, Tick
    >>> shard = CustomerShard(CustomerConfig(cart_window_s=600.0, lateness_s=0.0))
    >>> out = shard.apply([Clicked("C1", "e1", 1000.0, "cart", "SKU-1", "web", None)])
    >>> out.candidates, sorted(out.changed)
    ([], ['C1'])
    >>> out = shard.apply([Tick(((("clickstream", 0), 1700.0),))])  # the stream's time passes the deadline
    >>> [(c.kind.value, c.due_ts, c.trigger_id) for c in out.candidates]
    [('cart_abandoned', 1600.0, 'cart_abandoned:C1:SKU-1:e1')]
    """

    def __init__(self, config: CustomerConfig) -> None:
        self.config = config
        self.records: dict[str, bytes] = {}
        self.wheel: dict[int, list[str]] = {}
        self._due: list[int] = []  # heap of the wheel's bucket keys
        self.seen = RecentIds(config.dedup_window_s)
        self.clock = EventClock(config.lateness_s, config.idle_s, config.partitions)

    def __len__(self) -> int:
        return len(self.records)

    # --- the batch ---------------------------------------------------------------------------------

    def apply(self, items: Iterable[Any]) -> ShardOutput:
        """Apply one batch in order: activities change their customer, ticks move the clock; then fire timers."""
        out = ShardOutput()
        touched: dict[str, CustomerState] = {}
        visited = out.visited
        seen, clock = self.seen, self.clock
        for item in items:
            kind = type(item)
            if kind is Tick:
                clock.advance(item.newest, item.holds, item.watermark)
                if item.relay:  # the relay key's tick, for the stock and gate shards (a bucket's wake-up is not)
                    out.tick = item if out.tick is None else merge_ticks(out.tick, item)
                continue
            if not seen.add(item.event_id, item.ts, clock.watermark):
                out.duplicates += 1
                continue
            if item.ts < clock.watermark:
                out.late += 1  # still applied: it only can no longer cancel a trigger already out
            customer = item.customer
            state = touched.get(customer)
            if state is None:
                state = touched[customer] = self._load(customer)
                visited[customer] = {state.stage}
            # What the document shows: its creation, purchases, consent. Views, carts and payment results change
            # no document field, so they cost no rewrite (`applied` sets the version). The creation counts once,
            # whichever activity brings it: a count that depends on which came first (a view before a purchase
            # or after) gave a replay that read the topics interleaved otherwise a lower version for the same
            # document, and the fence then kept the killed run's older one (a stage behind).
            if not state.applied:
                state.applied = 1
            if kind is Bought or kind is ConsentSeen:
                state.applied += 1
            if kind is Bought:
                self._bought(state, item, out)
            elif kind is Clicked:
                self._clicked(state, item, out)
            elif kind is PaymentSeen:
                self._paid(state, item)
            elif kind is ConsentSeen and (item.ts >= state.seen or state.consent is None):
                state.consent = item.marketing
            if item.ts > state.seen:
                state.seen = item.ts
        now = clock.watermark
        seen.forget(now)
        records = self.records
        for customer in self._pop_due(now):
            if customer not in touched:
                state = touched[customer] = self._load(customer)
                visited[customer] = {state.stage}
        for customer, state in touched.items():
            self._evaluate(customer, state, now, out)
            self._schedule(customer, state, now)
            self._population(state, out)
            # The document's version counts what it reflects (activities, purchases walked, stage changes):
            # the same input gives the same version however it was batched, so after a crash the replay's
            # documents pass the fence exactly when they are newer than what the killed run wrote.
            version = state.applied + state.walks + state.changes
            if version > state.version:
                state.version = version
                out.changed[customer] = state
            else:
                del visited[customer]
            # Re-inserted, so the key is the very string the wheel just filed (one string per customer, not two).
            records.pop(customer, None)
            records[customer] = pack(state)
        return out

    def state_of(self, customer: str) -> CustomerState | None:
        """The stored state of `customer`, decoded (for tests and tools)."""
        packed = self.records.get(customer)
        return unpack(packed) if packed is not None else None

    def _population(self, state: CustomerState, out: ShardOutput) -> None:
        """Move the customer between the population histograms' buckets when their RFM inputs moved."""
        if not state.orders or not state.freq:
            return
        keys = rfm_keys(state.last, state.freq[-1], state.money[-1], state.decay_ts, self.config.windows_s[-1])
        buckets = (keys.recency, keys.frequency, keys.monetary)
        scope = f"country:{state.country}" if state.country else None
        if buckets == state.buckets and scope == state.bucket_scope:
            return
        out.moves.append(PopulationMove(GLOBAL_SCOPE, state.buckets, buckets, state.decay_ts))
        if scope == state.bucket_scope:
            if scope is not None:
                out.moves.append(PopulationMove(scope, state.buckets, buckets, state.decay_ts))
        else:
            if state.bucket_scope is not None:
                out.moves.append(PopulationMove(state.bucket_scope, state.buckets, None, state.decay_ts))
            if scope is not None:
                out.moves.append(PopulationMove(scope, None, buckets, state.decay_ts))
        state.buckets, state.bucket_scope = buckets, scope

    def _load(self, customer: str) -> CustomerState:
        packed = self.records.get(customer)
        return unpack(packed) if packed is not None else CustomerState()

    # --- activities --------------------------------------------------------------------------------

    def _bought(self, state: CustomerState, item: Bought, out: ShardOutput) -> None:
        config, ts = self.config, item.ts
        if item.country:
            state.country = item.country
        if item.amount < 0:  # a return: the money comes off, the visit does not count as an order
            state.add_spend(config.windows_s, ts, 0, item.amount)
            state.spend = max(0.0, state.spend + item.amount)
            return
        state.ahead.append((ts, item.amount, item.event_id))  # walked when the watermark passes it (`_transitions`)
        if not state.orders or ts < state.first:
            state.first = ts
        if ts > state.last:
            state.last = ts
        state.orders += 1
        state.spend += item.amount
        state.add_spend(config.windows_s, ts, 1, item.amount)
        state.channels[CHANNELS.index(item.channel)] += 1
        if item.store_id is not None:
            state.count_store(item.store_id)
        state.bought.extend((sku, ts) for sku in item.skus)
        state.bought.append(("", ts))  # any purchase at all: what settles a failed payment

    def _clicked(self, state: CustomerState, item: Clicked, out: ShardOutput) -> None:
        if item.country:
            state.country = item.country
        if item.kind == "cart":
            state.carts.append((item.sku, item.ts, item.event_id))
        elif item.kind == "uncart":
            state.uncarts.append((item.sku, item.ts))
        else:  # watched once the watermark passes it: their store is known from what they bought by then
            state.views.append((item.sku, item.ts, item.event_id))

    def _paid(self, state: CustomerState, item: PaymentSeen) -> None:
        if item.ok:
            state.approved.append((item.ref, item.ts))
        elif not any(ref == item.ref for ref, _, _ in state.fails):
            state.fails.append((item.ref, item.ts, item.event_id))
        else:  # the same attempt declined again: its earliest decline sets the deadline
            state.fails = [(ref, min(ts, item.ts), eid) if ref == item.ref else (ref, ts, eid)
                           for ref, ts, eid in state.fails]  # fmt: skip

    # --- timers ------------------------------------------------------------------------------------

    def _evaluate(self, customer: str, state: CustomerState, now: float, out: ShardOutput) -> None:
        """Fire what is due at watermark `now`: carts, failed payments, lifecycle transitions."""
        config = self.config
        if state.carts:
            kept = []
            for sku, ts, event_id in state.carts:
                deadline = ts + config.cart_window_s
                if deadline > now:
                    kept.append((sku, ts, event_id))
                    continue
                settled = any(s == sku and ts <= t <= deadline for s, t in state.bought) or any(
                    s == sku and ts <= t <= deadline for s, t in state.uncarts
                )
                if not settled:
                    out.candidates.append(
                        Candidate(
                            customer, TriggerKind.CART_ABANDONED, deadline, f"{sku}:{event_id}",
                            (f"added to cart, not bought in any channel within {config.cart_window_s / 60:g} min",),
                            (("sku", sku), ("added_at", ts), ("window_s", config.cart_window_s)),
                            (event_id,),
                        )
                    )  # fmt: skip
            state.carts = kept
        if state.fails:
            kept_fails = []
            for ref, ts, event_id in state.fails:
                deadline = ts + config.payment_window_s
                if deadline > now:
                    kept_fails.append((ref, ts, event_id))
                    continue
                recovered = any(r == ref and ts <= t <= deadline for r, t in state.approved) or any(
                    s == "" and ts <= t <= deadline for s, t in state.bought
                )
                if not recovered:
                    out.candidates.append(
                        Candidate(
                            customer, TriggerKind.PAYMENT_FAILED_RECOVERY, deadline, ref,
                            (f"payment failed, no purchase within {config.payment_window_s / 60:g} min",),
                            (("payment_ref", ref), ("failed_at", ts), ("window_s", config.payment_window_s)),
                            (event_id,),
                        )
                    )  # fmt: skip
            state.fails = kept_fails
        if state.views:
            store = state.preferred_store
            out.watches += [Watch(customer, sku, ts, store, eid) for sku, ts, eid in state.views if ts <= now]
            state.views = [view for view in state.views if view[1] > now]
        self._forget(state, now)
        self._transitions(customer, state, now, out)

    def _forget(self, state: CustomerState, now: float) -> None:
        """Drop purchases, removals and approvals no open cart or failed payment can still need.

        A cart or failure yet to arrive is at most `lateness_s` older than the watermark, so
        what is older than that and than every open one is no longer needed.
        """
        horizon = now - self.config.lateness_s
        for _, ts, _ in state.carts:
            horizon = min(horizon, ts)
        for _, ts, _ in state.fails:
            horizon = min(horizon, ts)
        if state.bought and state.bought[0][1] < horizon:
            state.bought = [b for b in state.bought if b[1] >= horizon]
        if state.uncarts:
            state.uncarts = [u for u in state.uncarts if u[1] >= horizon]
        if state.approved:
            state.approved = [a for a in state.approved if a[1] >= horizon]

    def _transitions(self, customer: str, state: CustomerState, now: float, out: ShardOutput) -> None:
        """Walk the lifecycle from where it was last evaluated to the watermark `now`, one change at a time.

        Purchases are taken in event-time order as the watermark passes them (`ahead`), so a
        purchase that arrives before an earlier one still in flight cannot make a quiet spell
        that never was. Entering `at_risk` or `lapsed` (only time does that) is a candidate,
        due at the exact time of the change.
        """
        if now == -math.inf:
            return
        at = state.stage_ts
        if state.ahead:
            due = sorted(p for p in state.ahead if p[0] <= now)
            state.ahead = [p for p in state.ahead if p[0] > now]
            for purchase, amount, event_id in due:
                if purchase > at:
                    self._walk(customer, state, at, purchase, out, before=True)
                    at = purchase
                if state.walked and self.config.lifecycle.is_win_back(state.walked, purchase):
                    state.won_back_at = purchase
                self._vip(customer, state, purchase, amount, event_id, out)
                state.walked = max(state.walked, purchase)
                state.walks += 1
        if now > at:
            self._walk(customer, state, at, now, out, before=False)
            at = now
        rules = self.config.lifecycle
        state.stage = rules.stage_at(first=state.first, last=state.walked, won_back_at=state.won_back_at,
                                     bought=state.walked > 0, now=at).value  # fmt: skip
        state.stage_ts = at

    def _vip(self, customer: str, state: CustomerState, ts: float, amount: float, event_id: str,
             out: ShardOutput) -> None:  # fmt: skip
        """Fold a walked purchase into the spend over the longest window; the first time it reaches the
        threshold is a `vip_reached`, due at that purchase. Purchases are walked in event-time order,
        so the spend is what it was at that moment, whatever arrived first."""
        config, window = self.config, self.config.windows_s[-1]
        if ts >= state.walked:  # `walked`: the purchase the sum is as of, before this one
            state.vip_spend = state.vip_spend * math.exp(-(ts - state.walked) / window) + amount
        else:  # taken after a later one (it was late): it counts, decayed to where the sum stands
            state.vip_spend += amount * math.exp(-(state.walked - ts) / window)
        if not state.vip and state.vip_spend >= config.vip_spend:
            state.vip = True
            out.candidates.append(
                Candidate(
                    customer, TriggerKind.VIP_REACHED, ts, event_id,
                    (f"spend over the last {window / 86_400:g} days reached {config.vip_spend:g}",),
                    (("spend", round(state.vip_spend, 2)), ("threshold", config.vip_spend), ("orders", state.orders)),
                    (event_id,),
                )
            )  # fmt: skip

    def _walk(self, customer: str, state: CustomerState, at: float, until: float, out: ShardOutput, *,
              before: bool) -> None:  # fmt: skip
        """The changes in (`at`, `until`] (`until` excluded when a purchase happens then: `before`)."""
        rules, first, last, won_back_at = self.config.lifecycle, state.first, state.walked, state.won_back_at
        bought = last > 0
        stage = rules.stage_at(first=first, last=last, won_back_at=won_back_at, bought=bought, now=at)
        visited = out.visited[customer]
        visited.add(stage.value)
        while True:
            change = rules.next_change(first=first, last=last, won_back_at=won_back_at, bought=bought, now=at)
            if change > until or (before and change == until):
                return
            after = rules.stage_at(first=first, last=last, won_back_at=won_back_at, bought=bought, now=change)
            if after != stage:
                state.changes += 1
                visited.add(after.value)
            kind = _TRANSITION_TRIGGERS.get(after) if after != stage else None
            if kind is not None:
                out.candidates.append(
                    Candidate(
                        customer, kind, change, f"{after.value}:{round(last * 1000)}",
                        (f"no purchase for {(change - last) / 86_400:g} days: {stage.value} -> {after.value}",),
                        (("from", stage.value), ("to", after.value), ("last_purchase", last),
                         ("orders", state.orders)),
                        (),
                    )
                )  # fmt: skip
            stage, at = after, change

    def _schedule(self, customer: str, state: CustomerState, now: float) -> None:
        config = self.config
        due = config.lifecycle.next_change(first=state.first, last=state.walked, won_back_at=state.won_back_at,
                                           bought=state.walked > 0, now=max(now, state.stage_ts))  # fmt: skip
        for ts, _, _ in state.ahead:
            due = min(due, ts)
        for _, ts, _ in state.views:
            due = min(due, ts)
        for _, ts, _ in state.carts:
            due = min(due, ts + config.cart_window_s)
        for _, ts, _ in state.fails:
            due = min(due, ts + config.payment_window_s)
        if due == math.inf:
            return
        # Far off (a lifecycle change weeks ahead): a week's slot, filed again when a wake-up passes its start
        # (before `due` - 2 h, so after `now`): in a bucket of a few dozen customers, an hour's slot would hold
        # one customer (a list and a key each); a week's holds several. A lifecycle change days ahead: an hour's
        # slot, filed when a wake-up comes within the hour before it, then again by the millisecond.
        gap = due - now
        if gap > _WEEK_S + 2 * _COARSE_S:
            key = math.floor((due - 2 * _COARSE_S) / _WEEK_S) * _WEEK_S * _WHEEL_MS
        elif gap > 2 * _COARSE_S:
            key = (math.floor(due / _COARSE_S) * _COARSE_S - _COARSE_S) * _WHEEL_MS
        else:
            # Near: the due millisecond. One-second slots made a timer wait for the watermark to pass the
            # next whole second: half a second late on average, a second at worst (docs/customers.md, latency).
            key = math.ceil(due * _WHEEL_MS)
        bucket = self.wheel.get(key)
        if bucket is None:
            self.wheel[key] = [customer]
            heapq.heappush(self._due, key)
        elif bucket[-1] != customer:
            bucket.append(customer)

    def _pop_due(self, now: float) -> list[str]:
        due, wheel, customers = self._due, self.wheel, []
        now_key = now * _WHEEL_MS
        while due and due[0] <= now_key:
            customers += wheel.pop(heapq.heappop(due))
        return customers

    # --- snapshots ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The shard as bytes: customers' packed states as they are (not re-encoded), wheel, ids, clock."""
        return msgspec.msgpack.encode(
            (_SHARD_FORMAT, self.records, self.wheel, self.seen.to_state(), self.clock.to_state())
        )

    @classmethod
    def from_bytes(cls, data: bytes, config: CustomerConfig) -> CustomerShard:
        fmt, records, wheel, seen, clock = msgspec.msgpack.decode(data)
        if fmt != _SHARD_FORMAT:
            raise ValueError(f"customer shard format {fmt} is not {_SHARD_FORMAT}")
        shard = cls(config)
        shard.records = records
        canonical = {customer: customer for customer in records}  # the wheel shares the records' id strings
        shard.wheel = {int(k): [canonical.get(c, c) for c in v] for k, v in wheel.items()}
        del canonical
        shard._due = list(shard.wheel)
        heapq.heapify(shard._due)
        shard.seen = RecentIds.from_state(seen)
        shard.clock = EventClock.from_state(clock)
        return shard
