"""The last step before a trigger goes out: consent, per-customer cooldown, one release per cause.

Candidates wait here until the event clock's watermark passes their due time, so a consent
change or anything else that arrived a little late (within the clock's lateness) is still
honoured; then they go out in (due time, id) order, which makes the cooldown's choice the
same in every run. A customer whose consent at the due time says no gets nothing; one who
had a trigger of the same kind less than `cooldown_s` before (or after, in a replay's order)
gets nothing more. A candidate repeated by a replay has the same id and due time, so the
cooldown drops it too: the gate releases each cause once.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Iterable
from typing import Any

from operators.customers.clock import EventClock
from operators.customers.records import Candidate, ConsentSeen, Tick


class TriggerGate:
    """Pending candidates, consent histories and the last release per (customer, kind) of one shard.

    Examples
    --------
    >>> from events.triggers import TriggerKind
    >>> from operators.customers.records import Candidate, ConsentSeen, Tick
    >>> gate = TriggerGate(cooldown_s=3600.0, lateness_s=0.0, idle_s=600.0)
    >>> cart = Candidate("C1", TriggerKind.CART_ABANDONED, 100.0, "SKU-1:e1", (), (), ("e1",))
    >>> gate.apply([cart, ConsentSeen("C2", "c1", 50.0, False)])  # not due yet: the stream is at -inf
    []
    >>> [c.trigger_id for c in gate.apply([Tick(((("pos", 0), 150.0),)), cart])]  # the repeat is dropped
    ['cart_abandoned:C1:SKU-1:e1']
    >>> gate.suppressed
    Counter({'cooldown': 1})
    """

    def __init__(
        self, cooldown_s: float, lateness_s: float, idle_s: float, consent_required: bool = False, partitions: int = 0
    ) -> None:
        self.cooldown_s = cooldown_s
        self.consent_required = consent_required
        self.clock = EventClock(lateness_s, idle_s, partitions)
        self.pending: list[tuple[float, str, Candidate]] = []
        self.consent: dict[str, list[tuple[float, bool]]] = {}
        self.last_sent: dict[str, float] = {}  # "<kind>:<customer>" -> due time of the last release
        self.suppressed: Counter[str] = Counter()

    def apply(self, items: Iterable[Any]) -> list[Candidate]:
        """Take ticks, consent changes and candidates; returns the candidates released, in order."""
        pending = self.pending
        for item in items:
            kind = type(item)
            if kind is Tick:
                self.clock.advance(item.newest, item.holds, item.watermark)
            elif kind is ConsentSeen:
                history = self.consent.setdefault(item.customer, [])
                if (item.ts, item.marketing) not in history:
                    insort(history, (item.ts, item.marketing))
                    del history[:-8]  # the newest changes are enough to judge the pending ones
            else:
                heapq.heappush(pending, (item.due_ts, item.trigger_id, item))
        released: list[Candidate] = []
        now = self.clock.watermark
        while pending and pending[0][0] <= now:
            _, _, candidate = heapq.heappop(pending)
            if self._allowed(candidate):
                released.append(candidate)
        if released:
            self._forget(now - 2 * self.cooldown_s)
        return released

    def consents(self, customer: str, ts: float) -> bool:
        """Whether `customer` accepted marketing at `ts` (the default when they never said)."""
        history = self.consent.get(customer)
        if history:
            i = bisect_right(history, (ts, True))
            if i:
                return history[i - 1][1]
        return not self.consent_required

    def _allowed(self, candidate: Candidate) -> bool:
        if not self.consents(candidate.customer, candidate.due_ts):
            self.suppressed["no_consent"] += 1
            return False
        key = f"{candidate.kind.value}:{candidate.customer}"
        last = self.last_sent.get(key)
        if last is not None and (abs(candidate.due_ts - last) < self.cooldown_s or last == candidate.due_ts):
            self.suppressed["cooldown"] += 1
            return False
        self.last_sent[key] = candidate.due_ts if last is None else max(last, candidate.due_ts)
        return True

    def _forget(self, horizon: float) -> None:
        if len(self.last_sent) > 4096:
            self.last_sent = {k: t for k, t in self.last_sent.items() if t >= horizon}
