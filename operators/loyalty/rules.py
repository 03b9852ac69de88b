"""Earn rules of the loyalty programme: points per currency unit per channel, category and campaign multipliers.

Every factor is held as an integer number of thousandths, and money as integer cents, so the
points of a basket are an exact integer computation: `floor(sum(cents x rate x category x
campaign x units) / SCALE)`. Floating point would let 0.1 + 0.2 decide a point, and a return,
a replay or an auditor's recomputation could then disagree with what was granted.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

MILLI = 1000
SCALE = 100 * MILLI * MILLI * MILLI
"""cents x three factors in thousandths: dividing by this gives points."""
CHANNELS = ("pos", "web", "app")


def milli(value: object, what: str) -> int:
    """`value` in exact thousandths; `ValueError` for anything finer, negative or not a number.

    >>> milli(1.5, "rate"), milli("0.125", "rate")
    (1500, 125)
    >>> milli(0.0001, "rate")
    Traceback (most recent call last):
    ...
    ValueError: rate: 0.0001 is finer than a thousandth
    """
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if isinstance(value, bool) or not exact.is_finite() or exact < 0:
        raise ValueError(f"{what}: {value!r} is not a non-negative number")
    scaled = exact * MILLI
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{what}: {value} is finer than a thousandth")
    return int(scaled)


def cents(price: float) -> int:
    """A unit price in integer cents (prices are decimal amounts carried as JSON numbers).

    >>> cents(19.99), cents(0.1 + 0.2)
    (1999, 30)
    """
    return round(price * 100)


@dataclass(frozen=True, slots=True)
class Campaign:
    """A bonus window in event time, `[start_ts, end_ts)`, on some channels (and categories, if listed)."""

    name: str
    start_ts: float
    end_ts: float
    multiplier_milli: int
    channels: frozenset[str] = frozenset(CHANNELS)
    categories: frozenset[str] = frozenset()

    def applies(self, ts: float, channel: str, category: str | None) -> bool:
        if not (self.start_ts <= ts < self.end_ts) or channel not in self.channels:
            return False
        return not self.categories or category in self.categories


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    min_spend_cents: int


@dataclass(frozen=True, slots=True)
class EarnRules:
    """The programme's earn rules (one file, `deploy/loyalty/rules.toml`).

    >>> rules = EarnRules(version="t", rate_milli={"pos": 1000, "web": 1000, "app": 1500},
    ...                   category_milli={"grocery": 2000})
    >>> rules.line_units(1999, "pos", "grocery", 0.0) // (SCALE // 100)  # one unit at 19.99, x2: 39.98 points
    3998
    >>> rules.tier_of(0)
    'member'
    """

    version: str
    rate_milli: dict[str, int]
    category_milli: dict[str, int] = field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()
    tiers: tuple[Tier, ...] = ()
    base_tier: str = "member"

    def line_units(self, unit_cents: int, channel: str, category: str | None, ts: float) -> int:
        """Points of one unit of a line, in 1/SCALE of a point (exact)."""
        campaign = MILLI
        for c in self.campaigns:
            if c.applies(ts, channel, category) and c.multiplier_milli > campaign:
                campaign = c.multiplier_milli
        category_factor = self.category_milli.get(category, MILLI) if category is not None else MILLI
        return unit_cents * self.rate_milli.get(channel, 0) * category_factor * campaign

    def tier_of(self, spend_cents: int) -> str:
        """The highest tier whose threshold `spend_cents` reaches."""
        tier = self.base_tier
        for t in self.tiers:  # sorted by threshold at load
            if spend_cents >= t.min_spend_cents:
                tier = t.name
        return tier

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> EarnRules:
        """Rules from a parsed TOML document; `ValueError` naming the first thing wrong."""
        version = str(doc.get("version") or "")
        if not version:
            raise ValueError("version: required")
        rates = doc.get("points_per_unit")
        if not isinstance(rates, dict) or not rates:
            raise ValueError("points_per_unit: a table of channel = points per currency unit is required")
        unknown = sorted(set(rates) - set(CHANNELS))
        if unknown:
            raise ValueError(f"points_per_unit: unknown channel {unknown[0]!r} (channels: {', '.join(CHANNELS)})")
        rate_milli = {ch: milli(v, f"points_per_unit.{ch}") for ch, v in rates.items()}
        categories = doc.get("category_multipliers") or {}
        category_milli = {str(k): milli(v, f"category_multipliers.{k}") for k, v in categories.items()}
        campaigns = []
        for i, c in enumerate(doc.get("campaign") or []):
            where = f"campaign[{i}]"
            try:
                start = _ts(c["start"])
                end = _ts(c["end"])
            except KeyError as ex:
                raise ValueError(f"{where}: {ex.args[0]} is required") from None
            if end <= start:
                raise ValueError(f"{where}: end must be after start")
            channels = frozenset(c.get("channels") or CHANNELS)
            if not channels <= set(CHANNELS):
                raise ValueError(f"{where}.channels: unknown channel in {sorted(channels)}")
            multiplier = milli(c.get("multiplier", 1), f"{where}.multiplier")
            categories_of = frozenset(c.get("categories") or ())
            campaigns.append(Campaign(str(c.get("name", where)), start, end, multiplier, channels, categories_of))
        tiers = sorted(
            (Tier(str(t["name"]), round(milli(t["min_spend"], "tier.min_spend") / 10)) for t in doc.get("tier") or []),
            key=lambda t: t.min_spend_cents,
        )
        return cls(version, rate_milli, category_milli, tuple(campaigns), tuple(tiers))

    @classmethod
    def load(cls, path: Path) -> EarnRules:
        """Rules from a TOML file; `ValueError` with the file's name for anything unreadable or wrong."""
        try:
            with path.open("rb") as fh:
                return cls.parse(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as ex:
            raise ValueError(f"{path}: {ex}") from None


def _ts(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} needs a time zone (Z)")
    return parsed.timestamp()
