from __future__ import annotations

import pickle
import random

import orjson

from operators.recs.ranker import RecRanker, rank_score


def test_ranker_learns_which_feature_predicts_clicks_and_exports_it_exactly() -> None:
    rng = random.Random(1)
    ranker = RecRanker(learning_rate=0.05)
    for _ in range(3_000):
        covisit, trending = rng.random(), rng.random() * 10
        clicked = rng.random() < (0.8 if covisit > 0.5 else 0.1)
        ranker.learn_one({"covisit": covisit, "trending_global": trending}, clicked)
    weights = orjson.loads(orjson.dumps(ranker.export()))  # JSON round trip, as the API reads it
    assert weights["weights"]["covisit"] > 1.0
    assert abs(weights["weights"]["trending_global"]) < weights["weights"]["covisit"] / 5
    for x in ({"covisit": 0.9, "trending_global": 1.0}, {"covisit": 0.1, "trending_global": 9.0}):
        assert abs(rank_score(weights, x) - ranker.predict_one(x)) < 1e-9
    assert rank_score(weights, {"covisit": 0.9}) > rank_score(weights, {"covisit": 0.1})


def test_untrained_ranker_is_neutral_and_pickles() -> None:
    ranker = RecRanker()
    assert ranker.export() == {"version": 0, "intercept": 0.0, "weights": {}}
    assert rank_score(ranker.export(), {"covisit": 1.0}) == 0.5
    assert pickle.loads(pickle.dumps(ranker)).version == 0


def test_rank_score_does_not_overflow() -> None:
    assert rank_score({"version": 1, "intercept": -1e6, "weights": {}}, {}) == 0.0
    assert rank_score({"version": 1, "intercept": 1e6, "weights": {}}, {}) == 1.0
