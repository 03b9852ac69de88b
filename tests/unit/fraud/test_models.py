"""The anomaly forest, the label join and the online logistic model."""

from __future__ import annotations

import pickle
from collections import deque

import numpy as np

from operators.fraud.anomaly import HalfSpaceForest
from operators.fraud.supervised import LabelJoin, OnlineLogit


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


def test_forest_is_deterministic_for_a_seed_and_pickles() -> None:
    a, b = HalfSpaceForest(4, seed=5), HalfSpaceForest(4, seed=5)
    assert (a._split == b._split).all() and not (a._split == HalfSpaceForest(4, seed=6)._split).all()
    a.learn_many(normal_traffic(600))
    clone = pickle.loads(pickle.dumps(a))
    assert np.allclose(clone.score_many(normal_traffic(10)), a.score_many(normal_traffic(10)))


def test_label_join_takes_a_label_once_and_matures_the_rest_in_order() -> None:
    join = LabelJoin(presume_legit_after_s=100.0)
    join.remember_many(["A", "B", "C"], [0.0, 10.0, 20.0], np.asarray([[1.0], [2.0], [3.0]]))
    assert join.take("B") == [2.0] and join.take("B") is None
    assert join.mature(now=115.0).tolist() == [[1.0]]
    assert join.mature(now=1000.0).tolist() == [[3.0]]
    assert len(join) == 0


def test_label_join_matures_by_event_time_not_by_arrival() -> None:
    join = LabelJoin(presume_legit_after_s=60.0)
    join.remember("NEWEST", 700.0, [9.0])  # read first, from a partition ahead of the others
    join.remember_many([f"OLD-{i}" for i in range(5)], [float(i) for i in range(5)], np.zeros((5, 1)))

    assert join.mature(now=700.0).shape[0] == 5  # past the wait already: not held behind the newest
    assert len(join) == 1 and join.take("NEWEST") == [9.0]


def test_label_join_from_a_snapshot_in_arrival_order_loads_and_matures_by_event_time() -> None:
    join = LabelJoin(presume_legit_after_s=60.0)
    join.remember("NEWEST", 700.0, [9.0])
    join.remember("OLD", 0.0, [1.0])
    join._order = deque([(700.0, "NEWEST"), (0.0, "OLD")])  # as pickled before the heap: arrival order

    restored = pickle.loads(pickle.dumps(join))

    assert restored.mature(now=700.0).tolist() == [[1.0]]
    assert len(restored) == 1


def test_label_join_is_bounded_by_count_and_counts_what_it_dropped() -> None:
    join = LabelJoin(max_entries=100)
    for i in range(10):
        join.remember_many([f"P{i}-{j}" for j in range(50)], [float(i)] * 50, np.zeros((50, 3)))
    assert len(join) == 100 and join.dropped == 400
    assert join.take("P0-0") is None and join.take("P9-49") == [0.0, 0.0, 0.0]


def test_label_join_without_maturity_forgets_old_inputs_unlearned() -> None:
    join = LabelJoin(presume_legit_after_s=None, retention_s=50.0)
    join.remember("A", 0.0, [1.0])
    assert join.mature(now=100.0).shape[0] == 0 and len(join) == 0


def test_label_join_pickles_with_shared_batches() -> None:
    join = LabelJoin()
    join.remember_many([f"P{i}" for i in range(500)], [0.0] * 500, np.ones((500, 28)))
    blob = pickle.dumps(join)
    assert len(blob) < 500 * 28 * 4 + 40_000  # the batch array once, not once per payment
    assert pickle.loads(blob).take("P7") == [1.0] * 28


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


def test_label_join_sample_is_stable_and_about_the_share_asked() -> None:
    join = LabelJoin(sample_share=0.1)
    ids = [f"O-{i}" for i in range(20_000)]
    join.remember_many(ids, [0.0] * len(ids), np.zeros((len(ids), 2)))
    assert 1700 < len(join) < 2300
    again = LabelJoin(sample_share=0.1)
    assert [again.sampled(i) for i in ids[:500]] == [join.sampled(i) for i in ids[:500]]
    kept = next(i for i in ids if join.sampled(i))
    assert join.take(kept) == [0.0, 0.0]
