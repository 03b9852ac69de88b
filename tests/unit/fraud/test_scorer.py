"""The blend: starts as the rule book, learns from labels, decides by the rule file, explains without identifying."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from operators.fraud.features import FEATURE_DEFAULTS
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import MODEL_INPUT_NAMES, FraudScorer

BOOK = RuleBook.from_toml((Path(__file__).resolve().parents[3] / "deploy" / "fraud" / "rules.toml").read_text())


def payments(n: int, fraud_share: float, seed: int = 1) -> tuple[list[dict[str, float]], list[bool]]:
    """Synthetic feature dicts: fraud is foreign, keyed in, and on busy cards; legit is not."""
    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        fraud = rng.random() < fraud_share
        row = dict(FEATURE_DEFAULTS)
        row["amount"] = rng.uniform(200, 900) if fraud else rng.uniform(5, 200)
        row["card_payments_10m"] = float(rng.randint(2, 6) if fraud else rng.randint(1, 2))
        row["ip_billing_mismatch"] = float(fraud and rng.random() < 0.6)
        row["card_not_present"] = 1.0
        row["manual_entry"] = float(rng.random() < (0.5 if fraud else 0.05))
        rows.append(row)
        labels.append(fraud)
    return rows, labels


def test_untrained_blend_is_exactly_the_rule_score() -> None:
    rows, _ = payments(200, 0.2)
    full = FraudScorer(BOOK).score_many(rows)
    rules_only = FraudScorer(BOOK, mode="rules_only").score_many(rows)
    assert [v.score for v in full] == [v.score for v in rules_only]
    assert [v.decision for v in full] == [BOOK.decision(v.score) for v in rules_only]


def test_blend_waits_for_legitimate_examples_before_learning() -> None:
    scorer = FraudScorer(BOOK, min_legit=50)
    rows, _ = payments(100, 0.5)
    verdicts = scorer.score_many(rows)
    scorer.learn_labels([v.model_input for v in verdicts[:30]], [True] * 30)  # fraud labels come back first
    assert not scorer.supervised_ready and scorer.model_version.endswith("lr0")
    scorer.learn_labels([v.model_input for v in verdicts[30:90]], [False] * 60)
    assert scorer.supervised_ready and scorer.model_version.endswith("lr90")


def test_the_rules_score_while_what_the_model_learned_is_mostly_fraud() -> None:
    """Before maturity only fraud labels come back: a model trusted on that mix calls everything fraud."""
    scorer = FraudScorer(BOOK, min_legit=10)
    rules_only = FraudScorer(BOOK, mode="rules_only")
    rows, _ = payments(300, 0.05, seed=3)
    verdicts = scorer.score_many(rows)
    scorer.learn_labels([v.model_input for v in verdicts[:10]], [False] * 10)
    scorer.learn_labels([v.model_input for v in verdicts[10:40]], [True] * 30)  # 30 of 40 learned were frauds

    assert scorer.model.updates == 40 and not scorer.supervised_ready
    assert [v.score for v in scorer.score_many(rows)] == [v.score for v in rules_only.score_many(rows)]
    scorer.learn_labels([v.model_input for v in verdicts[40:100]], [False] * 60)  # matured: presumed genuine
    assert scorer.supervised_ready
    assert [v.score for v in scorer.score_many(rows)] != [v.score for v in rules_only.score_many(rows)]


def test_learning_from_labels_beats_the_rules_it_started_from() -> None:
    rows, labels = payments(6000, 0.05, seed=2)
    scorer = FraudScorer(BOOK, min_legit=100)
    for start in range(0, 4000, 200):
        verdicts = scorer.score_many(rows[start : start + 200])
        scorer.learn_labels([v.model_input for v in verdicts], labels[start : start + 200])
    test_rows, test_labels = rows[4000:], np.asarray(labels[4000:])
    learned = np.asarray([v.score for v in scorer.score_many(test_rows)])
    ruled = np.asarray([v.score for v in FraudScorer(BOOK, mode="rules_only").score_many(test_rows)])

    def separation(scores: np.ndarray) -> float:
        return float(scores[test_labels].mean() - scores[~test_labels].mean())

    assert separation(learned) > separation(ruled)
    assert learned[~test_labels].mean() < 0.1  # calibrated: legit payments get a low probability


def test_model_version_changes_when_the_models_learn_or_the_rules_change() -> None:
    scorer = FraudScorer(BOOK, min_legit=1, window_size=10)
    first = scorer.model_version
    rows, _ = payments(20, 0.0)
    scorer.learn_many(rows)
    assert scorer.model_version != first
    second = scorer.model_version
    scorer.learn_labels([scorer.score_one(rows[0]).model_input], [False])
    assert scorer.model_version != second
    scorer.set_rules(RuleBook.from_toml('version = "next"\n[decision]\nreview = 0.2\nblock = 0.7'))
    assert scorer.model_version.startswith("next+")


@pytest.mark.parametrize("mode", ["full", "rules_only", "anomaly_only"])
def test_scores_are_probabilities_with_a_decision_in_every_mode(mode: str) -> None:
    scorer = FraudScorer(BOOK, mode=mode, window_size=50)  # type: ignore[arg-type]
    rows, _ = payments(300, 0.1)
    scorer.learn_many(rows)
    for verdict in scorer.score_many(rows):
        assert 0.0 <= verdict.score <= 1.0 and verdict.decision == BOOK.decision(verdict.score)
        assert len(verdict.model_input) == len(MODEL_INPUT_NAMES)


def test_bad_feature_values_never_crash_and_score_finite() -> None:
    scorer = FraudScorer(BOOK)
    odd = [{"amount": float("nan")}, {"amount": float("inf"), "card_payments_1m": -3.0}, {}, {"unknown": 1.0}]
    verdicts = scorer.score_many(odd)
    assert all(math.isfinite(v.score) for v in verdicts)
    assert scorer.score_many([]) == []


def test_reasons_name_rules_and_features_never_a_card_or_a_shopper() -> None:
    rows, labels = payments(3000, 0.1, seed=4)
    scorer = FraudScorer(BOOK, min_legit=50)
    verdicts = scorer.score_many(rows)
    scorer.learn_labels([v.model_input for v in verdicts], labels)
    reasons = {r for v in scorer.score_many(rows) for r in v.reasons}
    assert reasons and any(r.startswith("feature: ") for r in reasons)
    assert not any("tok_" in r or "U-" in r or "411111" in r for r in reasons)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        FraudScorer(BOOK, mode="magic")  # type: ignore[arg-type]
