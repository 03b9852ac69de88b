"""Lifecycle stages by explicit, configurable rules over a customer's purchase dates.

| stage | rule (at event time `now`) |
|---|---|
| `prospect` | known (browsed, carted, consented) but never bought |
| `new` | first purchase less than `new_s` ago, and not yet at risk |
| `won_back` | bought again after a gap of at least `lapsed_s`, less than `won_back_s` ago |
| `active` | last purchase less than `at_risk_s` ago (and none of the above) |
| `at_risk` | last purchase between `at_risk_s` and `lapsed_s` ago |
| `lapsed` | last purchase at least `lapsed_s` ago |

Stages are a pure function of (first purchase, last purchase, win-back time, now), so the
same purchases give the same stage in any arrival order, and `next_change` says when the
stage will change with no further purchase: the time a timer waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_S = 86_400.0


class Stage(StrEnum):
    """A lifecycle stage; its value names the segment (`GET /v1/segments/{name}/members`)."""

    PROSPECT = "prospect"
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    LAPSED = "lapsed"
    WON_BACK = "won_back"


STAGES: tuple[Stage, ...] = tuple(Stage)
VIP = "vip"
SEGMENTS: tuple[str, ...] = (*(stage.value for stage in Stage), VIP)
"""Every segment: the lifecycle stages (each customer is in exactly one) and `vip`."""


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    """The thresholds of the stage table, in event-time seconds.

    >>> rules = LifecycleRules()
    >>> rules.stage_at(first=0.0, last=0.0, won_back_at=0.0, bought=True, now=10 * DAY_S).value
    'new'
    >>> rules.stage_at(first=0.0, last=0.0, won_back_at=0.0, bought=True, now=70 * DAY_S).value
    'at_risk'
    >>> rules.next_change(first=0.0, last=0.0, won_back_at=0.0, bought=True, now=10 * DAY_S) / DAY_S
    30.0
    """

    new_s: float = 30 * DAY_S
    at_risk_s: float = 60 * DAY_S
    lapsed_s: float = 180 * DAY_S
    won_back_s: float = 30 * DAY_S

    def __post_init__(self) -> None:
        if not 0 < self.at_risk_s < self.lapsed_s:
            raise ValueError("lifecycle thresholds must satisfy 0 < at_risk < lapsed")

    def stage_at(self, *, first: float, last: float, won_back_at: float, bought: bool, now: float) -> Stage:
        """The stage at `now` of a customer whose purchases span `first`..`last`."""
        if not bought:
            return Stage.PROSPECT
        quiet = now - last
        if quiet >= self.lapsed_s:
            return Stage.LAPSED
        if quiet >= self.at_risk_s:
            return Stage.AT_RISK
        if won_back_at and now - won_back_at < self.won_back_s:
            return Stage.WON_BACK
        if now - first < self.new_s:
            return Stage.NEW
        return Stage.ACTIVE

    def next_change(self, *, first: float, last: float, won_back_at: float, bought: bool, now: float) -> float:
        """The earliest event time after `now` at which `stage_at` may change with no new purchase (inf: never)."""
        if not bought:
            return float("inf")
        candidates = [last + self.at_risk_s, last + self.lapsed_s, first + self.new_s]
        if won_back_at:
            candidates.append(won_back_at + self.won_back_s)
        return min((t for t in candidates if t > now), default=float("inf"))

    def is_win_back(self, previous_last: float, ts: float) -> bool:
        """Whether a purchase at `ts` after one at `previous_last` ends a lapse (a gap of `lapsed_s` or more)."""
        return previous_last > 0 and ts - previous_last >= self.lapsed_s
