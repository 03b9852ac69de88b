"""The anomaly forest, the label join and the online logistic model."""

from __future__ import annotations

import pickle

import numpy as np

from operators.fraud.anomaly import HalfSpaceForest
from operators.fraud.supervised import OnlineLogit


def normal_traffic(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.3, 0.05, size=(n, 4)).clip(0, 1)


def test_forest_scores_far_points_above_normal_ones() -> None:
    forest = HalfSpaceForest(n_features=4, n_trees=15, height=8, window_size=250, seed=3)
    forest.learn_many(normal_traffic(1000))
    normal = forest.score_many(normal_traffic(200, seed=1))
    odd = forest.score_many(np.full((20, 4), 0.95))
    assert odd.min() > np.quantile(normal, 0.99)
    assert ((normal >= 0) & (normal <= 1)).all()


def test_forest_scores_zero_until_its_first_window_is_full() -> None:
    forest = HalfSpaceForest(n_features=4, window_size=100)
    forest.learn_many(normal_traffic(99))
    assert forest.windows == 0 and (forest.score_many(normal_traffic(5)) == 0).all()
    forest.learn_one([0.3, 0.3, 0.3, 0.3])
    assert forest.windows == 1


def test_forest_batches_never_straddle_a_window() -> None:
    one_batch = HalfSpaceForest(n_features=4, window_size=100, seed=1)
    one_batch.learn_many(normal_traffic(350))
    many = HalfSpaceForest(n_features=4, window_size=100, seed=1)
    for chunk in np.array_split(normal_traffic(350), 7):
        many.learn_many(chunk)
    assert one_batch.windows == many.windows == 3
    assert (one_batch._reference == many._reference).all() and (one_batch._latest == many._latest).all()


def test_score_learn_many_equals_score_then_learn() -> None:
    a, b = HalfSpaceForest(4, window_size=100, seed=2), HalfSpaceForest(4, window_size=100, seed=2)
    warm = normal_traffic(300)
    a.learn_many(warm)
    b.learn_many(warm)
    batch = normal_traffic(150, seed=9)
    scored = a.score_many(batch)
    a.learn_many(batch)
    assert np.allclose(b.score_learn_many(batch), scored)
    assert (a._reference == b._reference).all() and (a._latest == b._latest).all()


def _walked_score(forest: HalfSpaceForest, x: list[float]) -> float:
    """The half-space-tree score of one event, walking each tree node by node (the paper's definition)."""
    masses = []
    for tree in range(forest.n_trees):
        node, depth = 0, 0
        while True:
            mass = forest._reference[tree, node]
            if depth == forest.height or mass < forest.limit * forest.window_size:
                masses.append(min(1.0, mass * 2.0**depth / forest.window_size))
                break
            right = x[forest._feature[tree, node]] >= forest._split[tree, node]
            node, depth = 2 * node + 1 + int(right), depth + 1
    return 1.0 - sum(masses) / len(masses)


def test_batched_forest_scores_match_walking_each_tree_node_by_node() -> None:
    forest = HalfSpaceForest(4, n_trees=10, height=6, window_size=100, seed=3)
    forest.learn_many(normal_traffic(250))
    batch = np.vstack([normal_traffic(20, seed=4), np.random.default_rng(5).random((20, 4))])
    walked = [_walked_score(forest, row) for row in batch.tolist()]
    assert np.allclose(forest.score_many(batch), walked, rtol=0, atol=1e-12)
    assert len(set(np.round(walked, 6))) > 5  # thin nodes at several depths, not one constant score


def test_forest_learns_each_event_once_per_node_on_its_path() -> None:
    forest = HalfSpaceForest(4, n_trees=3, height=4, window_size=1000, seed=1)
    batch = normal_traffic(7)
    forest.learn_many(batch)
    assert forest._latest.sum() == 7 * 3 * (4 + 1)  # every tree counts each event at every depth
    assert (forest._latest[:, 0] == 7).all()  # every path starts at the root


def test_forest_is_deterministic_for_a_seed_and_pickles() -> None:
    a, b = HalfSpaceForest(4, seed=5), HalfSpaceForest(4, seed=5)
    assert (a._split == b._split).all() and not (a._split == HalfSpaceForest(4, seed=6)._split).all()
    a.learn_many(normal_traffic(600))
    clone = pickle.loads(pickle.dumps(a))
    assert np.allclose(clone.score_many(normal_traffic(10)), a.score_many(normal_traffic(10)))


def test_online_logit_starts_at_its_prior_and_learns_a_separable_rule() -> None:
    model = OnlineLogit(n_features=2, prior=[2.0, 0.0, -1.0])
    assert np.isclose(model.predict_one([1.0, 0.0]), 1 / (1 + np.exp(-1.0)))
    x = np.asarray([[0.0, 1.0], [1.0, 0.0]] * 50)
    y = [False, True] * 50
    for _ in range(100):
        model.learn_many(x, y)
    low, high = model.predict_many([[0.0, 1.0], [1.0, 0.0]])
    assert low < 0.1 < 0.9 < high
    assert model.updates == 10_000 and model.positives == 5000
