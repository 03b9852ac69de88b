"""Behaviour over days, by event time, in bounded state: a card's spending habit, a store's fraud rate.

A compromised card shows as payments far above its own habit; a compromised terminal as a
store whose recent payments turn out fraudulent once their labels come back. Both need
weeks of history, so neither keeps payments: a card keeps one (count, spend) bucket per
event-time hour of the last day and per day of the last 30; a store one (payments, frauds)
bucket per day of the last 30. A card or store costs a few hundred bytes whatever its rate.

Windows are whole buckets ending at the payment's own bucket: "7 days" is today and the 6
days before. A store's fraud rate counts only the labels already received: a fraud label
adds to the bucket of its payment's day, when it arrives.
"""

from __future__ import annotations

import math

DAY_S = 86_400.0
HOUR_S = 3_600.0
_WINDOWS = (1, 7, 30)

CARD_HABIT_NAMES: tuple[str, ...] = (
    "card_payments_1d", "card_payments_7d", "card_payments_30d",
    "card_mean_amount_1d", "card_mean_amount_7d", "card_mean_amount_30d",
    "card_amount_ratio_30d",
)  # fmt: skip
STORE_RISK_NAMES: tuple[str, ...] = (
    "store_payments_1d", "store_payments_7d", "store_payments_30d",
    "store_fraud_rate_1d", "store_fraud_rate_7d", "store_fraud_rate_30d",
)  # fmt: skip


def _bucket(ts: float, width: float) -> int:
    return math.floor(ts / width)


class CardHabit:
    """One card's payments and spend per hour of the last day and per day of the last 30 days.

    `card_amount_ratio_30d` is the payment's amount over the card's mean of the 30 days
    before it (0 without history): a card whose usual basket is 40 paying 200 reads 5.

    Examples
    --------
    >>> card = CardHabit()
    >>> _ = card.learn_one(0.0, 40.0)
    >>> _ = card.learn_one(DAY_S * 2, 40.0)
    >>> f = card.learn_one(DAY_S * 2 + 60.0, 200.0)
    >>> f["card_payments_1d"], f["card_payments_7d"], f["card_mean_amount_7d"], f["card_amount_ratio_30d"]
    (2.0, 3.0, 93.33333333333333, 5.0)
    """

    __slots__ = ("_days", "_hours")  # one per card of the last 30 days: hundreds of thousands

    def __init__(self) -> None:
        self._hours: list[list[float]] = []  # [hour, count, spend], oldest first
        self._days: list[list[float]] = []  # [day, count, spend], oldest first

    def learn_one(self, ts: float, amount: float) -> dict[str, float]:
        hour, day = _bucket(ts, HOUR_S), _bucket(ts, DAY_S)
        before_n = before_spend = 0.0
        for d, n, spend in self._days:
            if day - 30 < d <= day:
                before_n += n
                before_spend += spend
        ratio = amount / (before_spend / before_n) if before_n and before_spend > 0 else 0.0
        _add(self._hours, hour, amount, keep=24)
        _add(self._days, day, amount, keep=30)
        out = {"card_amount_ratio_30d": ratio}
        n_1d = spend_1d = 0.0
        for h, n, spend in self._hours:
            if hour - 24 < h <= hour:
                n_1d += n
                spend_1d += spend
        out["card_payments_1d"] = n_1d
        out["card_mean_amount_1d"] = spend_1d / n_1d if n_1d else 0.0
        for window in (7, 30):
            n_w = spend_w = 0.0
            for d, n, spend in self._days:
                if day - window < d <= day:
                    n_w += n
                    spend_w += spend
            out[f"card_payments_{window}d"] = n_w
            out[f"card_mean_amount_{window}d"] = spend_w / n_w if n_w else 0.0
        return out


def _add(buckets: list[list[float]], bucket: int, amount: float, keep: int) -> None:
    """Count a payment in its bucket (created in time order; a late payment joins its own bucket)."""
    for entry in reversed(buckets):
        if entry[0] == bucket:
            entry[1] += 1.0
            entry[2] += amount
            return
        if entry[0] < bucket:
            break
    buckets.append([float(bucket), 1.0, amount])
    if len(buckets) > 1 and buckets[-2][0] > bucket:
        buckets.sort(key=lambda entry: entry[0])
    newest = buckets[-1][0]
    while buckets and buckets[0][0] <= newest - keep:
        del buckets[0]


class StoreRisk:
    """One store's (terminal's) payments and received fraud labels per day of the last 30 days.

    Examples
    --------
    >>> store = StoreRisk()
    >>> for i in range(10):
    ...     _ = store.learn_one(i * 60.0)
    >>> store.label(payment_ts=60.0, is_fraud=True)
    >>> f = store.learn_one(DAY_S * 8)
    >>> f["store_payments_7d"], f["store_payments_30d"], f["store_fraud_rate_30d"], f["store_fraud_rate_7d"]
    (1.0, 11.0, 0.09090909090909091, 0.0)
    """

    __slots__ = ("_days",)

    def __init__(self) -> None:
        self._days: list[list[float]] = []  # [day, payments, frauds], oldest first

    def learn_one(self, ts: float) -> dict[str, float]:
        day = _bucket(ts, DAY_S)
        _add(self._days, day, 0.0, keep=30)
        out: dict[str, float] = {}
        for window in _WINDOWS:
            n_w = frauds = 0.0
            for d, n, fraud in self._days:
                if day - window < d <= day:
                    n_w += n
                    frauds += fraud
            out[f"store_payments_{window}d"] = n_w
            out[f"store_fraud_rate_{window}d"] = frauds / n_w if n_w else 0.0
        return out

    def label(self, payment_ts: float, is_fraud: bool) -> None:
        """A label received for one of this store's payments: a fraud counts in its payment's day."""
        if not is_fraud:
            return
        day = _bucket(payment_ts, DAY_S)
        for entry in self._days:
            if entry[0] == day:
                entry[2] += 1.0
                return
