"""The member ledger: lots of points per transaction, pending until the return window passes, then spendable.

Each earning transaction is a *lot*: its points (absolute, from `operators.loyalty.book`),
pending until `ts + return_window`, then available until `ts + return_window + expiry`, when
what is left of it expires. A redemption is decided in the member's event order against the
available balance and consumes the lots that expire first; it is refused, never partly
granted, when the balance does not cover it, so the balance never goes below zero and two
racing requests for the whole balance cannot both pass.

A reversal (a return, void or cancel, as a lower revision of the lot) takes points back from
the lot: while pending, simply; once spendable, from what is left of it, then from other
spendable lots; what was already spent is recorded as `unrecovered`, not taken below zero.

Time is event time only: the ledger's clock is the newest event time seen (from its items and
the flow's `Tick`s) less `lateness_s`, and it matures and expires lots, in due order, through a
heap of due times. The lateness lets a return that was in flight on another topic, or a hop
behind in the flow, reach its lot before the lot becomes spendable.

Pure logic: no I/O, no Bytewax; the flow stage shapes the outputs into documents and records.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from events.loyalty import EntryKind, LedgerEntry, RedemptionDecision
from events.timestamps import rfc3339_ms
from operators.loyalty.records import RedeemAsked, Tick, ToLedger, TxnPoints
from operators.loyalty.rules import EarnRules

_MATURE, _EXPIRE = 0, 1


@dataclass(slots=True)
class Lot:
    """The points one transaction earned (net of reversals) and what became of them."""

    txn_id: str
    ts: float
    points: int
    spend_cents: int
    rev: int
    matures_at: float
    expires_at: float
    consumed: int = 0
    matured: bool = False
    expired: bool = False


@dataclass(slots=True)
class Member:
    """One member's lots, decided redemptions and recent entries."""

    customer_id: str
    lots: dict[str, Lot] = field(default_factory=dict)
    redemptions: OrderedDict[str, RedemptionDecision] = field(default_factory=OrderedDict)
    entries: deque[LedgerEntry] = field(default_factory=lambda: deque(maxlen=20))
    version: int = 0
    redeemed: int = 0
    expired: int = 0
    unrecovered: int = 0
    as_of: float = 0.0

    def balances(self) -> tuple[int, int]:
        """(available, pending) now."""
        available = pending = 0
        for lot in self.lots.values():
            if not lot.matured:
                pending += lot.points
            elif not lot.expired:
                available += lot.points - lot.consumed
        return available, pending

    def spendable(self) -> list[Lot]:
        """Spendable lots, those that expire first first."""
        lots = [lot for lot in self.lots.values() if lot.matured and not lot.expired and lot.points > lot.consumed]
        lots.sort(key=lambda lot: (lot.expires_at, lot.txn_id))
        return lots


@dataclass(frozen=True, slots=True)
class LedgerOut:
    """What one batch did: entries in order, redemption decisions, and the members whose state changed."""

    entries: list[LedgerEntry]
    decisions: list[RedemptionDecision]
    changed: list[Member]


@dataclass
class MemberLedger:
    """One shard of members.

    Parameters
    ----------
    rules
        The earn rules in force (for tiers).
    return_window_s
        Event time after a transaction before its points can be spent.
    expiry_s
        Event time after maturity before unspent points expire.
    tier_window_s
        Rolling window of spend (by transaction time) that sets the tier.
    lateness_s
        How far the ledger's clock stays behind the newest event time seen.
    entries_kept
        Recent entries kept per member for the API.
    redemptions_kept
        Decided redemption ids kept per member to drop retried requests.

    Examples
    --------
    >>> day = 86_400.0
    >>> ledger = MemberLedger(EarnRules("t", {"pos": 1000}), return_window_s=30 * day, expiry_s=365 * day,
    ...                       tier_window_s=365 * day)
    >>> out = ledger.apply([TxnPoints("C1", "T1", 1, 0.0, 120, 12000, 0.0, "s1")])
    >>> [(e.kind, e.points, e.bucket) for e in out.entries], out.changed[0].balances()
    ([('earn', 120, 'pending')], (0, 120))
    >>> out = ledger.apply([Tick(31 * day), RedeemAsked("C1", "R1", 100, "web", 31 * day, "e1"),
    ...                     RedeemAsked("C1", "R2", 100, "web", 31 * day, "e2")])
    >>> [(d.redemption_id, d.status, d.reason) for d in out.decisions], out.changed[0].balances()
    ([('R1', 'accepted', None), ('R2', 'rejected', 'insufficient_points')], (20, 0))
    """

    rules: EarnRules
    return_window_s: float
    expiry_s: float
    tier_window_s: float
    lateness_s: float = 0.0
    entries_kept: int = 20
    redemptions_kept: int = 1000
    members: dict[str, Member] = field(default_factory=dict)
    now: float = 0.0
    due: list[tuple[float, int, str, str]] = field(default_factory=list)
    unknown: OrderedDict[str, RedemptionDecision] = field(default_factory=OrderedDict)
    stats: dict[str, int] = field(default_factory=lambda: {"stale": 0, "duplicates": 0})

    def apply(self, items: list[ToLedger]) -> LedgerOut:
        out = LedgerOut([], [], [])
        changed: dict[str, Member] = {}
        for item in items:
            kind = type(item)
            if kind is Tick:
                self._advance(item.ts, out, changed)
            elif kind is TxnPoints:
                self._advance(item.as_of, out, changed)  # type: ignore[union-attr]
                self._txn(item, out, changed)  # type: ignore[arg-type]
            else:
                self._advance(item.ts, out, changed)
                self._redeem(item, out, changed)  # type: ignore[arg-type]
        out.changed.extend(changed.values())
        return out

    # ------------------------------------------------------------------------------------ changes

    def _member(self, customer_id: str) -> Member:
        member = self.members.get(customer_id)
        if member is None:
            member = self.members[customer_id] = Member(customer_id, entries=deque(maxlen=self.entries_kept))
        return member

    def _txn(self, tp: TxnPoints, out: LedgerOut, changed: dict[str, Member]) -> None:
        member = self._member(tp.customer_id)
        lot = member.lots.get(tp.txn_id)
        before = member.balances()
        if lot is None:
            matures_at = tp.ts + self.return_window_s
            lot = Lot(tp.txn_id, tp.ts, tp.points, tp.spend_cents, tp.rev, matures_at, matures_at + self.expiry_s)
            member.lots[tp.txn_id] = lot
            heapq.heappush(self.due, (lot.matures_at, _MATURE, tp.customer_id, tp.txn_id))
            heapq.heappush(self.due, (lot.expires_at, _EXPIRE, tp.customer_id, tp.txn_id))
            self._entry(member, "earn", f"earn:{tp.txn_id}", tp.txn_id, tp.as_of, before, out, changed,
                        changes=tp.rev)  # fmt: skip
            # A late transaction may already be past its maturity or expiry: settle it now, in order.
            if lot.matures_at <= self.now:
                self._mature(member, lot, out, changed)
            if lot.expires_at <= self.now:
                self._expire(member, lot, out, changed)
            return
        if tp.rev <= lot.rev:
            self.stats["stale"] += 1
            return
        changes = tp.rev - lot.rev
        if (tp.points, tp.spend_cents) == (lot.points, lot.spend_cents):  # a fulfilment, say: nothing to show
            lot.rev = tp.rev
            member.version += changes
            return
        expired_left = lot.points - lot.consumed if lot.expired else 0
        lot.points, lot.spend_cents, lot.rev = tp.points, tp.spend_cents, tp.rev
        unrecovered = 0
        if lot.consumed > lot.points:  # spent points reversed: take them from other spendable lots
            overflow = lot.consumed - lot.points
            lot.consumed = lot.points
            for other in member.spendable():
                take = min(overflow, other.points - other.consumed)
                other.consumed += take
                overflow -= take
                if not overflow:
                    break
            unrecovered = overflow
            member.unrecovered += unrecovered
        if lot.expired:  # what expired was what was left; a reversal after expiry changes the expired amount
            member.expired += lot.points - lot.consumed - expired_left
        self._entry(member, "adjust", f"adjust:{tp.txn_id}:{tp.rev}", tp.txn_id, tp.as_of, before, out, changed,
                    unrecovered=unrecovered, changes=changes)  # fmt: skip

    def _redeem(self, ask: RedeemAsked, out: LedgerOut, changed: dict[str, Member]) -> None:
        member = self.members.get(ask.customer_id)
        known = member.redemptions if member is not None else self.unknown
        if ask.redemption_id in known:
            self.stats["duplicates"] += 1
            return
        if member is None:
            decision = self._decision(ask, "rejected", "unknown_customer", 0)
            self.unknown[ask.redemption_id] = decision
            if len(self.unknown) > self.redemptions_kept:
                self.unknown.popitem(last=False)
            out.decisions.append(decision)
            return
        before = member.balances()
        available = before[0]
        if ask.points > available:
            decision = self._decision(ask, "rejected", "insufficient_points", available)
            kind: EntryKind = "redeem_rejected"
        else:
            left = ask.points
            for lot in member.spendable():
                take = min(left, lot.points - lot.consumed)
                lot.consumed += take
                left -= take
                if not left:
                    break
            member.redeemed += ask.points
            decision = self._decision(ask, "accepted", None, available - ask.points)
            kind = "redeem"
        member.redemptions[ask.redemption_id] = decision
        if len(member.redemptions) > self.redemptions_kept:
            member.redemptions.popitem(last=False)
        out.decisions.append(decision)
        self._entry(member, kind, f"redeem:{ask.redemption_id}", ask.redemption_id, ask.ts, before, out, changed,
                    reason=decision.reason)  # fmt: skip

    @staticmethod
    def _decision(ask: RedeemAsked, status: str, reason: str | None, available: int) -> RedemptionDecision:
        return RedemptionDecision(
            redemption_id=ask.redemption_id, customer_id=ask.customer_id, status=status,  # type: ignore[arg-type]
            points=ask.points, reason=reason, available=available, ts=rfc3339_ms(ask.ts), order_ref=ask.order_ref,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------ time

    def _advance(self, now: float, out: LedgerOut, changed: dict[str, Member]) -> None:
        """Move the clock to `now` less the lateness and settle every lot due by then, in due order."""
        now -= self.lateness_s
        if now > self.now:
            self.now = now
        due = self.due
        while due and due[0][0] <= self.now:
            _, what, customer_id, txn_id = heapq.heappop(due)
            member = self.members.get(customer_id)
            lot = member.lots.get(txn_id) if member is not None else None
            if member is None or lot is None:
                continue
            if what == _MATURE and not lot.matured:
                self._mature(member, lot, out, changed)
            elif what == _EXPIRE and not lot.expired:
                self._expire(member, lot, out, changed)
                self._prune(member)

    def _mature(self, member: Member, lot: Lot, out: LedgerOut, changed: dict[str, Member]) -> None:
        before = member.balances()
        lot.matured = True
        self._entry(member, "mature", f"mature:{lot.txn_id}", lot.txn_id, lot.matures_at, before, out, changed)

    def _expire(self, member: Member, lot: Lot, out: LedgerOut, changed: dict[str, Member]) -> None:
        before = member.balances()
        lot.expired = True
        member.expired += lot.points - lot.consumed
        self._entry(member, "expire", f"expire:{lot.txn_id}", lot.txn_id, lot.expires_at, before, out, changed)

    def _prune(self, member: Member) -> None:
        """Drop expired lots that no longer count for the tier (their transactions are long closed)."""
        horizon = self.now - self.tier_window_s
        for txn_id in [t for t, lot in member.lots.items() if lot.expired and lot.ts < horizon]:
            del member.lots[txn_id]

    # ------------------------------------------------------------------------------------ output

    def _entry(
        self,
        member: Member,
        kind: EntryKind,
        suffix: str,
        ref: str,
        ts: float,
        before: tuple[int, int],
        out: LedgerOut,
        changed: dict[str, Member],
        *,
        reason: str | None = None,
        unrecovered: int = 0,
        changes: int = 1,
    ) -> None:
        # The document's version counts the events behind the member's figures (`changes`: a lot's
        # `TxnPoints.rev` counts its transaction's), not batches nor entries: a recovery replay
        # that batches or interleaves the same events differently ends on the same version, so its
        # last write passes the fence (counting entries, a replay that folded a sale and its return
        # into one ended a version short, and the document stayed as the killed run left it).
        member.version += changes
        changed[member.customer_id] = member
        available, pending = member.balances()
        if kind == "mature":
            points, bucket = available - before[0], "available"
        elif kind == "redeem_rejected":
            points, bucket = 0, "none"
        elif available != before[0]:
            points, bucket = available - before[0], "available"
        else:
            points, bucket = pending - before[1], "pending"
        if kind in ("earn", "adjust", "mature", "expire") and points == 0 and not unrecovered:
            return  # nothing moved (a zero-point transaction, a lot fully spent before it expired)
        entry = LedgerEntry(
            entry_id=f"{member.customer_id}:{suffix}", customer_id=member.customer_id, kind=kind, points=points,
            bucket=bucket, ref=ref, ts=rfc3339_ms(ts), available=available, pending=pending,  # type: ignore[arg-type]
            reason=reason, unrecovered=unrecovered,
        )  # fmt: skip
        member.entries.append(entry)
        member.as_of = max(member.as_of, ts)
        out.entries.append(entry)

    def doc(self, member: Member) -> dict[str, Any]:
        """The member's document as `GET /v1/loyalty/{customer_id}` serves it."""
        available, pending = member.balances()
        horizon = self.now - self.tier_window_s
        spend = sum(lot.spend_cents for lot in member.lots.values() if lot.ts > horizon)
        return {
            "customer_id": member.customer_id,
            "available": available,
            "pending": pending,
            "tier": self.rules.tier_of(spend),
            "rolling_spend": spend / 100,
            "redeemed": member.redeemed,
            "expired": member.expired,
            "unrecovered": member.unrecovered,
            "rules_version": self.rules.version,
            "as_of": rfc3339_ms(self.now),
            "entries": [_entry_dict(e) for e in reversed(member.entries)],
        }


def _entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in entry.__struct_fields__}
