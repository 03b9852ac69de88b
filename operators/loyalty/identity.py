"""Identity links: which loyalty member a web/app account belongs to, and its online orders until then.

An online order earns points once its account is linked to a member (`identity_link`). The
link may arrive after the order (the shopper logs in with the card at checkout's end, or the
link travels on another topic and is read later): such orders wait here and are released to
the member when the link arrives, if placed no more than `lookback_s` before it. So the
figure is the same in any arrival order:

    an order earns  <=>  its account has a link  and  order.ts >= link.ts - lookback_s

An account belongs to one member: the first link seen holds, a link to another member is
counted (`conflicts`) and ignored. A repeated link to the same member keeps the earliest time.

Pure logic: no I/O, no clock (time is the events' `ts` and the flow's `Tick`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from operators.loyalty.records import LinkSeen, Opened, PurchaseSeen, Tick, ToIdentity

PRUNE_EVERY_S = 3_600.0


@dataclass
class IdentityBook:
    """One shard of accounts: links and the orders that wait for one.

    Parameters
    ----------
    lookback_s
        How long before its link an order still earns.
    hold_s
        Event time an unlinked account's order waits for a link at most.
    max_held
        Orders kept per unlinked account at most (a guest-like account cannot grow without bound).

    Examples
    --------
    >>> from operators.loyalty.records import Line
    >>> book = IdentityBook(lookback_s=86_400.0, hold_s=86_400.0 * 30)
    >>> book.apply([PurchaseSeen("U1", "O1", "web", 100.0, (Line("A", 1, 500),), "p1")])
    []
    >>> [(o.txn_id, o.customer_id) for o in book.apply([LinkSeen("U1", "C9", 200.0, "l1")])]
    [('O1', 'C9')]
    >>> [o.txn_id for o in book.apply([PurchaseSeen("U1", "O2", "web", 300.0, (), "p2")])]
    ['O2']
    """

    lookback_s: float
    hold_s: float
    max_held: int = 50
    links: dict[str, tuple[str, float]] = field(default_factory=dict)
    held: dict[str, dict[str, PurchaseSeen]] = field(default_factory=dict)
    now: float = 0.0
    pruned_at: float = 0.0
    stats: dict[str, int] = field(default_factory=lambda: {"conflicts": 0, "too_early": 0, "expired_held": 0})

    def customer_of(self, user_id: str) -> str | None:
        link = self.links.get(user_id)
        return link[0] if link is not None else None

    def apply(self, items: list[ToIdentity]) -> list[Opened]:
        out: list[Opened] = []
        for item in items:
            kind = type(item)
            if kind is Tick:
                self._advance(item.ts)
            elif kind is LinkSeen:
                self._link(item, out)  # type: ignore[arg-type]
            else:
                self._purchase(item, out)  # type: ignore[arg-type]
        return out

    def _link(self, link: LinkSeen, out: list[Opened]) -> None:
        self.now = max(self.now, link.ts)
        known = self.links.get(link.user_id)
        if known is not None and known[0] != link.customer_id:
            self.stats["conflicts"] += 1
            return
        link_ts = link.ts if known is None else min(known[1], link.ts)
        self.links[link.user_id] = (link.customer_id, link_ts)
        for order in (self.held.pop(link.user_id, None) or {}).values():
            self._release(order, link.customer_id, link_ts, out)

    def _purchase(self, order: PurchaseSeen, out: list[Opened]) -> None:
        self.now = max(self.now, order.ts)
        link = self.links.get(order.user_id)
        if link is not None:
            self._release(order, link[0], link[1], out)
            return
        waiting = self.held.setdefault(order.user_id, {})
        if order.order_id not in waiting and len(waiting) < self.max_held:
            waiting[order.order_id] = order

    def _release(self, order: PurchaseSeen, customer_id: str, link_ts: float, out: list[Opened]) -> None:
        if order.ts < link_ts - self.lookback_s:
            self.stats["too_early"] += 1
            return
        out.append(Opened(order.order_id, customer_id, order.channel, order.ts, order.lines, order.event_id))

    def _advance(self, now: float) -> None:
        self.now = max(self.now, now)
        if self.now - self.pruned_at < PRUNE_EVERY_S:
            return
        self.pruned_at = self.now
        horizon = self.now - self.hold_s
        for user_id, waiting in list(self.held.items()):
            kept = {k: o for k, o in waiting.items() if o.ts >= horizon}
            self.stats["expired_held"] += len(waiting) - len(kept)
            if kept:
                self.held[user_id] = kept
            else:
                del self.held[user_id]
