"""The transaction book: each earning transaction's life turned into its absolute points.

A sale or an online order earns; returns, voids and cancels take back their share, line by
line and in proportion to the units concerned. The book keeps, per transaction, the lines
with their exact per-unit points (`operators.loyalty.rules`) and what happened to each line,
and recomputes the transaction's points and spend *absolutely* after every change:

    kept(line)   = qty - min(qty, returned + cancelled)
    cancelled    = qty - fulfilled                     after a whole-order cancel
                 = min(qty, units named by line cancels) otherwise
    points       = floor(sum(unit_units x kept) / SCALE), a void makes it 0

Absolute figures make the result independent of arrival order: a return published before
its sale waits in the book (`held`) and applies when the sale arrives; duplicates are
dropped by `event_id`; a cancel before the order's fulfilment gives the same figure as after.
A line sold before the catalog named its SKU's category earns at x1 until the category
arrives, and is then re-priced with it (once: a later change of category re-prices nothing
already sold).

Pure logic: no I/O, no clock (time is the events' `ts` and the flow's `Tick`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from operators.loyalty.records import (
    Cancelled,
    CategoryKnown,
    Fulfilled,
    Opened,
    Returned,
    Tick,
    ToBook,
    TxnPoints,
    Voided,
)
from operators.loyalty.rules import SCALE, EarnRules

Action = Returned | Voided | Cancelled | Fulfilled
PRUNE_EVERY_S = 3_600.0


@dataclass(slots=True)
class _Line:
    qty: int
    unit_units: int
    unit_cents: int
    returned: int = 0
    cancelled: int = 0
    fulfilled: int = 0

    def kept(self, whole_cancel: bool) -> int:
        cancelled = self.qty - min(self.qty, self.fulfilled) if whole_cancel else min(self.qty, self.cancelled)
        return self.qty - min(self.qty, self.returned + cancelled)


@dataclass(slots=True)
class _Txn:
    customer_id: str
    channel: str
    ts: float
    lines: dict[str, _Line]
    seen: set[str]
    voided: bool = False
    whole_cancel: bool = False
    rev: int = 0
    points: int = -1
    spend_cents: int = -1

    def figures(self) -> tuple[int, int]:
        if self.voided:
            return 0, 0
        units = spend = 0
        for line in self.lines.values():
            kept = line.kept(self.whole_cancel)
            units += line.unit_units * kept
            spend += line.unit_cents * kept
        return units // SCALE, spend


@dataclass
class TxnBook:
    """One shard of transactions: apply `Opened`/actions, get back each changed transaction's `TxnPoints`.

    Parameters
    ----------
    rules
        The earn rules in force.
    retention_s
        Event time a transaction (and an action waiting for its transaction) is kept after its `ts`.

    Examples
    --------
    >>> from operators.loyalty.records import Line
    >>> rules = EarnRules("t", {"pos": 1000, "web": 1000, "app": 1000})
    >>> book = TxnBook(rules, retention_s=86_400 * 90)
    >>> book.apply([Returned("T1", "r1", 20.0, (("A", 1),))])  # before its sale: held
    []
    >>> [(p.points, p.spend_cents) for p in book.apply([Opened("T1", "C1", "pos", 10.0,
    ...     (Line("A", 2, 1000), Line("B", 1, 550)), "s1")])]
    [(15, 1550)]
    >>> [(p.points, p.rev) for p in book.apply([Voided("T1", "v1", 30.0)])]
    [(0, 3)]
    """

    rules: EarnRules
    retention_s: float
    txns: dict[str, _Txn] = field(default_factory=dict)
    held: dict[str, list[Action]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    now: float = 0.0
    pruned_at: float = 0.0
    stats: dict[str, int] = field(default_factory=lambda: {"duplicates": 0, "held": 0, "expired_held": 0})

    uncategorised: dict[str, set[str]] = field(default_factory=dict)
    """SKU -> transactions with a line of it earned before its category was known."""

    def apply(self, items: list[ToBook]) -> list[TxnPoints]:
        """Apply a batch in order; returns the new figures of every transaction it changed (the last per txn)."""
        changed: dict[str, TxnPoints] = {}
        for item in items:
            kind = type(item)
            if kind is Tick:
                self._advance(item.ts)  # type: ignore[union-attr]
                continue
            if kind is CategoryKnown:
                for repriced in self._categorise(item):  # type: ignore[arg-type]
                    changed[repriced.txn_id] = repriced
                continue
            self.now = max(self.now, item.ts)  # type: ignore[union-attr]
            out = self._open(item) if kind is Opened else self._act(item)  # type: ignore[arg-type]
            if out is not None:
                changed[out.txn_id] = out
        return list(changed.values())

    def _open(self, opened: Opened) -> TxnPoints | None:
        if opened.txn_id in self.txns:
            self.stats["duplicates"] += 1
            return None
        lines: dict[str, _Line] = {}
        rules, categories = self.rules, self.categories
        for line in opened.lines:
            category = categories.get(line.sku)
            if category is None:
                self.uncategorised.setdefault(line.sku, set()).add(opened.txn_id)
            units = rules.line_units(line.unit_cents, opened.channel, category, opened.ts)
            known = lines.get(line.sku)
            if known is None:
                lines[line.sku] = _Line(line.qty, units, line.unit_cents)
            else:  # the same SKU on two lines: one line of the summed units at their mean per-unit figures
                total = known.qty + line.qty
                known.unit_units = (known.unit_units * known.qty + units * line.qty) // total
                known.unit_cents = (known.unit_cents * known.qty + line.unit_cents * line.qty) // total
                known.qty = total
        txn = self.txns[opened.txn_id] = _Txn(opened.customer_id, opened.channel, opened.ts, lines, {opened.event_id})
        # The sale, and each SKU whose category is known: one re-priced later counts then, so the
        # count is the same whichever came first.
        txn.rev = 1 + sum(1 for sku in lines if sku in categories)
        for action in self.held.pop(opened.txn_id, ()):
            self._change(txn, action)
        return self._emit(opened.txn_id, txn, opened.ts, opened.event_id)

    def _categorise(self, known: CategoryKnown) -> list[TxnPoints]:
        """Learn a SKU's category; the first time, re-price the lines sold before it was known."""
        if known.sku in self.categories:
            self.categories[known.sku] = known.category
            return []
        self.categories[known.sku] = known.category
        out = []
        for txn_id in sorted(self.uncategorised.pop(known.sku, ())):
            txn = self.txns.get(txn_id)
            line = txn.lines.get(known.sku) if txn is not None else None
            if txn is None or line is None:
                continue
            line.unit_units = self.rules.line_units(line.unit_cents, txn.channel, known.category, txn.ts)
            txn.rev += 1
            out.append(self._emit(txn_id, txn, txn.ts, f"category:{known.sku}"))
        return out

    def _act(self, action: Action) -> TxnPoints | None:
        txn = self.txns.get(action.txn_id)
        if txn is None:
            waiting = self.held.setdefault(action.txn_id, [])
            if any(a.event_id == action.event_id for a in waiting):
                self.stats["duplicates"] += 1
            else:
                waiting.append(action)
                self.stats["held"] += 1
            return None
        if action.event_id in txn.seen:
            self.stats["duplicates"] += 1
            return None
        self._change(txn, action)
        return self._emit(action.txn_id, txn, action.ts, action.event_id)

    @staticmethod
    def _change(txn: _Txn, action: Action) -> None:
        txn.seen.add(action.event_id)
        txn.rev += 1
        kind = type(action)
        if kind is Voided:
            txn.voided = True
        elif kind is Returned:
            for sku, qty in action.lines:  # type: ignore[union-attr]
                line = txn.lines.get(sku)
                if line is not None:
                    line.returned += qty
        elif kind is Fulfilled:
            shipped: Fulfilled = action  # type: ignore[assignment]
            line = txn.lines.get(shipped.sku)
            if line is not None:
                line.fulfilled += shipped.qty
        else:
            cancel: Cancelled = action  # type: ignore[assignment]
            if cancel.sku is None:
                txn.whole_cancel = True
            elif (line := txn.lines.get(cancel.sku)) is not None:
                line.cancelled += line.qty if cancel.qty is None else cancel.qty

    @staticmethod
    def _emit(txn_id: str, txn: _Txn, as_of: float, cause: str) -> TxnPoints:
        """The transaction's figures after an event it absorbed, whether they moved or not.

        `rev` counts the events absorbed (the sale, each action, each re-pricing), so the member's
        ledger can count them too: a figure of the events, not of how a run batched them (a
        recovery replay that folds a sale and its return into one `TxnPoints` counts 2 as well).
        """
        txn.points, txn.spend_cents = txn.figures()
        return TxnPoints(txn.customer_id, txn_id, txn.rev, txn.ts, txn.points, txn.spend_cents, as_of, cause)

    def _advance(self, now: float) -> None:
        """Forget transactions and waiting actions older than the retention (a pass per hour of event time)."""
        self.now = max(self.now, now)
        if self.now - self.pruned_at < PRUNE_EVERY_S:
            return
        self.pruned_at = now = self.now
        horizon = now - self.retention_s
        for txn_id in [t for t, txn in self.txns.items() if txn.ts < horizon]:
            del self.txns[txn_id]
        for sku, txn_ids in list(self.uncategorised.items()):
            txn_ids.intersection_update(self.txns)
            if not txn_ids:
                del self.uncategorised[sku]
        for txn_id, waiting in list(self.held.items()):
            kept = [a for a in waiting if a.ts >= horizon]
            self.stats["expired_held"] += len(waiting) - len(kept)
            if kept:
                self.held[txn_id] = kept
            else:
                del self.held[txn_id]
