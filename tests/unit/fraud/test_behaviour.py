"""Behaviour over days: a card's habit and a store's received fraud labels, in bounded state."""

from __future__ import annotations

import pickle
from pathlib import Path

from events.models import FraudLabel
from events.topics import Topic
from operators.fraud.behaviour import DAY_S, CardHabit, StoreRisk
from operators.fraud.features import time_of_week
from operators.fraud.pending import PaymentDirectory
from operators.fraud.records import LabelSeen, Scoring, StoreLabel
from operators.fraud.rules import RuleBook
from operators.fraud.shards import DirectoryShard, RegisterShard
from tests.unit.fraud.builders import T0, action, event, till

BOOK = RuleBook.from_toml((Path(__file__).resolve().parents[3] / "deploy" / "fraud" / "rules.toml").read_text())


def test_a_card_paying_five_times_its_habit_reads_five_and_its_windows_count_whole_days() -> None:
    card = CardHabit.new()
    for day in range(20):
        CardHabit.learn_one(card, T0 + day * DAY_S, 40.0)
    features = CardHabit.learn_one(card, T0 + 20 * DAY_S + 60.0, 200.0)
    assert features["card_amount_ratio_30d"] == 5.0
    assert (features["card_payments_1d"], features["card_payments_7d"], features["card_payments_30d"]) == (1, 7, 21)


def test_a_leaked_cards_recent_frauds_inflate_its_30_day_mean_but_not_its_older_habit() -> None:
    card = CardHabit.new()
    for day in range(20):
        CardHabit.learn_one(card, T0 + day * DAY_S, 40.0)
    for day in range(20, 26):  # a leaked card: a payment at 5 times the basket every day for 6 days
        CardHabit.learn_one(card, T0 + day * DAY_S, 200.0)
    features = CardHabit.learn_one(card, T0 + 26 * DAY_S + 60.0, 200.0)
    assert features["card_amount_ratio_habit"] == 5.0  # against days 14..29 back: all 40
    assert features["card_amount_ratio_30d"] < 3.0  # against a 30-day mean the frauds raised


def test_a_card_forgets_days_past_thirty_and_keeps_bounded_buckets() -> None:
    card = CardHabit.new()
    for i in range(2000):
        CardHabit.learn_one(card, T0 + i * 3600.0, 10.0)  # hourly for 83 days
    hours, days = card
    assert len(days) <= 3 * 30 and len(hours) <= 3 * 24
    features = CardHabit.learn_one(card, T0 + 2000 * 3600.0, 10.0)
    assert features["card_payments_30d"] <= 30 * 24 + 1 and features["card_payments_1d"] == 24


def test_a_store_fraud_rate_is_over_the_days_with_labels_received_and_ages_out() -> None:
    store = StoreRisk()
    for i in range(100):
        store.learn_one(T0 + i * 600.0)  # day 0 (and a little of day 1)
    before = store.learn_one(T0 + 7 * DAY_S)
    assert before["store_fraud_rate_30d"] == 0.0
    for i in range(10):
        store.label(T0 + i * 600.0, is_fraud=True)
    after = store.learn_one(T0 + 7 * DAY_S + 1)
    # Over the days ending at the newest day with labels (day 0), not the week without any yet.
    assert after["store_fraud_rate_1d"] == after["store_fraud_rate_30d"] == 0.1
    assert store.learn_one(T0 + 45 * DAY_S)["store_fraud_rate_30d"] == 0.0  # day 0 forgotten


def test_night_and_weekend_are_read_from_the_event_time() -> None:
    monday_noon = T0 + DAY_S + 12 * 3600.0
    assert time_of_week(monday_noon) == {"night": 0.0, "weekend": 0.0}
    assert time_of_week(T0 + 2 * 3600.0) == {"night": 1.0, "weekend": 1.0}  # Sunday 02:00


def test_the_directory_finds_a_payments_store_until_the_horizon_and_pickles() -> None:
    directory = PaymentDirectory(horizon_s=30 * DAY_S)
    directory.remember_many([f"T{i}" for i in range(1000)], [T0 + i for i in range(1000)],
                            [f"S{i % 7}" for i in range(1000)])  # fmt: skip
    clone = pickle.loads(pickle.dumps(directory))
    assert clone.find_many(["T500", "T-NONE"]) == [("S3", T0 + 500), None]
    clone.forget(T0 + 31 * DAY_S)
    assert clone.find_many(["T500"]) == [None] and len(clone) == 0


def label_seen(txn_id: str, ts: float, verdict: str) -> LabelSeen:
    label = event(Topic.LABELS, "fraud_label", ts, f"lab-{txn_id}", txn_id=txn_id, label=verdict,
                  source="chargeback")  # fmt: skip
    assert type(label) is FraudLabel
    return LabelSeen(label, "omni.labels", 0, 1)


def test_a_fraud_label_reaches_the_store_of_its_payment_and_raises_its_fraud_rate() -> None:
    directory, registers = DirectoryShard(120 * DAY_S, 100_000), RegisterShard(BOOK, 1800.0, 100)
    sales = [Scoring(till(i * 600.0, payment_id=f"T{i}"), action("sale", i * 600.0, txn_id=f"T{i}"), f"e{i}",
                     T0 + i * 600.0) for i in range(10)]  # fmt: skip
    passed, _, _ = directory.learn_many(sales)
    registers.learn_many(passed, BOOK)
    _, labels, store_labels = directory.learn_many([label_seen("T3", T0 + 7 * DAY_S, "fraud")])
    assert [seen.payment_id for seen in labels] == ["T3"]
    assert store_labels == [StoreLabel("S1", T0 + 1800.0, True)]
    registers.learn_many(store_labels, BOOK)
    later = Scoring(till(8 * DAY_S, payment_id="T-LATER"), action("sale", 8 * DAY_S, txn_id="T-LATER"), "e-later",
                    T0 + 8 * DAY_S)  # fmt: skip
    scored, _ = registers.learn_many([later], BOOK)
    assert scored[0].features["store_fraud_rate_30d"] == 1 / 10  # over the labelled day: 1 fraud in 10
