"""Loyalty members and marketing campaigns: identity links, redemptions, UTM-tagged visits with a planted effect.

Registered shoppers are loyalty members in store already (`customer_id` = their `user_id` on
till sales); `Members` joins their web/app account to the member the first time they shop
online (`identity_link`), and has members spend points online and in store (`redemption`,
as the API publishes it; the simulator does not know balances, so some are refused).

`Campaigns` tags a share of web sessions with UTM parameters (or a referrer) and plants an
effect: sessions of `PLANTED_CAMPAIGN` convert more often, so the attribution flow's data-driven
model must rank it first (benchmarks and tests check). Both draw from their own random
generator, so the rest of the stream's choices are not shifted; only the planted lift changes
which sessions end in an order.
"""

from __future__ import annotations

import random
from typing import Any

from events.topics import Topic
from sim.run import Run
from sim.shoppers import Shopper

PLANTED_CAMPAIGN = "black-friday"
CAMPAIGNS: tuple[tuple[str, str, str], ...] = (
    ("newsletter", "email", PLANTED_CAMPAIGN),
    ("google", "cpc", "brand-search"),
    ("facebook", "social", "winter-looks"),
    ("tiktok", "social", "teens"),
    ("cashback-club", "affiliate", "cashback"),
)
REFERRERS = ("https://www.fashionblog.example/top-10", "https://deals.example/today")
REDEEM_POINTS = (50, 100, 200, 500, 1000)


class Campaigns:
    """UTM tags for web sessions, and the planted lift of one campaign.

    Parameters
    ----------
    seed
        Seed of the stream (the generator is its own, derived from it).
    tagged_rate
        Share of sessions that arrive from a campaign (UTM tags) or a referral.
    lift
        Chance that a session of the planted campaign that would not have bought goes on to buy.
    """

    def __init__(self, seed: int, tagged_rate: float = 0.45, lift: float = 0.6) -> None:
        self.rng = random.Random(f"campaigns-{seed}")
        self.tagged_rate = tagged_rate
        self.lift = lift

    def tags(self) -> dict[str, Any]:
        """The landing page's tags for one session (empty: a direct visit)."""
        rng = self.rng
        roll = rng.random()
        if roll >= self.tagged_rate:
            return {}
        if roll < self.tagged_rate * 0.15:
            return {"referrer": rng.choice(REFERRERS)}
        source, medium, campaign = rng.choice(CAMPAIGNS)
        return {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign,
                "utm_content": f"v{rng.randint(1, 3)}"}  # fmt: skip

    def lifted(self, tags: dict[str, Any]) -> bool:
        """Whether the planted campaign turns this session's "no" into a "yes"."""
        return tags.get("utm_campaign") == PLANTED_CAMPAIGN and self.rng.random() < self.lift


class Members:
    """Identity links and redemptions of loyalty members (registered shoppers).

    Parameters
    ----------
    run
        The stream's shared state (its clock and schedule; its random generator is not used).
    link_rate
        Chance that a member's online visit links the account, until it is linked.
    online_redeem_rate
        Chance that a linked member's online visit spends points.
    store_redeem_rate
        Chance that a member's till sale spends points.
    """

    def __init__(self, run: Run, link_rate: float = 0.5, online_redeem_rate: float = 0.03,
                 store_redeem_rate: float = 0.02) -> None:  # fmt: skip
        self.run = run
        self.rng = random.Random(f"members-{run.seed}")
        self.link_rate = link_rate
        self.online_redeem_rate = online_redeem_rate
        self.store_redeem_rate = store_redeem_rate
        self.linked: set[str] = set()
        self.redemptions = 0

    def link(self, t: float, shopper: Shopper) -> None:
        """Maybe join `shopper`'s account to their member id (once), just before their visit at `t`."""
        if shopper.user_id in self.linked or self.rng.random() >= self.link_rate:
            return
        self.linked.add(shopper.user_id)
        fields = {"user_id": shopper.user_id, "customer_id": shopper.user_id, "channel": shopper.channel}
        self.run.emit(Topic.MEMBERS, shopper.user_id.encode(), "identity_link", t - 1.0, fields)

    def redeem(self, t: float, customer_id: str, channel: str, online: bool) -> None:
        """Maybe spend points at `t` (a request the flow will accept or refuse)."""
        if self.rng.random() >= (self.online_redeem_rate if online else self.store_redeem_rate):
            return
        if online and customer_id not in self.linked:
            return
        self.redemptions += 1
        redemption_id = f"rd-sim-{self.run.seed}-{self.redemptions}"
        fields = {"customer_id": customer_id, "redemption_id": redemption_id,
                  "points": self.rng.choice(REDEEM_POINTS), "channel": channel}  # fmt: skip
        self.run.emit(Topic.MEMBERS, customer_id.encode(), "redemption", t, fields)
