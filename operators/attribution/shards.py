"""The attribution flow's shard state: shoppers' journeys (by account), members' journeys, and the totals.

`ActorShard` holds web/app actors (an account `u:<user_id>`, or an anonymous session
`s:<session_id>`): their touchpoints until the account is linked to a member, and the link.
Once linked, the account's touchpoints and orders go to the member's journey in
`MemberShard`, where the member's store sales (`customer_id` on a till sale) convert too, once
the member has a linked account (a member who never linked one has no visits to credit).
`AttributionTotals` (one key) credits every converted path under every heuristic model and
dimension, and keeps per-day totals and path counts (the Markov model's input) for the API.

Pure logic: no I/O; time is event time. The records between stages are named tuples: the flow
makes one per clickstream event, and a tuple is the cheapest record Python builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from operators.attribution.journeys import DIMENSIONS, Abandoned, Conversion, Converted, Journey, Touch, touch_of
from operators.attribution.models import HEURISTIC_MODELS, credit

PRUNE_EVERY_S = 3_600.0
OTHER_PATHS = "(other paths)"


class ClickSeen(NamedTuple):
    """A clickstream event of an actor: maybe a touchpoint (tags, referrer, a new session)."""

    actor: str
    session_id: str
    ts: float
    event_id: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    referrer: str | None


class OrderSeen(NamedTuple):
    """An online order of an actor."""

    actor: str
    conversion: Conversion


class Linked(NamedTuple):
    """Account actor `actor` (`u:<user_id>`) belongs to member `customer_id`."""

    actor: str
    customer_id: str
    ts: float


class ForMember(NamedTuple):
    """Touchpoints, a link or a conversion bound for a member's journey.

    `linked` marks that an account was linked to the member; a store sale (`in_store`) converts
    only a member with a linked account (without one, no campaign visit can be the member's).
    """

    customer_id: str
    touches: tuple[Touch, ...] = ()
    conversion: Conversion | None = None
    linked: bool = False
    in_store: bool = False


class Clock(NamedTuple):
    """The event-time clock (the newest event time the decoder saw)."""

    ts: float


@dataclass
class _Actor:
    journey: Journey = field(default_factory=Journey)
    customer_id: str | None = None
    active: float = 0.0


@dataclass
class ActorShard:
    """Actors' journeys until linked; `apply` returns (items for member journeys, converted/abandoned paths)."""

    lookback_s: float
    actors: dict[str, _Actor] = field(default_factory=dict)
    now: float = 0.0
    pruned_at: float = 0.0

    def apply(self, items: list[Any]) -> tuple[list[ForMember], list[Converted | Abandoned]]:
        to_members: list[ForMember] = []
        paths: list[Converted | Abandoned] = []
        for item in items:
            kind = type(item)
            if kind is Clock:
                self._advance(item.ts, paths)
                continue
            actor = self.actors.get(item.actor)
            if actor is None:
                actor = self.actors[item.actor] = _Actor()
            if kind is ClickSeen:
                click: ClickSeen = item
                actor.active = max(actor.active, click.ts)
                new_session = click.session_id != actor.journey.last_session
                actor.journey.last_session = click.session_id
                touch = touch_of(click.ts, click.event_id, click.utm_source, click.utm_medium, click.utm_campaign,
                                 click.referrer, new_session)  # fmt: skip
                if touch is None:
                    continue
                if actor.customer_id is not None:
                    to_members.append(ForMember(actor.customer_id, touches=(touch,)))
                else:
                    actor.journey.add(touch)
            elif kind is OrderSeen:
                order: OrderSeen = item
                actor.active = max(actor.active, order.conversion.ts)
                if actor.customer_id is not None:
                    to_members.append(ForMember(actor.customer_id, conversion=order.conversion))
                else:
                    converted = actor.journey.convert(order.conversion, item.actor, self.lookback_s)
                    if converted is not None:
                        paths.append(converted)
            else:
                link: Linked = item
                if actor.customer_id is None:
                    actor.customer_id = link.customer_id
                    to_members.append(ForMember(link.customer_id, touches=tuple(actor.journey.touches), linked=True))
                    actor.journey.touches = []
        return to_members, paths

    def _advance(self, now: float, paths: list[Converted | Abandoned]) -> None:
        self.now = max(self.now, now)
        if self.now - self.pruned_at < PRUNE_EVERY_S:
            return
        self.pruned_at = self.now
        for key, actor in list(self.actors.items()):
            abandoned = actor.journey.expire(self.now, self.lookback_s, key)
            if abandoned is not None:
                paths.append(abandoned)
            if actor.customer_id is None and not actor.journey.touches and actor.active < self.now - self.lookback_s:
                del self.actors[key]  # an unlinked actor with nothing open: nothing left to remember


@dataclass
class MemberShard:
    """Members' journeys: touchpoints of every linked account, conversions online and in store."""

    lookback_s: float
    journeys: dict[str, Journey] = field(default_factory=dict)
    now: float = 0.0
    pruned_at: float = 0.0

    def apply(self, items: list[Any]) -> list[Converted | Abandoned]:
        paths: list[Converted | Abandoned] = []
        for item in items:
            if type(item) is Clock:
                self.now = max(self.now, item.ts)
                if self.now - self.pruned_at >= PRUNE_EVERY_S:
                    self.pruned_at = self.now
                    for customer_id, journey in self.journeys.items():
                        abandoned = journey.expire(self.now, self.lookback_s, f"c:{customer_id}")
                        if abandoned is not None:
                            paths.append(abandoned)
                continue
            bound: ForMember = item
            found = self.journeys.get(bound.customer_id)
            journey = found if found is not None else self.journeys.setdefault(bound.customer_id, Journey())
            journey.linked = journey.linked or bound.linked
            for touch in bound.touches:
                journey.add(touch)
            if bound.conversion is not None and (journey.linked or not bound.in_store):
                converted = journey.convert(bound.conversion, f"c:{bound.customer_id}", self.lookback_s)
                if converted is not None:
                    paths.append(converted)
        return paths


def day_of(ts: float) -> str:
    """The UTC day of `ts`, `YYYY-MM-DD` (the totals' bucket).

    >>> day_of(1795305600.0)
    '2026-11-22'
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass
class DayTotals:
    """One day's conversions, revenue, heuristic credits and path counts, per dimension."""

    day: str
    version: int = 0
    conversions: int = 0
    revenue: float = 0.0
    credits: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    paths: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def doc(self) -> dict[str, Any]:
        return {"day": self.day, "conversions": self.conversions, "revenue": round(self.revenue, 2),
                "credits": self.credits, "paths": self.paths}  # fmt: skip


@dataclass
class AttributionTotals:
    """Credits every converted path and keeps per-day totals (one key of the flow sees them all).

    Parameters
    ----------
    half_life_s
        The time-decay model's half-life.
    max_paths
        Distinct paths kept per day and dimension; further ones are counted under `(other paths)`.
    max_path_touches
        Touchpoints of a path kept for the Markov model (the newest ones).
    retention_s
        Event time a day's totals are kept.

    Examples
    --------
    >>> totals = AttributionTotals(half_life_s=86_400.0)
    >>> t = (Touch(0.0, "google", "cpc", "brand", "t1"), Touch(60.0, "mail", "email", "xmas", "t2"))
    >>> days, orders = totals.apply([Converted(Conversion("O1", 120.0, 40.0, "web"), "u:1", t)])
    >>> days[0].credits["campaign"]["linear"], orders[0]["credits"]["medium"]["last_non_direct"]
    ({'brand': [0.5, 20.0], 'xmas': [0.5, 20.0]}, {'email': 1.0})
    """

    half_life_s: float
    max_paths: int = 5_000
    max_path_touches: int = 20
    retention_s: float = 400 * 86_400.0
    days: dict[str, DayTotals] = field(default_factory=dict)
    now: float = 0.0

    def apply(self, items: list[Converted | Abandoned | Clock]) -> tuple[list[DayTotals], list[dict[str, Any]]]:
        changed: dict[str, DayTotals] = {}
        orders: list[dict[str, Any]] = []
        for item in items:
            if type(item) is Clock:
                self._advance(item.ts)
                continue
            if type(item) is Converted:
                converted: Converted = item
                day = self._day(converted.conversion.ts)
                orders.append(self._credit(day, converted))
            else:
                abandoned: Abandoned = item  # type: ignore[assignment]
                day = self._day(abandoned.path[-1].ts)
                self._count_path(day, abandoned.path, 0, 1, 0.0)
            day.version += 1
            changed[day.day] = day
        return list(changed.values()), orders

    def _day(self, ts: float) -> DayTotals:
        key = day_of(ts)
        day = self.days.get(key)
        if day is None:
            day = self.days[key] = DayTotals(key)
        return day

    def _credit(self, day: DayTotals, converted: Converted) -> dict[str, Any]:
        conversion, path = converted.conversion, converted.path
        day.conversions += 1
        day.revenue += conversion.revenue
        ages = [conversion.ts - t.ts for t in path]
        shares_by: dict[str, dict[str, dict[str, float]]] = {}
        for by in DIMENSIONS:
            channels = [t.channel(by) for t in path]
            per_model = day.credits.setdefault(by, {})
            shares_by[by] = {}
            only = channels[0] if len(set(channels)) == 1 else None  # one channel: every model gives it all
            for model in HEURISTIC_MODELS:
                shares = {only: 1.0} if only is not None else credit(model, channels, ages, self.half_life_s)
                shares_by[by][model] = shares
                tally = per_model.setdefault(model, {})
                for channel, share in shares.items():
                    cell = tally.setdefault(channel, [0.0, 0.0])
                    cell[0] += share
                    cell[1] += share * conversion.revenue
        self._count_path(day, path, 1, 0, conversion.revenue)
        return {
            "order_id": conversion.order_id,
            "journey": converted.journey,
            "channel": conversion.channel,
            "ts": conversion.ts,
            "revenue": conversion.revenue,
            "path": [{"ts": t.ts, "source": t.source, "medium": t.medium, "campaign": t.campaign} for t in path],
            "credits": shares_by,
        }

    def _count_path(
        self, day: DayTotals, path: tuple[Touch, ...], conversions: int, nulls: int, revenue: float
    ) -> None:
        kept = path[-self.max_path_touches :]
        for by in DIMENSIONS:
            counts = day.paths.setdefault(by, {})
            key = ">".join(t.channel(by) for t in kept)
            if key not in counts and len(counts) >= self.max_paths:
                key = OTHER_PATHS
            cell = counts.get(key)
            if cell is None:
                cell = counts[key] = [0.0, 0.0, 0.0]
            cell[0] += conversions
            cell[1] += nulls
            cell[2] += revenue

    def _advance(self, now: float) -> None:
        self.now = max(self.now, now)
        horizon = day_of(self.now - self.retention_s)
        for key in [k for k in self.days if k < horizon]:
            del self.days[key]
