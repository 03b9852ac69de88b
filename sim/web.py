"""Web and app traffic: browsing sessions that end in online orders, and card-testing fraud.

A session stays inside one category, mostly one the shopper prefers, and draws
its products by popularity within it: items viewed together are related, which
is the co-visitation signal the recommender learns from. Session events are
spread over seconds to minutes, so many sessions interleave in the stream.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from typing import Any

from events.topics import Topic
from sim.catalog import Product
from sim.fraud import FRAUD_COUNTRIES, FraudCase, FraudDesk
from sim.loyalty import Campaigns, Members
from sim.run import Run
from sim.shoppers import Shopper, card_token
from sim.stockroom import Stockroom

_PAGES = ("/", "/", "/deals", "/account", "/stores")
_VARIANTS = ("control", "covisit")
_EXPENSIVE = ("phones", "computers", "electronics", "audio")


class WebShop:
    """Publishes `omni.clickstream` sessions; their orders are settled by the stockroom.

    Parameters
    ----------
    run
        The stream's shared state.
    stockroom
        Picks or cancels each order at its fulfilment location.
    fraud
        Records which orders are fraudulent.
    early_order_rate
        Share of orders whose first fulfilment or cancel is published before the
        purchase itself (the inventory topic ran ahead of the clickstream topic).
    anonymous_rate
        Share of sessions without a logged-in user (keyed by `session_id`).
    """

    def __init__(
        self,
        run: Run,
        stockroom: Stockroom,
        fraud: FraudDesk,
        early_order_rate: float,
        anonymous_rate: float = 0.3,
        members: Members | None = None,
        campaigns: Campaigns | None = None,
    ) -> None:
        self.run = run
        self.members = members
        self.campaigns = campaigns
        self.stockroom = stockroom
        self.fraud = fraud
        self.early_order_rate = early_order_rate
        self.anonymous_rate = anonymous_rate
        self._expensive = [c for c in _EXPENSIVE if c in run.catalog.categories] or run.catalog.categories
        # Shoppers who recently ordered online: an account worth taking over has a history to hijack.
        self._recent_buyers: deque[Shopper] = deque(maxlen=2048)

    def session(self, t: float) -> None:
        """One shopper's visit starting at `t`: pages, searches, product views, cart, maybe an order."""
        run, random, catalog = self.run, self.run.random, self.run.catalog
        session_id = run.new_id("S")
        if random() < self.anonymous_rate:
            shopper = None
            category = run.pick(catalog.categories)
            channel = "web" if random() < 0.7 else "app"
            common: dict[str, Any] = {"session_id": session_id, "user_id": None, "channel": channel}
            common["device_id"] = f"D-{run.rng.getrandbits(40):010x}"
            common["ip_country"] = "US"
            key = session_id.encode()
        else:
            shopper = run.pick(run.shoppers)
            tastes = shopper.categories
            category = tastes[int(random() * len(tastes))] if random() < 0.9 else run.pick(catalog.categories)
            common = {"session_id": session_id, "user_id": shopper.user_id, "channel": shopper.channel}
            common["device_id"] = shopper.device_id
            common["ip_country"] = shopper.country
            key = shopper.user_id.encode()
            if self.members is not None:
                self.members.link(t, shopper)
                self.members.redeem(t, shopper.user_id, shopper.channel, online=True)

        emit = run.emit
        clicks = Topic.CLICKSTREAM
        path = f"/c/{category}" if random() < 0.5 else run.pick(_PAGES)
        tags = self.campaigns.tags() if self.campaigns is not None else {}
        emit(clicks, key, "page_view", t, {"path": path, **tags} if tags else {"path": path}, None, (), common)
        if random() < 0.4:
            t += 2.0 + 13.0 * random()
            emit(clicks, key, "search", t, {"query": category.replace("-", " ")}, None, (), common)
        cart: dict[str, tuple[Product, int]] = {}
        in_category, cum = catalog.popularity_of(category)  # catalog.draw, unrolled: most events are views
        top, weight = len(cum) - 1, cum[-1]
        for _ in range(1 + int(random() * 7)):
            t += 3.0 + 42.0 * random()
            product = in_category[bisect_right(cum, random() * weight, 0, top)]
            fields: dict[str, Any] = {"sku": product.sku}
            if random() < 0.1:
                fields["rec_request_id"] = run.new_id("rec")
                fields["variant"] = run.pick(_VARIANTS)
            emit(clicks, key, "product_view", t, fields, None, (), common)
            if random() < 0.2 and product.sku not in cart:
                qty = 1 if random() < 0.8 else 2 + int(random() * 2)
                t += 2.0 + 18.0 * random()
                emit(clicks, key, "add_to_cart", t, {"sku": product.sku, "qty": qty}, None, (), common)
                cart[product.sku] = (product, qty)
        if cart and random() < 0.1:
            product, qty = cart.pop(run.pick(list(cart)))
            t += run.uniform(2.0, 30.0)
            emit(clicks, key, "remove_from_cart", t, {"sku": product.sku, "qty": qty}, None, (), common)
        if not cart or (random() >= 0.5 and not self._lifted(tags)):
            return
        lines = list(cart.values())
        t += run.uniform(5.0, 60.0)
        emit(clicks, key, "checkout_started", t, {"cart_value": _total(lines)}, None, (), common)
        if random() < 0.7 or self._lifted(tags):
            t += run.uniform(20.0, 180.0)
            if shopper is None:
                payment = {"method": "card", "card_token": card_token(run.rng), "card_bin": "411111"}
                payment["billing_country"] = "US"
                location_id = run.pick(catalog.warehouses)
            else:
                payment = _payment(run, shopper.card_token, shopper.card_bin, shopper.country)
                pickup = random() < 0.2 and all(catalog.in_stores(p) for p, _ in lines)
                location_id = shopper.home_store if pickup else shopper.warehouse
                self._recent_buyers.append(shopper)
            self._purchase(key, common, lines, payment, location_id, common["ip_country"], t, fraud=False)

    def _lifted(self, tags: dict[str, Any]) -> bool:
        return self.campaigns is not None and bool(tags) and self.campaigns.lifted(tags)

    def fraud_burst(self, t: float) -> None:
        """Card testing: a stolen card tries small orders, then large ones, from abroad, within minutes."""
        run = self.run
        token, card_bin, billing_country = self.fraud.stolen_card()
        country = run.pick(FRAUD_COUNTRIES)
        case: FraudCase | None = None
        for attempt in range(3 + int(run.random() * 4)):
            session_id = run.new_id("S")
            common: dict[str, Any] = {"session_id": session_id, "user_id": None, "channel": "web"}
            common["device_id"] = f"D-{run.rng.getrandbits(40):010x}"
            common["ip_country"] = country
            key = session_id.encode()
            category = run.pick(self._expensive) if attempt >= 2 else run.pick(run.catalog.categories)
            product = run.catalog.draw(run.rng, category)
            qty = 1 if attempt < 2 else 2 + int(run.random() * 3)
            run.emit(Topic.CLICKSTREAM, key, "product_view", t, {**common, "sku": product.sku})
            t += run.uniform(2.0, 10.0)
            run.emit(Topic.CLICKSTREAM, key, "add_to_cart", t, {**common, "sku": product.sku, "qty": qty})
            t += run.uniform(5.0, 30.0)
            payment = {"method": "card", "card_token": token, "card_bin": card_bin, "billing_country": billing_country}
            location_id = run.pick(run.catalog.warehouses)
            case = case or self.fraud.open_case("card_testing", "card", token, t)
            self._purchase(key, common, [(product, qty)], payment, location_id, country, t, True, "card_testing", case)
            t += run.uniform(20.0, 120.0)

    def account_takeover(self, t: float) -> None:
        """A hijacked account: known shopper, new device, foreign country, big orders on the stored card.

        Nothing happens while no shopper has ordered yet (there is no account worth taking over).
        """
        run = self.run
        if not self._recent_buyers:
            return
        victim = run.pick(self._recent_buyers)
        country = run.pick([c for c in FRAUD_COUNTRIES if c != victim.country])
        device_id = f"D-{run.rng.getrandbits(40):010x}"
        key = victim.user_id.encode()
        case = self.fraud.open_case("account_takeover", "user", victim.user_id, t)
        for _ in range(1 + int(run.random() * 3)):
            common: dict[str, Any] = {"session_id": run.new_id("S"), "user_id": victim.user_id, "channel": "web"}
            common |= {"device_id": device_id, "ip_country": country}
            run.emit(Topic.CLICKSTREAM, key, "page_view", t, {"path": "/account"}, None, (), common)
            lines = []
            for _ in range(1 + int(run.random() * 3)):
                t += run.uniform(5.0, 40.0)
                product = run.catalog.draw(run.rng, run.pick(self._expensive))
                run.emit(Topic.CLICKSTREAM, key, "add_to_cart", t, {"sku": product.sku, "qty": 1}, None, (), common)
                lines.append((product, 1))
            t += run.uniform(20.0, 90.0)
            payment = {"method": "card", "card_token": victim.card_token, "card_bin": victim.card_bin}
            payment["billing_country"] = victim.country
            location_id = run.pick(run.catalog.warehouses)
            self._purchase(key, common, lines, payment, location_id, country, t, True, "account_takeover", case)
            t += run.uniform(120.0, 900.0)

    def _purchase(
        self,
        key: bytes,
        common: dict[str, Any],
        lines: list[tuple[Product, int]],
        payment: dict[str, Any],
        location_id: str,
        shipping_country: str,
        t: float,
        fraud: bool,
        scenario: str = "other",
        case: FraudCase | None = None,
    ) -> None:
        run = self.run
        order_id = run.new_id("O")
        early = run.random() < self.early_order_rate
        delay_s = run.uniform(1.0, 20.0) if early else run.uniform(30.0, 900.0)
        first = self.stockroom.settle_order(order_id, location_id, lines, t, delay_s)
        # Held back behind its own fulfilment or cancel: consumers see the inventory side first.
        publish_at = first + run.uniform(1.0, 60.0) if early and first is not None else None
        fields = {
            **common,
            "order_id": order_id,
            "items": [{"sku": p.sku, "qty": qty, "unit_price": p.price} for p, qty in lines],
            "total": _total(lines),
            "currency": run.currency,
            "fulfilment_location_id": location_id,
            "payment": payment,
            "shipping_country": shipping_country,
        }
        run.emit(Topic.CLICKSTREAM, key, "purchase", t, fields, publish_at=publish_at)
        self.fraud.paid("order_id", order_id, t, fraud, scenario, case)


def _total(lines: list[tuple[Product, int]]) -> float:
    return round(sum(p.price * qty for p, qty in lines), 2)


def _payment(run: Run, token: str, card_bin: str, country: str) -> dict[str, Any]:
    roll = run.random()
    if roll < 0.75:
        return {"method": "card", "card_token": token, "card_bin": card_bin, "billing_country": country}
    if roll < 0.95:
        return {"method": "wallet", "card_token": token, "billing_country": country}
    return {"method": "gift_card", "billing_country": country}
