"""One customer's live state: RFM inputs, channel mix, preferred store, lifecycle, open moments.

Kept per customer as bytes (`operators.customers.packing`: ~75 for a customer with one
purchase), decoded only while a batch touches it. Sums over the
RFM windows are exponentially decayed with the window as time constant, so adding a
purchase is O(1), any arrival order gives the same sums, and they fade smoothly instead of
dropping a purchase the day it leaves the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgspec

from operators.customers.lifecycle import DAY_S, LifecycleRules, Stage

CHANNELS = ("store", "web", "app")
_STORES_KEPT = 3


@dataclass(frozen=True, slots=True)
class CustomerConfig:
    """The rules a customers shard runs by (from `settings.customers`)."""

    lifecycle: LifecycleRules = field(default_factory=LifecycleRules)
    windows_s: tuple[float, ...] = (90 * DAY_S, 365 * DAY_S)
    cart_window_s: float = 1_800.0
    payment_window_s: float = 1_800.0
    vip_spend: float = 1_000.0
    dedup_window_s: float = 3_600.0
    lateness_s: float = 30.0
    idle_s: float = 600.0
    watch_window_s: float = 7 * DAY_S
    cooldown_s: float = DAY_S
    partitions: int = 0  # input partitions the event clock waits to hear from (`clock.EventClock`)


class CustomerState(msgspec.Struct, gc=False):
    """What the flow keeps about one customer (all times are event times, epoch seconds; 0 is "never").

    The working form, while a batch touches the customer; at rest it is `packing.pack`'s bytes.
    """

    version: int = 0  # of the last document written: `applied + walks + changes` then
    applied: int = 0  # 1 for the first activity, + 1 per purchase, return or consent (duplicates dropped)
    walks: int = 0  # purchases the lifecycle walk has passed
    changes: int = 0  # lifecycle changes the walk made as time passed
    first: float = 0.0
    last: float = 0.0
    walked: float = 0.0  # the newest purchase the lifecycle walk has passed (at or before `stage_ts`)
    seen: float = 0.0
    stage: str = Stage.PROSPECT.value
    stage_ts: float = 0.0
    orders: int = 0
    spend: float = 0.0
    decay_ts: float = 0.0
    freq: list[float] = msgspec.field(default_factory=list)
    money: list[float] = msgspec.field(default_factory=list)
    channels: list[int] = msgspec.field(default_factory=lambda: [0, 0, 0])
    stores: list[tuple[str, int]] = msgspec.field(default_factory=list)
    country: str | None = None
    vip_spend: float = 0.0  # spend over the longest window as of `walked`, from walked purchases
    won_back_at: float = 0.0
    vip: bool = False
    consent: bool | None = None
    buckets: tuple[int, int, int] | None = None  # where the population histograms count this customer
    bucket_scope: str | None = None  # the country scope they are counted in
    ahead: list[tuple[float, float, str]] = msgspec.field(default_factory=list)  # (ts, amount, event id) not walked
    bought: list[tuple[str, float]] = msgspec.field(default_factory=list)
    carts: list[tuple[str, float, str]] = msgspec.field(default_factory=list)
    uncarts: list[tuple[str, float]] = msgspec.field(default_factory=list)
    fails: list[tuple[str, float, str]] = msgspec.field(default_factory=list)
    approved: list[tuple[str, float]] = msgspec.field(default_factory=list)
    views: list[tuple[str, float, str]] = msgspec.field(default_factory=list)  # (sku, ts, event id) until watched

    def decayed(self, windows_s: tuple[float, ...], now: float) -> tuple[list[float], list[float]]:
        """The decayed order counts and spend per window, as of `now` (never grown for `now` before `decay_ts`)."""
        if not self.freq:
            return [0.0] * len(windows_s), [0.0] * len(windows_s)
        age = max(0.0, now - self.decay_ts)
        factors = [math.exp(-age / w) for w in windows_s]
        return [f * k for f, k in zip(self.freq, factors, strict=True)], [
            m * k for m, k in zip(self.money, factors, strict=True)
        ]

    def add_spend(self, windows_s: tuple[float, ...], ts: float, orders: int, amount: float) -> None:
        """Fold `orders` orders worth `amount` at `ts` into the decayed sums (any order of arrival)."""
        if not self.freq:
            self.freq, self.money, self.decay_ts = [0.0] * len(windows_s), [0.0] * len(windows_s), ts
        if ts > self.decay_ts:
            self.freq, self.money = self.decayed(windows_s, ts)
            self.decay_ts = ts
        for i, window in enumerate(windows_s):
            k = math.exp(-(self.decay_ts - ts) / window)
            self.freq[i] += orders * k
            self.money[i] = max(0.0, self.money[i] + amount * k)

    def count_store(self, store_id: str) -> None:
        """One more visit to `store_id`; the top stores are kept (a heavy-hitters list of three)."""
        stores = self.stores
        for i, (store, n) in enumerate(stores):
            if store == store_id:
                stores[i] = (store, n + 1)
                break
        else:
            if len(stores) < _STORES_KEPT:
                stores.append((store_id, 1))
            else:  # Misra-Gries: the new store replaces the weakest, which keeps its count as an upper bound
                weakest = min(range(len(stores)), key=lambda j: stores[j][1])
                stores[weakest] = (store_id, stores[weakest][1] + 1)
        stores.sort(key=lambda item: (-item[1], item[0]))

    @property
    def preferred_store(self) -> str | None:
        return self.stores[0][0] if self.stores else None


def expected_value(state: CustomerState, config: CustomerConfig, now: float) -> float:
    """An online estimate of the customer's next-year spend: the long window's spend rate, times the chance
    they are still buying (halved every `at_risk_s` of silence), a heuristic that needs no training.

    >>> state = CustomerState()
    >>> state.add_spend((365 * DAY_S,), 0.0, 1, 100.0)
    >>> state.first = state.last = 0.0
    >>> round(expected_value(state, CustomerConfig(windows_s=(365 * DAY_S,)), now=0.0), 2)
    100.0
    """
    if not state.freq:
        return 0.0
    _, money = state.decayed(config.windows_s, now)
    long_window_spend = money[-1]
    quiet = max(0.0, now - state.last)
    return float(long_window_spend * 0.5 ** (quiet / config.lifecycle.at_risk_s))
