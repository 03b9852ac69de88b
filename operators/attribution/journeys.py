"""Touchpoints and journeys: which campaign visits led up to each conversion, per shopper or member.

A *touchpoint* is a visit's source: a clickstream event carrying UTM tags (`utm_source`,
`utm_medium`, `utm_campaign`), one with only a `referrer` (a referral from that host), or the
first event of a new session with neither (a direct visit, `(direct)` under every dimension).
A *journey* holds one shopper's touchpoints (an account's, or a member's: every account linked
to it, so a store sale after a campaign click counts). A conversion takes the journey's touchpoints since the previous
conversion, within the look-back, as its path; touchpoints that age past the look-back without
a conversion leave as a non-converting path (what the Markov model needs besides the
converting ones).

Pure logic: no I/O; time is event time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from operators.attribution.models import DIRECT

NONE = "(none)"
DIMENSIONS = ("campaign", "source", "medium")


class Touch(NamedTuple):
    """One touchpoint: when, and the visit's source, medium and campaign.

    A tuple, not a dataclass: journeys hold many and are snapshotted whole, and a tuple pickles
    several times faster than a slotted dataclass.
    """

    ts: float
    source: str
    medium: str
    campaign: str
    event_id: str

    def channel(self, by: str) -> str:
        """The touchpoint's channel under a dimension (`campaign`, `source` or `medium`)."""
        return self.campaign if by == "campaign" else self.source if by == "source" else self.medium


def touch_of(
    ts: float,
    event_id: str,
    utm_source: str | None,
    utm_medium: str | None,
    utm_campaign: str | None,
    referrer: str | None,
    new_session: bool,
) -> Touch | None:
    """The touchpoint an event stands for, if any.

    >>> touch_of(1.0, "e1", "newsletter", "email", "xmas", None, False).campaign
    'xmas'
    >>> t = touch_of(1.0, "e2", None, None, None, "https://www.example.org/a?b", False)
    >>> (t.source, t.medium, t.campaign)
    ('www.example.org', 'referral', '(referral)')
    >>> touch_of(1.0, "e3", None, None, None, None, True).source, touch_of(1.0, "e4", None, None, None, None, False)
    ('(direct)', None)
    """
    if utm_source:
        return Touch(ts, _label(utm_source), _label(utm_medium or NONE), _label(utm_campaign or NONE), event_id)
    if referrer:
        host = urlsplit(referrer if "//" in referrer else f"//{referrer}").hostname or referrer
        return Touch(ts, _label(host), "referral", "(referral)", event_id)
    if new_session:
        return Touch(ts, DIRECT, DIRECT, DIRECT, event_id)
    return None


def _label(value: str) -> str:
    """A channel label safe in a path key (`a>b>c`): the separator is replaced, whitespace trimmed."""
    return value.strip().replace(">", "›")[:128] or NONE


@dataclass(frozen=True, slots=True)
class Conversion:
    """A conversion to credit: an online order or a member's store sale, its revenue and time."""

    order_id: str
    ts: float
    revenue: float
    channel: str  # where it converted: web, app, pos


@dataclass(frozen=True, slots=True)
class Converted:
    """A conversion with its path (the journey's touchpoints that led to it, oldest first)."""

    conversion: Conversion
    journey: str
    path: tuple[Touch, ...]


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A path that did not convert within the look-back (dated by its last touchpoint)."""

    journey: str
    path: tuple[Touch, ...]


@dataclass
class Journey:
    """One shopper's open touchpoints (bounded) and recent conversions (to drop repeated ones).

    >>> j = Journey()
    >>> j.add(Touch(10.0, "google", "cpc", "brand", "t1"))
    >>> j.add(Touch(20.0, "newsletter", "email", "xmas", "t2"))
    >>> [t.campaign for t in j.convert(Conversion("O1", 30.0, 50.0, "web"), "u:1", 3600.0).path]
    ['brand', 'xmas']
    >>> [t.source for t in j.convert(Conversion("O2", 40.0, 5.0, "web"), "u:1", 3600.0).path]  # nothing since
    ['(direct)']
    """

    touches: list[Touch] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    converted: dict[str, None] = field(default_factory=dict)
    last_session: str = ""
    max_touches: int = 50
    linked: bool = False

    def add(self, touch: Touch) -> None:
        if touch.event_id in self.seen:
            return
        self.seen.add(touch.event_id)
        touches = self.touches
        if touches and touches[-1].ts > touch.ts:  # late: keep time order
            touches.append(touch)
            touches.sort(key=lambda t: (t.ts, t.event_id))
        else:
            touches.append(touch)
        if len(touches) > self.max_touches:
            del touches[0]
        if len(self.seen) > 4 * self.max_touches:
            self.seen = {t.event_id for t in touches}

    def convert(self, conversion: Conversion, journey: str, lookback_s: float) -> Converted | None:
        """The conversion's path; its touchpoints leave the journey. None for a conversion seen before."""
        if conversion.order_id in self.converted:
            return None
        self.converted[conversion.order_id] = None
        if len(self.converted) > 100:
            del self.converted[next(iter(self.converted))]
        horizon = conversion.ts - lookback_s
        path = tuple(t for t in self.touches if horizon <= t.ts <= conversion.ts)
        self.touches = [t for t in self.touches if t.ts > conversion.ts]
        if not path:
            path = (Touch(conversion.ts, DIRECT, DIRECT, DIRECT, f"{conversion.order_id}:direct"),)
        return Converted(conversion, journey, path)

    def expire(self, now: float, lookback_s: float, journey: str) -> Abandoned | None:
        """Touchpoints that can no longer lead to a conversion (their newest is past the look-back) leave."""
        if not self.touches or self.touches[-1].ts >= now - lookback_s:
            return None
        path, self.touches = tuple(self.touches), []
        return Abandoned(journey, path)
