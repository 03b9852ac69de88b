"""Per-entity feature state for fraud scoring: card velocity, shopper history, order checks, register behaviour.

Each class keeps the learned state of ONE entity (the flow keys them by card
token, user and store) and `learn_one` returns the features of the payment it
just saw, computed over history including that payment. The flow merges the
dicts of one payment; a missing entity (cash sale: no card; guest checkout: no
user) leaves its features at `FEATURE_DEFAULTS`. Time is always the event's
`ts`, never the wall clock, so a replay after a crash yields the same features.
Every history is capped by event time AND by count: a card used 10,000 times a
minute costs no more memory than one used 200 times.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from operators.fraud.payments import Payment, TillAction
from operators.snapshots import with_ordered_dicts

FEATURE_CAPS: dict[str, float] = {
    # name: the value where the model's scaled input saturates at 1 (see `vectorize`)
    "card_payments_1m": 10.0,
    "card_payments_10m": 20.0,
    "card_payments_1h": 50.0,
    "card_spend_10m": 10_000.0,
    "card_spend_1h": 20_000.0,
    "card_places_10m": 5.0,
    "card_channels_10m": 3.0,
    "card_countries_1h": 4.0,
    "card_small_share_10m": 1.0,
    "user_known": 1.0,
    "user_new_device": 1.0,
    "user_new_country": 1.0,
    "user_amount_z": 10.0,
    "user_age_h": 24.0 * 30,
    "ip_billing_mismatch": 1.0,
    "ship_billing_mismatch": 1.0,
    "ip_ship_mismatch": 1.0,
    "manual_entry": 1.0,
    "card_not_present": 1.0,
    "guest_checkout": 1.0,
    "amount": 20_000.0,
    "high_value": 1.0,
    "card_owner_absent": 1.0,
    # Behaviour over days (operators.fraud.behaviour): a card's habit, a store's received fraud labels.
    "card_payments_1d": 50.0,
    "card_payments_7d": 200.0,
    "card_payments_30d": 500.0,
    "card_mean_amount_1d": 20_000.0,
    "card_mean_amount_7d": 20_000.0,
    "card_mean_amount_30d": 20_000.0,
    "card_amount_ratio_30d": 20.0,
    "card_amount_ratio_habit": 20.0,
    "store_payments_1d": 2_000.0,
    "store_payments_7d": 10_000.0,
    "store_payments_30d": 50_000.0,
    "store_fraud_rate_1d": 1.0,
    "store_fraud_rate_7d": 1.0,
    "store_fraud_rate_30d": 1.0,
    "night": 1.0,
    "weekend": 1.0,
}
"""Every payment feature, in the models' input order, with its saturation value."""

FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_CAPS)
TILL_FEATURE_NAMES: tuple[str, ...] = ("cashier_noreceipt_30m", "cashier_noreceipt_excess", "cashier_voids_30m")
"""Register-behaviour features (`RegisterBehaviour`): judged by the rule file's `till` rules, not payment models."""
FEATURE_DEFAULTS: dict[str, float] = dict.fromkeys(FEATURE_NAMES, 0.0)
_LOG_CAPS = tuple(math.log1p(cap) for cap in FEATURE_CAPS.values())
_LOG_CAPS_ARRAY = np.asarray(_LOG_CAPS)
_ALL_FEATURES = itemgetter(*FEATURE_NAMES)


def feature_matrix(features: Sequence[Mapping[str, float]]) -> npt.NDArray[np.float64]:
    """The raw feature values of a batch as an (n, len(FEATURE_NAMES)) array; missing features are 0.

    A dict that holds every feature (start from `FEATURE_DEFAULTS`) is read with one
    `itemgetter` call, about ten times cheaper than a `get` per feature.
    """
    rows = []
    for f in features:
        try:
            rows.append(_ALL_FEATURES(f))
        except KeyError:
            rows.append(tuple(f.get(name, 0.0) for name in FEATURE_NAMES))
    if not rows:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.asarray(rows, dtype=np.float64)


def scale_matrix(raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """`vectorize` for a whole batch: `log1p(v) / log1p(cap)` clipped to [0, 1]; NaN and negatives are 0."""
    # fmax drops NaN (and -inf) to 0 and keeps +inf, which the log takes to inf and the minimum to 1: four
    # ufuncs in place, where two `nan_to_num` passes cost more than the rest on a scorer shard's small batch.
    result: npt.NDArray[np.float64] = np.fmax(raw, 0.0)
    np.log1p(result, out=result)
    np.divide(result, _LOG_CAPS_ARRAY, out=result)
    np.minimum(result, 1.0, out=result)
    return result


def vectorize(features: Mapping[str, float]) -> list[float]:
    """The features as the models' input: `log1p(v) / log1p(cap)` clipped to [0, 1], in `FEATURE_NAMES` order.

    Fixed transforms instead of a running min-max scaler: the scale of a count or an
    amount is known in advance, one extreme payment cannot squash every other input,
    and the same payment maps to the same vector before and after a restart. Missing
    and non-finite values count as 0.

    >>> v = vectorize({"card_payments_10m": 20.0, "manual_entry": 1.0, "amount": float("nan")})
    >>> v[FEATURE_NAMES.index("card_payments_10m")], v[FEATURE_NAMES.index("manual_entry")], v[-5]
    (1.0, 1.0, 0.0)
    """
    get = features.get
    out = []
    for name, log_cap in zip(FEATURE_NAMES, _LOG_CAPS, strict=True):
        value = get(name, 0.0)
        if not value > 0.0:  # also NaN
            out.append(0.0)
        elif value == math.inf:
            out.append(1.0)
        else:
            out.append(min(1.0, math.log1p(value) / log_cap))
    return out


_CARD_STATE = ("_newest", "_owners", "_payments", "max_payments", "small_amount", "max_owners")
"""`CardVelocity.__getstate__`'s order."""


class CardVelocity:
    """Payments, spend and places of one card over sliding event-time windows (1 min, 10 min, 1 h).

    Card testing shows as many payments within minutes, often small, from new
    places and countries; a stolen card is used in several stores and channels at
    once, and without the account it usually pays for (`card_owner_absent`: the card
    has paid for a known account before, and this payment names no account or
    another one). Windows end at the payment's own `ts`: a late payment sees the
    history as it was then, and its own count includes itself.

    Cost: one pass over the card's kept payments (at most `max_payments`).

    Parameters
    ----------
    max_payments
        Payments kept per card: bounds memory and cost for a card in a burst.
    small_amount
        Payments below this count as small (card testing probes with small amounts).

    Examples
    --------
    >>> from operators.fraud.payments import Payment
    >>> def pay(ts, amount):
    ...     return Payment("O1", "order_id", ts, amount, "USD", "card", "tok", None, None, "web",
    ...                    None, None, "NG", "US", "NG", None, None, None, "e")
    >>> card = CardVelocity()
    >>> _ = card.learn_one(pay(0.0, 1.0))
    >>> f = card.learn_one(pay(30.0, 2.5))
    >>> f["card_payments_1m"], f["card_spend_10m"], f["card_small_share_10m"]
    (2.0, 3.5, 1.0)
    >>> card.learn_one(pay(4000.0, 900.0))["card_payments_1h"]  # the first two have aged out
    1.0
    """

    # Slots and small lists/tuples, not dicts and deques: one instance per card seen in the last
    # hours, hundreds of thousands of them; this keeps a one-payment card to a few hundred bytes.
    __slots__ = ("_newest", "_owners", "_payments", "max_owners", "max_payments", "small_amount")

    def __init__(self, max_payments: int = 200, small_amount: float = 10.0, max_owners: int = 4) -> None:
        self.max_payments = max_payments
        self.small_amount = small_amount
        self.max_owners = max_owners
        self._owners: tuple[str, ...] = ()  # accounts this card has paid for, least recent first
        # (ts, amount, place, channel, country) in arrival order
        self._payments: list[tuple[float, float, str, str, str]] = []
        self._newest = -math.inf

    # A tuple, not the default (None, {slot: value}) of a slotted object: a card shard pickles tens
    # of thousands of these at every snapshot, and a dict per card was a third of that time.
    def __getstate__(self) -> tuple[Any, ...]:
        return (self._newest, self._owners, self._payments, self.max_payments, self.small_amount, self.max_owners)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if state[0] is None:  # pickled before `__getstate__` existed: (None, {slot: value})
            state = tuple(state[1][name] for name in _CARD_STATE)
        for name, value in zip(_CARD_STATE, state, strict=True):
            setattr(self, name, value)

    def learn_one(self, payment: Payment) -> dict[str, float]:
        ts = payment.ts
        user = payment.user_id
        owner_absent = 1.0 if self._owners and (user is None or user not in self._owners) else 0.0
        self._owners = _remembered(self._owners, user, self.max_owners)
        place = payment.store_id or payment.channel
        country = payment.ip_country or ""
        kept = self._payments
        kept.append((ts, payment.amount, place, payment.channel, country))
        # Age out against the newest ts seen: a late event must not rewind the window.
        self._newest = max(self._newest, ts)
        horizon = self._newest - 3600.0
        stale = 0
        while stale < len(kept) and kept[stale][0] <= horizon:
            stale += 1
        stale = max(stale, len(kept) - self.max_payments)
        if stale:
            del kept[:stale]
        n_1m = n_10m = n_1h = small_10m = 0
        spend_10m = spend_1h = 0.0
        places: set[str] = set()
        channels: set[str] = set()
        countries: set[str] = set()
        small = self.small_amount
        for p_ts, amount, p_place, p_channel, p_country in kept:
            age = ts - p_ts
            if age < 0.0 or age >= 3600.0:
                continue
            n_1h += 1
            spend_1h += amount
            if p_country:
                countries.add(p_country)
            if age < 600.0:
                n_10m += 1
                spend_10m += amount
                places.add(p_place)
                channels.add(p_channel)
                if amount < small:
                    small_10m += 1
                if age < 60.0:
                    n_1m += 1
        return {
            "card_payments_1m": float(n_1m),
            "card_payments_10m": float(n_10m),
            "card_payments_1h": float(n_1h),
            "card_spend_10m": spend_10m,
            "card_spend_1h": spend_1h,
            "card_places_10m": float(len(places)),
            "card_channels_10m": float(len(channels)),
            "card_countries_1h": float(len(countries)),
            "card_small_share_10m": small_10m / n_10m if n_10m else 0.0,
            "card_owner_absent": owner_absent,
        }


class ShopperHistory:
    """What one registered shopper usually does: devices, countries, spend, tenure.

    Account takeover shows as a known account on a new device, from a new
    country, spending far above its own habit. A first payment has nothing to
    compare with, so the novelty features stay 0 until the account has history
    (`user_known` says which case it is). Spend habit is the running mean and
    variance of log amounts (Welford), so a 10x basket is a large z whatever the
    shopper's usual scale.

    Parameters
    ----------
    max_known
        Devices and countries remembered per shopper (the least recently used go first).

    Examples
    --------
    >>> from operators.fraud.payments import Payment
    >>> def pay(ts, amount, device, country):
    ...     return Payment("O1", "order_id", ts, amount, "USD", "card", "tok", None, None, "web",
    ...                    "U1", device, country, country, country, None, None, None, "e")
    >>> shopper = ShopperHistory()
    >>> shopper.learn_one(pay(0.0, 40.0, "D1", "US"))["user_known"]
    0.0
    >>> _ = shopper.learn_one(pay(3600.0, 50.0, "D1", "US"))
    >>> f = shopper.learn_one(pay(7200.0, 2000.0, "D9", "RO"))
    >>> f["user_new_device"], f["user_new_country"], f["user_amount_z"] > 3, f["user_age_h"]
    (1.0, 1.0, True, 2.0)
    """

    __slots__ = ("_countries", "_devices", "_first_ts", "_m2", "_mean", "_n", "max_known")  # many instances

    def __init__(self, max_known: int = 8) -> None:
        self.max_known = max_known
        self._first_ts = math.inf
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._devices: tuple[str, ...] = ()  # least recently used first
        self._countries: tuple[str, ...] = ()

    def learn_one(self, payment: Payment) -> dict[str, float]:
        known = self._n > 0
        new_device = new_country = 0.0
        z = 0.0
        log_amount = math.log1p(max(payment.amount, 0.0))
        if known:
            # Novel only against history of the same kind: a first online order after till-only
            # visits (no device, no country seen yet) is not a new device.
            if payment.device_id is not None and self._devices and payment.device_id not in self._devices:
                new_device = 1.0
            for country in (payment.ip_country, payment.shipping_country):
                if country is not None and self._countries and country not in self._countries:
                    new_country = 1.0
            # A floor on the spread: two equal baskets must not make the third one infinitely odd.
            std = max(math.sqrt(self._m2 / self._n), 0.25)
            z = (log_amount - self._mean) / std
        age_h = max(0.0, payment.ts - self._first_ts) / 3600.0 if known else 0.0
        self._first_ts = min(self._first_ts, payment.ts)
        self._n += 1
        delta = log_amount - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (log_amount - self._mean)
        self._devices = _remembered(self._devices, payment.device_id, self.max_known)
        self._countries = _remembered(self._countries, payment.ip_country, self.max_known)
        self._countries = _remembered(self._countries, payment.shipping_country, self.max_known)
        return {
            "user_known": 1.0 if known else 0.0,
            "user_new_device": new_device,
            "user_new_country": new_country,
            "user_amount_z": z,
            "user_age_h": age_h,
        }


def _remembered(known: tuple[str, ...], value: str | None, limit: int) -> tuple[str, ...]:
    """`known` with `value` moved to the most recent end, the least recent dropped past `limit`."""
    if value is None or (known and known[-1] == value):
        return known
    return (*(k for k in known if k != value), value)[-limit:]


def time_of_week(ts: float) -> dict[str, float]:
    """`night` (00:00 to 06:00) and `weekend` (Saturday, Sunday) of an event time, in UTC.

    >>> time_of_week(1795305600.0 + 3600.0)  # Sunday 2026-11-22, 01:00
    {'night': 1.0, 'weekend': 1.0}
    """
    seconds = ts % 86_400.0
    weekday = (math.floor(ts / 86_400.0) + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday
    return {"night": 1.0 if seconds < 6 * 3600.0 else 0.0, "weekend": 1.0 if weekday >= 5 else 0.0}


class OrderChecks:
    """Checks that need nothing but the payment itself: country mismatches, manual entry, value.

    Stateless, so it needs no key; `learn_one` is named like the others so the
    flow treats every extractor alike.

    Parameters
    ----------
    high_value
        Amount from which a payment counts as high value.

    Examples
    --------
    >>> from operators.fraud.payments import Payment
    >>> p = Payment("T1", "txn_id", 0.0, 1500.0, "USD", "card", "tok", "411111", "manual", "store",
    ...             None, None, None, None, None, "S1", "R1", "C1", "e")
    >>> f = OrderChecks().learn_one(p)
    >>> f["manual_entry"], f["high_value"], f["card_not_present"], f["ip_billing_mismatch"]
    (1.0, 1.0, 0.0, 0.0)
    """

    def __init__(self, high_value: float = 1000.0) -> None:
        self.high_value = high_value

    def learn_one(self, payment: Payment) -> dict[str, float]:
        ip, billing, shipping = payment.ip_country, payment.billing_country, payment.shipping_country
        online = payment.channel != "store"
        return {
            "ip_billing_mismatch": 1.0 if ip and billing and ip != billing else 0.0,
            "ship_billing_mismatch": 1.0 if shipping and billing and shipping != billing else 0.0,
            "ip_ship_mismatch": 1.0 if ip and shipping and ip != shipping else 0.0,
            "manual_entry": 1.0 if payment.entry_mode == "manual" else 0.0,
            "card_not_present": 1.0 if online else 0.0,
            "guest_checkout": 1.0 if online and payment.user_id is None else 0.0,
            "amount": max(payment.amount, 0.0),
            "high_value": 1.0 if payment.amount >= self.high_value else 0.0,
            **time_of_week(payment.ts),
        }


class RegisterBehaviour:
    """Returns without receipt and voids per cashier of one store, against the store's own norm.

    Refund abuse shows as one cashier refunding without receipts far more often
    than colleagues at the same store (cash or gift card, to an accomplice).
    Comparing with the store's other cashiers, not a global constant, keeps a busy
    flagship and a quiet kiosk on the same scale. Counts are over the last 30 minutes of
    event time (a spree stands out sooner than over an hour, and an honest cashier's
    occasional no-receipt return rarely piles up that fast); each cashier keeps at most
    `max_actions` recent actions.

    Parameters
    ----------
    window_s
        Event-time seconds of history that count.
    max_actions
        Returns and voids kept per cashier.
    max_cashiers
        Cashiers tracked per store (the least recently active go first).

    Examples
    --------
    >>> from operators.fraud.payments import TillAction
    >>> store = RegisterBehaviour()
    >>> for i in range(4):
    ...     _ = store.learn_one(TillAction("return", f"T{i}", i * 60.0, 20.0, "S1", "R1", "C1", False, "e"))
    >>> _ = store.learn_one(TillAction("return", "T9", 300.0, 20.0, "S1", "R2", "C2", True, "e"))
    >>> f = store.learn_one(TillAction("return", "T5", 360.0, 20.0, "S1", "R1", "C1", False, "e"))
    >>> f["cashier_noreceipt_30m"], f["cashier_noreceipt_excess"]
    (5.0, 5.0)
    """

    def __init__(self, window_s: float = 1800.0, max_actions: int = 256, max_cashiers: int = 256) -> None:
        self.window_s = window_s
        self.max_actions = max_actions
        self.max_cashiers = max_cashiers
        # cashier -> (ts, is_void) of returns without receipt and voids, arrival order; cashiers least
        # recently active first. An OrderedDict so refreshing and evicting a cashier are O(1): a plain
        # dict refreshed by pop-and-reinsert and evicted at its front keeps holes that iteration walks over.
        self._actions: OrderedDict[str, deque[tuple[float, bool]]] = OrderedDict()
        self._norm: dict[str, float] = {}
        self._newest = -math.inf

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(with_ordered_dicts(state, "_actions"))

    def learn_one(self, action: TillAction) -> dict[str, float]:
        cashier = action.cashier_id
        if action.kind == "sale":
            # Sales are most till traffic and change no history here: the cashier's own counts,
            # against the store norm as of the last return or void (no pass over every cashier).
            history = self._actions.get(cashier)
            if not history:
                return {"cashier_noreceipt_30m": 0.0, "cashier_noreceipt_excess": 0.0, "cashier_voids_30m": 0.0}
            return self._features(history, self._norm.get(cashier, 0.0), action.ts)
        history = self._actions.get(cashier)
        if history is None:
            history = self._actions[cashier] = deque(maxlen=self.max_actions)
            if len(self._actions) > self.max_cashiers:
                stalest, _ = self._actions.popitem(last=False)
                self._norm.pop(stalest, None)
        else:
            self._actions.move_to_end(cashier)  # most recently active last
        if action.kind == "void":
            history.append((action.ts, True))
        elif not action.with_receipt:
            history.append((action.ts, False))
        self._newest = max(self._newest, action.ts)
        horizon = self._newest - self.window_s
        counts: dict[str, int] = {}
        for name, kept in self._actions.items():
            while kept and kept[0][0] <= horizon:
                kept.popleft()
            counts[name] = sum(1 for _, is_void in kept if not is_void)
        # The norm: mean over the store's other cashiers seen recently (this one's excess is what stands out).
        others = [n for name, n in counts.items() if name != cashier]
        norm = sum(others) / len(others) if others else 0.0
        self._norm[cashier] = norm
        return self._features(history, norm, action.ts)

    def _features(self, history: deque[tuple[float, bool]], norm: float, ts: float) -> dict[str, float]:
        recent = [is_void for kept_ts, is_void in history if ts - kept_ts < self.window_s]
        voids = float(sum(recent))
        noreceipt = len(recent) - voids
        return {
            "cashier_noreceipt_30m": noreceipt,
            "cashier_noreceipt_excess": max(0.0, noreceipt - norm),
            "cashier_voids_30m": voids,
        }
