"""Decision thresholds from a daily review budget and a target block precision (`operators.fraud.budget`)."""

from __future__ import annotations

import numpy as np

from operators.fraud.budget import DAY_S, DecisionBudget


def test_rules_thresholds_until_a_day_of_scores_and_enough_labels() -> None:
    budget = DecisionBudget(review_per_day=5, block_precision=0.9)
    budget.observe(np.linspace(0.0, 1.0, 500), ts=10.0)
    assert budget.thresholds(0.3, 0.95) == (0.3, 0.95)  # the first day is not over yet
    budget.learn(np.full(10, 0.99), np.ones(10, dtype=bool))  # fewer than min_labelled
    assert budget.thresholds(0.3, 0.95) == (0.3, 0.95)


def test_review_threshold_keeps_reviews_within_the_daily_budget() -> None:
    rng = np.random.default_rng(3)
    budget = DecisionBudget(review_per_day=50, block_precision=0.9)
    days = [rng.beta(0.5, 20.0, size=5_000) for _ in range(4)]
    for day, scores in enumerate(days):
        budget.observe(scores, ts=day * DAY_S + 100.0)
    budget.observe(np.zeros(1), ts=4 * DAY_S)
    review, _ = budget.thresholds(0.01, 1.0)
    per_day = np.mean([(scores >= review).sum() for scores in days])
    assert 25 <= per_day <= 50  # within the budget, and not far below it (bins are 0.1 of log-odds)


def test_block_threshold_is_the_lowest_score_with_the_target_precision() -> None:
    budget = DecisionBudget(review_per_day=50, block_precision=0.8, min_labelled=20)
    scores = np.concatenate([np.full(100, 0.3), np.full(40, 0.6), np.full(40, 0.95)])
    fraud = np.concatenate([np.zeros(100, bool), np.arange(40) < 20, np.ones(40, bool)])
    budget.learn(scores, fraud)
    _, block = budget.thresholds(0.1, 0.99)
    # Above 0.3: 60 frauds of 80 (0.75) is short of 0.8; above 0.6: all 40 are fraud.
    assert 0.6 < block <= 0.95
    assert (scores[fraud] >= block).sum() == 40 and (scores[~fraud] >= block).sum() == 0
