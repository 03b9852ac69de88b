"""An independent oracle of loyalty balances: plain Python over the event log, sharing no code with the flow.

It reads the published JSON events (not the flow's models or operators) and the rules file
(with `tomllib`, not the flow's parser), and applies the programme's rules as docs/loyalty.md
states them, with `Decimal` arithmetic where the flow uses scaled integers:

- a till sale with a `customer_id` earns; so does an online purchase of an account linked to a
  member, if placed no more than the link look-back before the (earliest) link;
- points of a transaction = floor(sum over lines of price x kept units x channel rate x
  category multiplier x campaign multiplier), kept = units - returned - cancelled (a void: 0);
- a lot matures at ts + return window, expires at maturity + expiry, when the ledger clock
  (newest event time less the lateness) reaches it; what is left of it then expires;
- redemptions, in their member's order: accepted if available covers them, consuming the lots
  that expire first; reversals take points back from the lot, then from other spendable lots,
  and the rest is unrecovered.

Events are de-duplicated by `event_id`, so duplicates in the log change nothing here either.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import orjson


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Rules:
    rates: dict[str, Decimal]
    categories: dict[str, Decimal]
    campaigns: list[tuple[float, float, Decimal, set[str]]]
    tiers: list[tuple[Decimal, str]]

    @classmethod
    def read(cls, path: Path) -> Rules:
        doc = tomllib.loads(path.read_text())
        campaigns = [(_ts(c["start"]), _ts(c["end"]), Decimal(str(c["multiplier"])),
                      set(c.get("channels", ["pos", "web", "app"]))) for c in doc.get("campaign", [])]  # fmt: skip
        return cls(
            {k: Decimal(str(v)) for k, v in doc["points_per_unit"].items()},
            {k: Decimal(str(v)) for k, v in doc.get("category_multipliers", {}).items()},
            campaigns,
            sorted((Decimal(str(t["min_spend"])), t["name"]) for t in doc.get("tier", [])),
        )

    def factor(self, channel: str, category: str | None, ts: float) -> Decimal:
        campaign = max([m for start, end, m, chans in self.campaigns if start <= ts < end and channel in chans],
                       default=Decimal(1))  # fmt: skip
        campaign = max(campaign, Decimal(1))
        return self.rates.get(channel, Decimal(0)) * self.categories.get(category or "", Decimal(1)) * campaign

    def tier(self, spend: Decimal) -> str:
        name = "member"
        for threshold, tier in self.tiers:
            if spend >= threshold:
                name = tier
        return name


@dataclass
class Txn:
    customer: str
    channel: str
    ts: float
    lines: dict[str, tuple[int, Decimal]]  # sku -> (qty, unit price)
    returned: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    fulfilled: dict[str, int] = field(default_factory=dict)
    whole_cancel: bool = False
    voided: bool = False

    def kept(self, sku: str) -> int:
        qty = self.lines[sku][0]
        if self.whole_cancel:
            cancelled = qty - min(qty, self.fulfilled.get(sku, 0))
        else:
            cancelled = min(qty, self.cancelled.get(sku, 0))
        return qty - min(qty, self.returned.get(sku, 0) + cancelled)

    def figures(self, rules: Rules, categories: dict[str, str]) -> tuple[int, Decimal]:
        if self.voided:
            return 0, Decimal(0)
        points = Decimal(0)
        spend = Decimal(0)
        for sku, (_, price) in self.lines.items():
            kept = self.kept(sku)
            points += price * kept * rules.factor(self.channel, categories.get(sku), self.ts)
            spend += price * kept
        return int(points.to_integral_value(rounding=ROUND_FLOOR)), spend


@dataclass
class OracleLot:
    txn: str
    ts: float
    points: int
    spend: Decimal
    consumed: int = 0


@dataclass
class OracleMember:
    lots: dict[str, OracleLot] = field(default_factory=dict)
    redeemed: int = 0
    unrecovered: int = 0
    expired_points: int = 0
    expired: set[str] = field(default_factory=set)


class LoyaltyOracle:
    """Feed it the events of each phase (`earn`, `redeem`, `reverse`, `clock`) in log order; read `members`."""

    def __init__(self, rules: Rules, *, window_s: float, expiry_s: float, lookback_s: float, lateness_s: float,
                 tier_window_s: float) -> None:  # fmt: skip
        self.rules = rules
        self.window_s, self.expiry_s, self.lookback_s = window_s, expiry_s, lookback_s
        self.lateness_s, self.tier_window_s = lateness_s, tier_window_s
        self.seen: set[str] = set()
        self.categories: dict[str, str] = {}
        self.txns: dict[str, Txn] = {}
        self.members: dict[str, OracleMember] = {}
        self.decisions: dict[str, tuple[str, str | None]] = {}
        self.clock = 0.0

    def _fresh(self, events: list[bytes]) -> list[dict[str, Any]]:
        out = []
        for raw in events:
            event = orjson.loads(raw)
            if event["event_id"] not in self.seen:
                self.seen.add(event["event_id"])
                out.append(event)
        return out

    def earn(self, events: list[bytes]) -> None:
        """A set of earning events and their reversals, in any order: only the set matters."""
        events = self._fresh(events)
        links: dict[str, tuple[str, float]] = {}
        for e in events:
            self.clock = max(self.clock, _ts(e["ts"]) - self.lateness_s)
            if e["type"] == "product_upsert":
                self.categories[e["sku"]] = e["category"]
            elif e["type"] == "identity_link":
                known = links.get(e["user_id"])
                links[e["user_id"]] = (e["customer_id"], min(_ts(e["ts"]), known[1] if known else float("inf")))
        for e in events:
            ts = _ts(e["ts"])
            lines = {i["sku"]: (i["qty"], Decimal(str(i["unit_price"]))) for i in e.get("items", [])}
            if e["type"] == "sale" and e.get("customer_id"):
                self.txns[e["txn_id"]] = Txn(e["customer_id"], "pos", ts, lines)
            elif e["type"] == "purchase" and e.get("user_id") in links:
                customer, link_ts = links[e["user_id"]]
                if ts >= link_ts - self.lookback_s:
                    self.txns[e["order_id"]] = Txn(customer, e["channel"], ts, lines)
        for e in events:
            self._reverse_one(e)
        for txn_id, txn in self.txns.items():
            points, spend = txn.figures(self.rules, self.categories)
            member = self.members.setdefault(txn.customer, OracleMember())
            if txn_id not in member.lots:
                member.lots[txn_id] = OracleLot(txn_id, txn.ts, points, spend)

    def _reverse_one(self, e: dict[str, Any]) -> None:
        kind = e["type"]
        target = e.get("original_txn_id") if kind in ("return", "void") else e.get("order_id")
        txn = self.txns.get(target or "")
        if txn is None or kind not in ("return", "void", "order_cancel", "fulfilment"):
            return
        if kind == "void":
            txn.voided = True
        elif kind == "return":
            for item in e["items"]:
                txn.returned[item["sku"]] = txn.returned.get(item["sku"], 0) + item["qty"]
        elif kind == "fulfilment":
            txn.fulfilled[e["sku"]] = txn.fulfilled.get(e["sku"], 0) + e["qty"]
        elif e.get("sku") is None:
            txn.whole_cancel = True
        elif e["sku"] in txn.lines:
            qty = e.get("qty", txn.lines[e["sku"]][0])
            txn.cancelled[e["sku"]] = txn.cancelled.get(e["sku"], 0) + qty

    def reverse(self, events: list[bytes]) -> None:
        """Late reversals of spendable lots, in log order."""
        for e in self._fresh(events):
            self.clock = max(self.clock, _ts(e["ts"]) - self.lateness_s)
            self._reverse_one(e)
            target = e.get("original_txn_id") or e.get("order_id")
            txn = self.txns[target]
            member = self.members[txn.customer]
            lot = member.lots[target]
            lot.points, lot.spend = txn.figures(self.rules, self.categories)
            if lot.consumed > lot.points:
                overflow, lot.consumed = lot.consumed - lot.points, lot.points
                for other in self._spendable(member):
                    take = min(overflow, other.points - other.consumed)
                    other.consumed += take
                    overflow -= take
                member.unrecovered += overflow

    def _matured(self, lot: OracleLot) -> bool:
        return lot.ts + self.window_s <= self.clock

    def _expires_at(self, lot: OracleLot) -> float:
        return lot.ts + self.window_s + self.expiry_s

    def _spendable(self, member: OracleMember) -> list[OracleLot]:
        lots = [lot for lot in member.lots.values()
                if self._matured(lot) and lot.txn not in member.expired and lot.points > lot.consumed]  # fmt: skip
        return sorted(lots, key=lambda lot: (self._expires_at(lot), lot.txn))

    def redeem(self, events: list[bytes]) -> None:
        """Redemption requests, in log order (one member's requests keep their order on its partition)."""
        for e in self._fresh(events):
            self.clock = max(self.clock, _ts(e["ts"]) - self.lateness_s)
            self._expire()
            rid, member = e["redemption_id"], self.members.get(e["customer_id"])
            if rid in self.decisions:
                continue
            if member is None:
                self.decisions[rid] = ("rejected", "unknown_customer")
                continue
            if e["points"] > self.available(member):
                self.decisions[rid] = ("rejected", "insufficient_points")
                continue
            left = e["points"]
            for lot in self._spendable(member):
                take = min(left, lot.points - lot.consumed)
                lot.consumed += take
                left -= take
            member.redeemed += e["points"]
            self.decisions[rid] = ("accepted", None)

    def advance(self, ts: float) -> None:
        """The clock moves on (an event at `ts`)."""
        self.clock = max(self.clock, ts - self.lateness_s)
        self._expire()

    def _expire(self) -> None:
        for member in self.members.values():
            for lot in member.lots.values():
                if lot.txn not in member.expired and self._expires_at(lot) <= self.clock:
                    member.expired.add(lot.txn)
                    member.expired_points += lot.points - lot.consumed

    def available(self, member: OracleMember) -> int:
        return sum(lot.points - lot.consumed for lot in member.lots.values()
                   if self._matured(lot) and lot.txn not in member.expired)  # fmt: skip

    def balances(self, customer: str, as_of: float) -> dict[str, Any]:
        """What the member document must say; `as_of` (the document's own time) only sets the tier's window."""
        member = self.members[customer]
        pending = sum(lot.points for lot in member.lots.values() if not self._matured(lot))
        spend = sum((lot.spend for lot in member.lots.values() if lot.ts > as_of - self.tier_window_s), Decimal(0))
        return {"available": self.available(member), "pending": pending, "redeemed": member.redeemed,
                "expired": member.expired_points, "unrecovered": member.unrecovered,
                "rolling_spend": float(spend), "tier": self.rules.tier(spend)}  # fmt: skip
