"""Customer journeys across channels, for the customers flow: carts left or bought in store,
declined payments recovered or not, consent changes, regulars who lapse and come back.

Off by default (`Workload(customer_journey_rate=0)`), so the stream every other benchmark
reads stays byte for byte what it was; `omnistream simulate` and `up --simulate` switch it on.
"""

from __future__ import annotations

from typing import Any

from events.topics import Topic
from sim.run import Run
from sim.shoppers import Shopper
from sim.tills import Tills


class CustomerJourneys:
    """One journey per call, of a registered shopper, at event time `t`.

    Parameters
    ----------
    run
        The stream's shared state.
    tills
        Rings up the in-store half of a cross-channel journey.
    lapsing_share
        Share of shoppers who stop buying for a long while (their journeys are skipped
        for a stretch of event time, then resume: at risk, lapsed, won back).
    """

    def __init__(self, run: Run, tills: Tills, lapsing_share: float = 0.2) -> None:
        self.run = run
        self.tills = tills
        self.lapsing_share = lapsing_share

    def journey(self, t: float) -> None:
        """A cart online, then: bought in store, bought online, left; or a checkout whose payment fails."""
        run, random = self.run, self.run.random
        shopper = run.pick(run.shoppers)
        if self._lapsed(shopper, t):
            return
        product = run.pick(run.catalog.products)
        common = self._common(shopper)
        key = shopper.user_id.encode()
        clicks = Topic.CLICKSTREAM
        run.emit(clicks, key, "product_view", t, {"sku": product.sku}, None, (), common)
        t += run.uniform(5.0, 60.0)
        run.emit(clicks, key, "add_to_cart", t, {"sku": product.sku, "qty": 1}, None, (), common)
        roll = random()
        if roll < 0.3 and run.catalog.in_stores(product):
            # Cross-channel: the item is bought in the shopper's store within the hour.
            self.tills.sell_to(shopper, [(product, 1)], t + run.uniform(300.0, 1800.0))
        elif roll < 0.55:
            ref = run.new_id("O")
            fields: dict[str, Any] = {"payment_ref": ref, "amount": product.price, "currency": run.currency}
            t += run.uniform(30.0, 120.0)
            run.emit(clicks, key, "payment_result", t, {**fields, "status": "declined", "decline_code": "do_not_honor"},
                     None, (), common)  # fmt: skip
            if random() < 0.5:  # tried another card a little later
                run.emit(clicks, key, "payment_result", t + run.uniform(20.0, 300.0), {**fields, "status": "approved"},
                         None, (), common)  # fmt: skip
        # else: the cart is left alone

    def consent(self, t: float) -> None:
        """A shopper changes their marketing consent (mostly opting out)."""
        run = self.run
        shopper = run.pick(run.shoppers)
        fields = {"customer_id": shopper.user_id, "marketing": run.random() < 0.3, "source": "web"}
        run.emit(Topic.CUSTOMERS, shopper.user_id.encode(), "consent", t, fields)

    def _common(self, shopper: Shopper) -> dict[str, Any]:
        return {"session_id": self.run.new_id("S"), "user_id": shopper.user_id, "channel": shopper.channel,
                "device_id": shopper.device_id, "ip_country": shopper.country}  # fmt: skip

    def _lapsed(self, shopper: Shopper, t: float) -> bool:
        """Whether a lapsing shopper is in a quiet stretch at `t` (a fixed, id-derived schedule)."""
        digest = sum(shopper.user_id.encode())
        if digest % 100 >= self.lapsing_share * 100:
            return False
        period_s = 3 * 86_400.0
        return (t + digest * 3_600.0) % period_s < period_s * 0.6
