"""Back-in-stock watches of one shard of SKUs: who looked at what while it could not be bought.

A view of a SKU that was unavailable, at the viewer's preferred store or anywhere at all
("online": nothing to ship from), becomes a watch. The first time, within `window_s` after
the view, that the SKU becomes sellable in a watched scope, the watch fires one candidate
`back_in_stock` (anchored on the view, so a replay gives the same trigger id) and ends.

Availability is known from the inventory flow's flips (`events.availability`), kept per
SKU and location as a short, time-ordered history: a view is judged by the availability
*at its own event time*, so a view that arrives after the restock it preceded still fires,
and one that followed the restock does not. A SKU with no known flip is taken as available
(no watch): the inventory flow announces every location when it first stocks it.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from dataclasses import dataclass, field

from events.triggers import TriggerKind
from operators.customers.clock import EventClock
from operators.customers.records import Candidate, Flip, Tick, Watch

ANYWHERE = "*"


@dataclass(slots=True)
class _Sku:
    flips: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)  # location -> [(ts, sellable)]
    watches: list[tuple[Watch, tuple[str, ...]]] = field(default_factory=list)  # with the scopes watched

    def sellable_at(self, location: str, ts: float) -> bool | None:
        history = self.flips.get(location)
        if not history:
            return None
        i = bisect_right(history, (ts, True))
        return history[i - 1][1] if i else None

    def sellable_anywhere(self, ts: float) -> bool | None:
        known = [self.sellable_at(location, ts) for location in self.flips]
        known_states = [k for k in known if k is not None]
        return any(known_states) if known_states else None

    def first_restock(self, scopes: tuple[str, ...], after: float, until: float) -> tuple[float, str] | None:
        """The earliest (ts, location) in (after, until] where a watched scope became sellable."""
        best: tuple[float, str] | None = None
        for location, history in self.flips.items():
            if ANYWHERE not in scopes and location not in scopes:
                continue
            for ts, sellable in history[bisect_right(history, (after, True)) :]:
                if ts > until:
                    break
                if sellable:
                    if best is None or (ts, location) < best:
                        best = (ts, location)
                    break
        return best


class StockWatches:
    """Availability history and open watches of the SKUs of one shard.

    Examples
    --------
    >>> from operators.customers.records import Flip, Watch
    >>> watches = StockWatches(window_s=86_400.0)
    >>> watches.apply([Flip("SKU-1", "S1", 10.0, False, 3), Watch("C1", "SKU-1", 20.0, "S1", "v1")])
    []
    >>> [(c.trigger_id, c.due_ts) for c in watches.apply([Flip("SKU-1", "S1", 30.0, True, 4)])]
    [('back_in_stock:C1:SKU-1:v1', 30.0)]
    >>> watches.apply([Flip("SKU-1", "S1", 40.0, True, 4)])  # fired once: the watch is over
    []
    """

    def __init__(self, window_s: float, clock: EventClock | None = None) -> None:
        self.window_s = window_s
        self.skus: dict[str, _Sku] = {}
        self.clock = clock or EventClock(lateness_s=0.0, idle_s=float("inf"))
        self._forgot_at = float("-inf")

    def apply(self, items: list[Flip | Watch | Tick]) -> list[Candidate]:
        out: list[Candidate] = []
        for item in items:
            if isinstance(item, Tick):
                self.clock.advance(item.newest, item.holds, item.watermark)
                continue
            sku = self.skus.get(item.sku)
            if sku is None:
                sku = self.skus[item.sku] = _Sku()
            if isinstance(item, Flip):
                self._flip(sku, item, out)
            else:
                self._watch(sku, item, out)
        # By the watermark, not the newest flip: a backlog's flips may run days ahead of the views.
        horizon = self.clock.watermark - self.window_s
        if horizon - self._forgot_at > self.window_s / 8:
            self._forget(horizon)
            self._forgot_at = horizon
        return out

    def _watch(self, sku: _Sku, view: Watch, out: list[Candidate]) -> None:
        scopes: list[str] = []
        if view.store is not None and sku.sellable_at(view.store, view.ts) is False:
            scopes.append(view.store)
        if sku.sellable_anywhere(view.ts) is False:
            scopes.append(ANYWHERE)
        if not scopes:
            return
        watched = tuple(scopes)
        restock = sku.first_restock(watched, view.ts, view.ts + self.window_s)
        if restock is not None:  # the view arrived after the restock that followed it
            out.append(self._candidate(view, watched, *restock))
        else:
            sku.watches.append((view, watched))

    def _flip(self, sku: _Sku, flip: Flip, out: list[Candidate]) -> None:
        history = sku.flips.setdefault(flip.location, [])
        entry = (flip.ts, flip.sellable)
        if entry in history:
            return  # a re-sent flip
        insort(history, entry)
        if not flip.sellable or not sku.watches:
            return
        kept = []
        for view, scopes in sku.watches:
            restock = sku.first_restock(scopes, view.ts, view.ts + self.window_s)
            if restock is None:
                kept.append((view, scopes))
            else:
                out.append(self._candidate(view, scopes, *restock))
        sku.watches = kept

    def _candidate(self, view: Watch, scopes: tuple[str, ...], ts: float, location: str) -> Candidate:
        scope = "store" if location == view.store and view.store in scopes else "online"
        return Candidate(
            view.customer, TriggerKind.BACK_IN_STOCK, ts, f"{view.sku}:{view.event_id}",
            (f"viewed while unavailable ({scope}), sellable again at {location}",),
            (("sku", view.sku), ("location_id", location), ("scope", scope), ("viewed_at", view.ts)),
            (view.event_id,),
        )  # fmt: skip

    def _forget(self, horizon: float) -> None:
        """Drop watches that can no longer fire, and flips no view can need any more.

        A view yet to arrive is at most the clock's lateness old; an open watch needs the
        flips after its view. Each location keeps its last flip before the horizon (its state then).
        """
        for sku in self.skus.values():
            sku.watches = [(v, s) for v, s in sku.watches if v.ts >= horizon]
            keep_from = min((v.ts for v, _ in sku.watches), default=horizon + self.window_s)
            for location, history in sku.flips.items():
                i = bisect_right(history, (keep_from, True))
                if i > 1:
                    sku.flips[location] = history[i - 1 :]
