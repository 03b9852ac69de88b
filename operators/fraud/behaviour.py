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
_HABIT_AGE_DAYS = 14
"""`card_amount_ratio_habit` compares with the card's days 14 to 29 back: a habit a compromise of the last
two weeks has not inflated yet (a leaked card's fraudulent payments raise its 30-day mean)."""

CARD_HABIT_NAMES: tuple[str, ...] = (
    "card_payments_1d", "card_payments_7d", "card_payments_30d",
    "card_mean_amount_1d", "card_mean_amount_7d", "card_mean_amount_30d",
    "card_amount_ratio_30d", "card_amount_ratio_habit",
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

    The state of a card is `CardHabit.new()`: two flat lists of (bucket, count, sum) triples,
    not an object. There is one per card of the last 30 days, hundreds of thousands of them,
    and a snapshot pickles plain lists of floats without a Python-level call per card.

    Examples
    --------
    >>> card = CardHabit.new()
    >>> _ = CardHabit.learn_one(card, 0.0, 40.0)
    >>> _ = CardHabit.learn_one(card, DAY_S * 2, 40.0)
    >>> f = CardHabit.learn_one(card, DAY_S * 2 + 60.0, 200.0)
    >>> f["card_payments_1d"], f["card_payments_7d"], f["card_mean_amount_7d"], f["card_amount_ratio_30d"]
    (2.0, 3.0, 93.33333333333333, 5.0)
    """

    @staticmethod
    def new() -> list[list[float]]:
        """A card without history: [hour triples, day triples], oldest first."""
        return [[], []]

    @staticmethod
    def learn_one(state: list[list[float]], ts: float, amount: float) -> dict[str, float]:
        """Counts the payment in `state` and returns the card's features including it."""
        hours, days = state
        hour, day = float(_bucket(ts, HOUR_S)), float(_bucket(ts, DAY_S))
        _add(hours, hour, amount, keep=24)
        _add(days, day, amount, keep=30)
        n_1d = spend_1d = 0.0
        for i in range(0, len(hours), 3):
            if hour - 24 < hours[i] <= hour:
                n_1d += hours[i + 1]
                spend_1d += hours[i + 2]
        n_7 = spend_7 = n_30 = spend_30 = n_old = spend_old = 0.0
        for i in range(0, len(days), 3):
            d = days[i]
            if day - 30 < d <= day:
                n_30 += days[i + 1]
                spend_30 += days[i + 2]
                if day - 7 < d:
                    n_7 += days[i + 1]
                    spend_7 += days[i + 2]
                elif d <= day - _HABIT_AGE_DAYS:
                    n_old += days[i + 1]
                    spend_old += days[i + 2]
        before_n, before_spend = n_30 - 1.0, spend_30 - amount
        return {
            "card_payments_1d": n_1d,
            "card_payments_7d": n_7,
            "card_payments_30d": n_30,
            "card_mean_amount_1d": spend_1d / n_1d if n_1d else 0.0,
            "card_mean_amount_7d": spend_7 / n_7 if n_7 else 0.0,
            "card_mean_amount_30d": spend_30 / n_30 if n_30 else 0.0,
            "card_amount_ratio_30d": amount * before_n / before_spend if before_n > 0 and before_spend > 0 else 0.0,
            "card_amount_ratio_habit": amount * n_old / spend_old if spend_old > 0 else 0.0,
        }


def _add(buckets: list[float], bucket: float, value: float, keep: int) -> None:
    """Count one in `bucket` and add `value` (buckets kept in time order; a late payment joins its own)."""
    i = len(buckets) - 3
    while i >= 0 and buckets[i] > bucket:
        i -= 3
    if i >= 0 and buckets[i] == bucket:
        buckets[i + 1] += 1.0
        buckets[i + 2] += value
    else:
        buckets[i + 3 : i + 3] = (bucket, 1.0, value)
    stale = 0
    oldest = buckets[-3] - keep
    while stale < len(buckets) and buckets[stale] <= oldest:
        stale += 3
    if stale:
        del buckets[:stale]


class StoreRisk:
    """One store's (terminal's) payments, received labels and frauds per day of the last 40 days.

    Labels come back days after their payments, so the most recent days of a store have none
    yet: its fraud rates are over the days ending at the newest day with a label received
    (1, 7 and 30 days of them), frauds over payments. A terminal compromised since last week
    reads a 1-day rate near 1 as soon as the first day's labels are in.

    Examples
    --------
    >>> store = StoreRisk()
    >>> for i in range(10):
    ...     _ = store.learn_one(i * 60.0)
    >>> store.label(payment_ts=60.0, is_fraud=True)
    >>> f = store.learn_one(DAY_S * 8)
    >>> f["store_payments_7d"], f["store_payments_30d"], f["store_fraud_rate_1d"], f["store_fraud_rate_30d"]
    (1.0, 11.0, 0.1, 0.1)
    """

    __slots__ = ("_days", "_labelled")

    def __init__(self) -> None:
        self._days: list[float] = []  # (day, payments, frauds) triples, oldest first
        self._labelled = -math.inf  # the newest day with a label received

    def learn_one(self, ts: float) -> dict[str, float]:
        day = float(_bucket(ts, DAY_S))
        days = self._days
        _add(days, day, 0.0, keep=40)
        counts = [0.0, 0.0, 0.0]
        rate_n = [0.0, 0.0, 0.0]
        frauds = [0.0, 0.0, 0.0]
        labelled = self._labelled
        for i in range(0, len(days), 3):
            d = days[i]
            for w, window in enumerate(_WINDOWS):
                if day - window < d <= day:
                    counts[w] += days[i + 1]
                if labelled - window < d <= labelled:
                    rate_n[w] += days[i + 1]
                    frauds[w] += days[i + 2]
        return {
            "store_payments_1d": counts[0],
            "store_payments_7d": counts[1],
            "store_payments_30d": counts[2],
            "store_fraud_rate_1d": frauds[0] / rate_n[0] if rate_n[0] else 0.0,
            "store_fraud_rate_7d": frauds[1] / rate_n[1] if rate_n[1] else 0.0,
            "store_fraud_rate_30d": frauds[2] / rate_n[2] if rate_n[2] else 0.0,
        }

    def label(self, payment_ts: float, is_fraud: bool) -> None:
        """A label received for one of this store's payments: its day now has labels; a fraud counts in it."""
        day = float(_bucket(payment_ts, DAY_S))
        if day > self._labelled:
            self._labelled = day
        if not is_fraud:
            return
        days = self._days
        for i in range(0, len(days), 3):
            if days[i] == day:
                days[i + 2] += 1.0
                return
