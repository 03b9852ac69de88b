"""Store traffic: till sales, voids, returns with and without receipt, and card-present fraud.

A till only sells what tracked on-hand says is on the shelf. A void names an
earlier sale of the same store; some voids are published before the sale they
cancel (the till buffered the sale while offline), which the flow must survive.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from events.topics import Topic
from sim.catalog import Product
from sim.fraud import FraudCase, FraudDesk
from sim.incidents import IncidentPlan
from sim.loyalty import Members
from sim.run import MOVEMENT, Effect, Run
from sim.shoppers import Shopper, card_token

_ENTRY_MODES = ("chip", "chip", "contactless", "contactless", "contactless", "swipe")


class Tills:
    """Publishes `omni.pos` events for every store.

    Parameters
    ----------
    run
        The stream's shared state.
    fraud
        Records which transactions are fraudulent.
    void_rate
        Share of sales voided at the till.
    early_void_rate
        Share of voids published before the sale they void.
    loyalty_rate
        Share of sales to a registered shopper (`customer_id`), who buys to taste.
    legit_manual_rate
        Share of honest card sales keyed in by hand (a chip that would not read): the
        innocent look-alikes of manual-entry fraud. 0 leaves the stream as it always was.
    loyalty_scan_miss_rate
        Share of registered shoppers' sales where the loyalty card is not scanned: their own
        card pays with no `customer_id` (what a stolen card looks like too). 0 leaves the
        stream as it always was.
    incidents
        Dark stores and silent registers to respect, or None.
    terminal_compromise_s, card_compromise_s
        How long a compromised terminal or card stays in fraudsters' hands (the card-fraud
        benchmark's 28 and 14 days).
    """

    def __init__(
        self,
        run: Run,
        fraud: FraudDesk,
        void_rate: float,
        early_void_rate: float,
        loyalty_rate: float = 0.4,
        legit_manual_rate: float = 0.0,
        incidents: IncidentPlan | None = None,
        loyalty_scan_miss_rate: float = 0.0,
        members: Members | None = None,
        terminal_compromise_s: float = 28 * 86_400.0,
        card_compromise_s: float = 14 * 86_400.0,
    ) -> None:
        self.run = run
        self.terminal_compromise_s = terminal_compromise_s
        self.card_compromise_s = card_compromise_s
        self.fraud = fraud
        self.members = members
        self.void_rate = void_rate
        self.early_void_rate = early_void_rate
        self.loyalty_rate = loyalty_rate
        self.legit_manual_rate = legit_manual_rate
        self.incidents = incidents
        self.loyalty_scan_miss_rate = loyalty_scan_miss_rate
        self._registers = {store: tuple(f"{store}-R{n}" for n in range(1, 7)) for store in run.catalog.stores}
        self._cashiers = {store: tuple(f"C-{store[-2:]}{n:02d}" for n in range(12)) for store in run.catalog.stores}
        expensive = [c for c in ("phones", "electronics", "computers") if c in run.catalog.categories]
        self._expensive: list[str | None] = [*expensive] or [None]
        # (store_id, txn_id, lines, payment, customer_id) of recent sales, for returns with receipt.
        self._recent_sales: deque[tuple[str, str, list[tuple[Product, int]], dict[str, Any], str | None]] = deque(
            maxlen=4096
        )

    def sale(self, t: float) -> None:
        """A basket rung up at a store at `t`; sometimes voided right after."""
        run, random = self.run, self.run.random
        store = run.pick(run.catalog.stores)
        if self.incidents is not None and self.incidents.store_is_dark(store, t):
            return  # tills down: nothing reaches Kafka from this store
        category = None
        customer_id = None
        if random() < self.loyalty_rate:
            shopper = run.pick(run.shoppers)
            customer_id = shopper.user_id
            payment = _till_payment(run, shopper.card_token, shopper.card_bin)
            if random() < 0.7:
                category = run.pick(shopper.categories)
            if self.loyalty_scan_miss_rate and random() < self.loyalty_scan_miss_rate:
                customer_id = None
        else:
            payment = _till_payment(run, None, "424242")
        if self.legit_manual_rate and "entry_mode" in payment and random() < self.legit_manual_rate:
            payment["entry_mode"] = "manual"
        lines = self._basket(store, 1 + int(random() ** 2 * 8), category)
        if lines:
            self._sale(store, lines, payment, customer_id, t, fraud=False)
            if customer_id is not None and self.members is not None:
                self.members.redeem(t + 1.0, customer_id, "pos", online=False)

    def fraud_sale(self, t: float) -> None:
        """A stolen card keyed in by hand for expensive goods."""
        run = self.run
        token, card_bin, _ = self.fraud.stolen_card()
        store = run.pick(run.catalog.stores)
        if self.incidents is not None and self.incidents.store_is_dark(store, t):
            return
        category = run.pick(self._expensive)
        lines = self._basket(store, 1 + int(run.random() * 3), category)
        if lines:
            payment = {"method": "card", "card_token": token, "card_bin": card_bin}
            payment["entry_mode"] = "manual" if run.random() < 0.7 else "swipe"
            case = self.fraud.open_case("stolen_card_store", "card", token, t)
            self._sale(store, lines, payment, None, t, fraud=True, case=case)

    def manual_high_value(self, t: float) -> None:
        """A stolen card keyed in by hand for several expensive items (always manual, always high value)."""
        run = self.run
        token, card_bin, _ = self.fraud.stolen_card()
        store = run.pick(run.catalog.stores)
        if self.incidents is not None and self.incidents.store_is_dark(store, t):
            return
        lines = self._basket(store, 2 + int(run.random() * 3), run.pick(self._expensive))
        if lines:
            payment = {"method": "card", "card_token": token, "card_bin": card_bin, "entry_mode": "manual"}
            case = self.fraud.open_case("manual_high_value", "card", token, t)
            self._sale(store, lines, payment, None, t, fraud=True, scenario="manual_high_value", case=case)

    def refund_abuse(self, t: float) -> None:
        """One cashier refunds goods without receipts, again and again, in cash or onto gift cards."""
        run = self.run
        store = run.pick(run.catalog.stores)
        if self.incidents is not None and self.incidents.store_is_dark(store, t):
            return
        cashier = run.pick(self._cashiers[store])
        register = run.pick(self._registers[store])
        case = self.fraud.open_case("refund_abuse", "cashier", f"{store}/{cashier}", t)
        for _ in range(8 + int(run.random() * 8)):
            lines = [(run.catalog.draw_in_store(run.rng, run.pick(self._expensive)), 1)]
            payment = {"method": "cash"} if run.random() < 0.5 else {"method": "gift_card"}
            if self.incidents is None or not self.incidents.store_is_dark(store, t):
                self._return(store, lines, payment, None, None, t, fraud=True, till=(register, cashier), case=case)
            t += run.uniform(60.0, 300.0)

    def return_goods(self, t: float) -> None:
        """Goods brought back: mostly with the receipt of a recent sale, sometimes without."""
        run = self.run
        if self._recent_sales and run.random() < 0.75:
            store, original_txn_id, sold, payment, customer_id = run.pick(self._recent_sales)
            product, qty = run.pick(sold)
            lines = [(product, 1 + int(run.random() * qty))]
            if self.incidents is None or not self.incidents.store_is_dark(store, t):
                self._return(store, lines, payment, customer_id, original_txn_id, t, fraud=False)
            return
        # Without receipt: refunded in cash or on a gift card; a known fraud pattern.
        store = run.pick(run.catalog.stores)
        if self.incidents is not None and self.incidents.store_is_dark(store, t):
            return
        lines = [(run.catalog.draw_in_store(run.rng), 1 + int(run.random() * 2))]
        payment = {"method": "cash"} if run.random() < 0.6 else {"method": "gift_card"}
        self._return(store, lines, payment, None, None, t, fraud=run.random() < 0.3)

    # --- event kinds ----------------------------------------------------------

    def _basket(self, store: str, size: int, category: str | None) -> list[tuple[Product, int]]:
        run = self.run
        on_hand = run.on_hand
        basket: dict[str, tuple[Product, int]] = {}
        for _ in range(size):
            product = run.catalog.draw_in_store(run.rng, category)
            qty = min(1 if run.random() < 0.8 else 2 + int(run.random() * 3), on_hand.get((product.sku, store), 0))
            if qty > 0 and product.sku not in basket:
                basket[product.sku] = (product, qty)
        return list(basket.values())

    def _till(
        self, store: str, customer_id: str | None, t: float, till: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        run = self.run
        if till is None:
            register, cashier = run.pick(self._registers[store]), run.pick(self._cashiers[store])
        else:
            register, cashier = till
        if self.incidents is not None and self.incidents.register_is_silent(register, t):
            registers = self._registers[store]
            register = registers[(registers.index(register) + 1) % len(registers)]  # the till next to it
        fields: dict[str, Any] = {
            "store_id": store,
            "register_id": register,
            "cashier_id": cashier,
            "txn_id": run.new_id("T"),
            "currency": run.currency,
        }
        if customer_id is not None:
            fields["customer_id"] = customer_id
        return fields

    def amount_outlier(self, t: float) -> None:
        """A shopper's card pays far more than anyone's basket: the benchmark's amount-outlier fraud."""
        run = self.run
        shopper = run.pick(run.shoppers)
        store = run.pick(run.catalog.stores)
        if self.incidents is not None and self.incidents.store_is_dark(store, t):
            return
        lines = self._basket(store, 1 + int(run.random() * 3), run.pick(self._expensive))
        if lines:
            scale = max(1, math.ceil(OUTLIER_AMOUNT / max(1.0, sum(p.price * qty for p, qty in lines))))
            lines = [(p, qty * scale) for p, qty in lines]
            payment = _till_payment(run, shopper.card_token, shopper.card_bin)
            case = self.fraud.open_case("amount_outlier", "card", shopper.card_token, t)
            self._sale(store, lines, payment, None, t, fraud=True, scenario="amount_outlier", case=case)

    def compromise_terminal(self, t: float) -> None:
        """A register is skimmed: its card payments are fraud for `terminal_compromise_s` (benchmark: 28 days)."""
        run = self.run
        store = run.pick(run.catalog.stores)
        self.fraud.compromise_terminal(store, run.pick(self._registers[store]), t, self.terminal_compromise_s)

    def compromise_card(self, t: float) -> None:
        """A shopper's card details leak: a third of its payments for `card_compromise_s` (14 days) are fraud, x5."""
        run = self.run
        self.fraud.compromise_card(run.pick(run.shoppers).card_token, t, self.card_compromise_s)

    def sell_to(self, shopper: Shopper, lines: list[tuple[Product, int]], t: float) -> None:
        """`shopper` buys `lines` at their home store at `t`, with their loyalty id (a cross-channel journey)."""
        payment = _till_payment(self.run, shopper.card_token, shopper.card_bin)
        self._sale(shopper.home_store, lines, payment, shopper.user_id, t, fraud=False)

    def _sale(
        self,
        store: str,
        lines: list[tuple[Product, int]],
        payment: dict[str, Any],
        customer_id: str | None,
        t: float,
        fraud: bool,
        scenario: str = "stolen_card_store",
        case: FraudCase | None = None,
    ) -> None:
        run = self.run
        fields = self._till(store, customer_id, t)
        txn_id = fields["txn_id"]
        token = payment.get("card_token")
        if not fraud and token and (self.fraud.terminals or self.fraud.cards):  # benchmark scenarios switched on
            case = self.fraud.terminal_case(fields["register_id"], t)
            if case is not None:
                fraud, scenario = True, case.scenario
            elif (case := self.fraud.card_case(token, t)) is not None and run.random() < 1 / 3:
                fraud, scenario, customer_id = True, case.scenario, None
                fields.pop("customer_id", None)  # the fraudster is not the card's owner
                lines = [(p, qty * 5) for p, qty in lines]
        fields["items"] = [{"sku": p.sku, "qty": qty, "unit_price": p.price} for p, qty in lines]
        fields["total"] = round(sum(p.price * qty for p, qty in lines), 2)
        fields["payment"] = payment
        effects: tuple[Effect, ...] = tuple((p.sku, store, -qty, t, MOVEMENT) for p, qty in lines)
        publish_at = None
        if run.random() < self.void_rate:
            void_ts = t + run.uniform(5.0, 120.0)
            void = {k: fields[k] for k in ("store_id", "register_id", "cashier_id", "currency")}
            void["txn_id"] = run.new_id("T")
            void["original_txn_id"] = txn_id
            if customer_id is not None:
                void["customer_id"] = customer_id
            void_effects = tuple((p.sku, store, qty, void_ts, MOVEMENT) for p, qty in lines)
            if self.incidents is not None and self.incidents.store_is_dark(store, void_ts):
                void_effects = ()  # the till went down before the void was rung up: the sale stands
            else:
                run.emit(Topic.POS, store.encode(), "void", void_ts, void, effects=void_effects)
            if run.random() < self.early_void_rate:
                publish_at = void_ts + run.uniform(1.0, 30.0)  # the sale reaches Kafka after its void
        else:
            self._recent_sales.append((store, txn_id, lines, payment, customer_id))
        run.emit(Topic.POS, store.encode(), "sale", t, fields, publish_at=publish_at, effects=effects)
        if payment.get("card_token"):
            self.fraud.paid("txn_id", txn_id, t, fraud, scenario, case)

    def _return(
        self,
        store: str,
        lines: list[tuple[Product, int]],
        payment: dict[str, Any],
        customer_id: str | None,
        original_txn_id: str | None,
        t: float,
        fraud: bool,
        till: tuple[str, str] | None = None,
        case: FraudCase | None = None,
    ) -> None:
        run = self.run
        fields = self._till(store, customer_id, t, till)
        fields["items"] = [{"sku": p.sku, "qty": qty, "unit_price": p.price} for p, qty in lines]
        fields["total"] = round(sum(p.price * qty for p, qty in lines), 2)
        fields["payment"] = payment
        if original_txn_id is not None:
            fields["original_txn_id"] = original_txn_id
        effects = tuple((p.sku, store, qty, t, MOVEMENT) for p, qty in lines)
        run.emit(Topic.POS, store.encode(), "return", t, fields, effects=effects)
        if fraud:
            scenario = "noreceipt_return" if case is None else case.scenario
            self.fraud.paid("txn_id", fields["txn_id"], t, fraud=True, scenario=scenario, case=case)


OUTLIER_AMOUNT = 10_000.0
"""An amount-outlier fraud's basket is scaled up to at least this: an amount above any shopper's habit."""


def _till_payment(run: Run, token: str | None, card_bin: str) -> dict[str, Any]:
    roll = run.random()
    if roll < 0.55:
        return {
            "method": "card",
            "card_token": token or card_token(run.rng),
            "card_bin": card_bin,
            "entry_mode": run.pick(_ENTRY_MODES),
        }
    if roll < 0.85:
        return {"method": "cash"}
    if roll < 0.97:
        return {"method": "wallet", "card_token": token or card_token(run.rng), "entry_mode": "contactless"}
    return {"method": "gift_card"}
