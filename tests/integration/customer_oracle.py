"""An independent oracle of the customers flow: plain Python over the event log, sharing no code with it.

It reads the log in event-time order (each event id once) and says, from the rules of
docs/customers.md alone, what each customer's RFM inputs and lifecycle stage are at the
end, and exactly which triggers must have gone out by then. Nothing here imports the
flow, its operators or its records: a bug copied into both would otherwise pass.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Rules:
    new_s: float
    at_risk_s: float
    lapsed_s: float
    won_back_s: float
    windows_s: tuple[float, ...]
    vip_spend: float
    cart_s: float
    payment_s: float
    watch_s: float
    cooldown_s: float


@dataclass
class Customer:
    # (ts, amount, event id, channel, skus)
    purchases: list[tuple[float, float, str, str, tuple[str, ...]]] = field(default_factory=list)
    carts: list[tuple[float, str, str]] = field(default_factory=list)  # ts, sku, event id
    removals: list[tuple[float, str]] = field(default_factory=list)
    declines: dict[str, tuple[float, str]] = field(default_factory=dict)  # ref -> earliest (ts, event id)
    approvals: list[tuple[float, str]] = field(default_factory=list)
    views: list[tuple[float, str, str]] = field(default_factory=list)  # ts, sku, event id
    consent: list[tuple[float, bool]] = field(default_factory=list)
    store: str | None = None


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _stage(rules: Rules, purchases: list[float], won_back_at: float, now: float) -> str:
    if not purchases:
        return "prospect"
    first, last = purchases[0], max(p for p in purchases if p <= now) if any(p <= now for p in purchases) else None
    if last is None:
        return "prospect"
    quiet = now - last
    if quiet >= rules.lapsed_s:
        return "lapsed"
    if quiet >= rules.at_risk_s:
        return "at_risk"
    if won_back_at and now - won_back_at < rules.won_back_s:
        return "won_back"
    if now - first < rules.new_s:
        return "new"
    return "active"


class Oracle:
    """What the flow must end with, for a log whose every partition has reached `end`."""

    def __init__(self, rules: Rules, events: list[dict[str, Any]], end: float) -> None:
        self.rules = rules
        self.end = end
        self.customers: dict[str, Customer] = defaultdict(Customer)
        self.flips: dict[str, dict[str, list[tuple[float, bool]]]] = defaultdict(lambda: defaultdict(list))
        seen: set[str] = set()
        for event in sorted(events, key=lambda e: e["ts"] if isinstance(e["ts"], float) else _ts(e["ts"])):
            if event["_topic"] == "availability":
                self.flips[event["sku"]][event["location_id"]].append((event["ts"], event["sellable"]))
                continue
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            self._take(event)

    def _take(self, e: dict[str, Any]) -> None:
        ts, kind = _ts(e["ts"]), e["type"]
        if kind == "sale" and e.get("customer_id"):
            c = self.customers[e["customer_id"]]
            c.purchases.append((ts, e["total"], e["event_id"], "store", tuple(i["sku"] for i in e["items"])))
            c.store = e["store_id"]
        elif kind == "purchase" and e.get("user_id"):
            c = self.customers[e["user_id"]]
            c.purchases.append((ts, e["total"], e["event_id"], "web", tuple(i["sku"] for i in e["items"])))
        elif kind == "add_to_cart" and e.get("user_id"):
            self.customers[e["user_id"]].carts.append((ts, e["sku"], e["event_id"]))
        elif kind == "remove_from_cart" and e.get("user_id"):
            self.customers[e["user_id"]].removals.append((ts, e["sku"]))
        elif kind == "payment_result" and e.get("user_id"):
            c = self.customers[e["user_id"]]
            if e["status"] == "approved":
                c.approvals.append((ts, e["payment_ref"]))
            elif e["payment_ref"] not in c.declines:
                c.declines[e["payment_ref"]] = (ts, e["event_id"])
        elif kind == "product_view" and e.get("user_id"):
            self.customers[e["user_id"]].views.append((ts, e["sku"], e["event_id"]))
        elif kind == "consent":
            self.customers[e["customer_id"]].consent.append((ts, e["marketing"]))

    # --- per customer ---------------------------------------------------------------------------

    def rfm(self, customer: str) -> dict[str, Any]:
        """Orders, spend, first and last purchase, and the decayed sums as of the last purchase."""
        c = self.customers[customer]
        times = [p[0] for p in c.purchases]
        last = max(times) if times else 0.0
        decayed = [
            (
                sum(math.exp(-(last - t) / w) for t in times),
                sum(a * math.exp(-(last - t) / w) for t, a, *_ in c.purchases),
            )
            for w in self.rules.windows_s
        ]
        spend = round(sum(p[1] for p in c.purchases), 2)
        return {
            "orders": len(times),
            "spend": spend,
            "first": min(times, default=0.0),
            "last": last,
            "decayed": decayed,
        }

    def won_back_at(self, purchases: list[float]) -> float:
        won = 0.0
        for before, after in itertools.pairwise(purchases):
            if after - before >= self.rules.lapsed_s:
                won = after
        return won

    def stage(self, customer: str, now: float) -> str:
        times = sorted(p[0] for p in self.customers[customer].purchases)
        return _stage(self.rules, times, self.won_back_at([t for t in times if t <= now]), now)

    # --- triggers -------------------------------------------------------------------------------

    def candidates(self, customer: str, horizon: float) -> list[tuple[float, str]]:
        """(due, trigger id) of every trigger that fired for `customer` by `horizon`, before the gate."""
        r, c, out = self.rules, self.customers[customer], []
        bought = [(t, sku) for t, _, _, _, skus in c.purchases for sku in skus]
        for t, sku, eid in c.carts:
            deadline = t + r.cart_s
            settled = any(s == sku and t <= b <= deadline for b, s in bought) or any(
                s == sku and t <= x <= deadline for x, s in c.removals
            )
            if deadline <= horizon and not settled:
                out.append((deadline, f"cart_abandoned:{customer}:{sku}:{eid}"))
        for ref, (t, _) in c.declines.items():
            deadline = t + r.payment_s
            recovered = any(a == ref and t <= x <= deadline for x, a in c.approvals) or any(
                t <= p[0] <= deadline for p in c.purchases
            )
            if deadline <= horizon and not recovered:
                out.append((deadline, f"payment_failed_recovery:{customer}:{ref}"))
        times = sorted(p[0] for p in c.purchases)
        for i, last in enumerate(times):
            following = times[i + 1] if i + 1 < len(times) else math.inf
            for quiet, kind, stage in ((r.at_risk_s, "at_risk", "at_risk"), (r.lapsed_s, "win_back", "lapsed")):
                due = last + quiet
                if due < following and due <= horizon:
                    out.append((due, f"{kind}:{customer}:{stage}:{round(last * 1000)}"))
        for t, _, eid, *_ in sorted(c.purchases):
            total = sum(a * math.exp(-(t - x) / r.windows_s[-1]) for x, a, *_ in c.purchases if x <= t)
            if total >= r.vip_spend:
                if t <= horizon:
                    out.append((t, f"vip_reached:{customer}:{eid}"))
                break
        for t_v, sku, eid in c.views:
            fired = self._restock(sku, c.store, t_v)
            if fired is not None and fired <= horizon:
                out.append((fired, f"back_in_stock:{customer}:{sku}:{eid}"))
        return out

    def _sellable(self, history: list[tuple[float, bool]], ts: float) -> bool | None:
        state = None
        for t, sellable in history:
            if t > ts:
                break
            state = sellable
        return state

    def _restock(self, sku: str, store: str | None, t_v: float) -> float | None:
        locations = self.flips.get(sku, {})
        scopes = []
        if store is not None and self._sellable(locations.get(store, []), t_v) is False:
            scopes.append(store)
        known = [s for s in (self._sellable(h, t_v) for h in locations.values()) if s is not None]
        anywhere = "*" if known and not any(known) else None
        if not scopes and anywhere is None:
            return None
        firsts = [
            t
            for location, history in locations.items()
            if anywhere is not None or location in scopes
            for t, sellable in history
            if sellable and t_v < t <= t_v + self.rules.watch_s
        ]
        return min(firsts, default=None)

    def triggers(self, horizon: float) -> set[str]:
        """The trigger ids released by `horizon`: consent at the due time, then one per kind and cooldown."""
        released: set[str] = set()
        for customer, c in self.customers.items():
            last_sent: dict[str, float] = {}
            for due, trigger_id in sorted(self.candidates(customer, horizon)):
                allowed = True
                for t, marketing in sorted(c.consent):
                    if t <= due:
                        allowed = marketing
                if not allowed:
                    continue
                kind = trigger_id.split(":", 1)[0]
                last = last_sent.get(kind)
                if last is not None and due - last < self.rules.cooldown_s:
                    continue
                last_sent[kind] = due
                released.add(trigger_id)
        return released
