"""Payments awaiting their label: joined once, genuine only at maturity, forgotten at the horizon, compact."""

from __future__ import annotations

import pickle

import numpy as np

from operators.fraud.pending import DAY_S, PendingPayments, payment_keys


def inputs(n: int, width: int = 3, value: float = 1.0) -> np.ndarray:
    return np.full((n, width), value)


def test_a_label_thirty_days_late_meets_the_input_its_payment_was_scored_with() -> None:
    pending = PendingPayments()  # 120-day horizon, maturity at the horizon
    pending.remember_many(["P1", "P2"], [100.0, 200.0], np.asarray([[1.0, 2.0], [3.0, 4.0]]))
    assert pending.mature(now=30 * DAY_S).shape[0] == 0
    matched = pending.label_many(["P2"], [30 * DAY_S], [True], ["label"])
    assert matched.inputs.tolist() == [[3.0, 4.0]] and matched.is_fraud == [True]
    assert len(pending) == 1


def test_an_unlabelled_payment_is_never_presumed_genuine_before_its_maturity() -> None:
    pending = PendingPayments(horizon_s=120 * DAY_S, maturity_s=10 * DAY_S)
    pending.remember_many(["LATE-IN-DAY"], [DAY_S - 1.0], inputs(1))
    assert pending.mature(now=11 * DAY_S - 2.0).shape[0] == 0  # 10 days minus a second after the payment
    assert pending.mature(now=11 * DAY_S).shape[0] == 1
    assert pending.mature(now=12 * DAY_S).shape[0] == 0  # once


def test_payments_are_forgotten_at_the_horizon_and_their_labels_then_wait_as_unknown() -> None:
    pending = PendingPayments(horizon_s=20 * DAY_S)
    pending.remember_many(["P1"], [0.0], inputs(1))
    assert pending.mature(now=21 * DAY_S).shape[0] == 1 and pending.nbytes == 0
    matched = pending.label_many(["P1"], [21 * DAY_S], [True], ["late label"])
    assert matched.is_fraud == [] and len(pending.waiting) == 1
    assert [w.label for w in pending.expire(now=22 * DAY_S)] == ["late label"]


def test_many_batches_of_a_day_stay_few_sorted_runs_and_are_all_found() -> None:
    pending = PendingPayments()
    for b in range(200):
        ids = [f"P{b}-{i}" for i in range(50)]
        pending.remember_many(ids, [b * 10.0] * 50, inputs(50, value=float(b)))
    block = pending.blocks[0]
    assert len(block.runs) <= 10
    matched = pending.label_many([f"P{b}-7" for b in range(200)], [DAY_S] * 200, [False] * 200, [None] * 200)
    assert sorted(row[0] for row in matched.inputs.tolist()) == [float(b) for b in range(200)]
    assert len(pending) == 200 * 49


def test_the_oldest_day_is_dropped_unlearned_past_the_bound() -> None:
    pending = PendingPayments(max_payments=100)
    for day in range(3):
        pending.remember_many([f"D{day}-{i}" for i in range(50)], [day * DAY_S + i for i in range(50)], inputs(50))
    assert len(pending) == 100 and pending.dropped == 50 and min(pending.blocks) == 1


def test_runs_never_grow_past_their_bound_so_a_merge_never_holds_the_whole_day_twice() -> None:
    pending = PendingPayments(run_rows=400)
    for b in range(100):
        pending.remember_many([f"P{b}-{i}" for i in range(50)], [b * 10.0] * 50, inputs(50, value=float(b)))
    block = pending.blocks[0]
    assert max(len(run.keys) for run in block.runs) <= 400 and len(block) == 5_000
    pending.mature(now=DAY_S + 3_600.0)  # the day is over: neighbouring runs merged, still within the bound
    assert max(len(run.keys) for run in block.runs) <= 400 and len(block.runs) <= 5_000 // 200
    matched = pending.label_many([f"P{b}-3" for b in range(100)], [DAY_S] * 100, [True] * 100, [None] * 100)
    assert sorted(row[0] for row in matched.inputs.tolist()) == [float(b) for b in range(100)]


def test_past_the_bound_the_oldest_payments_go_a_run_at_a_time_not_the_whole_day() -> None:
    pending = PendingPayments(max_payments=1_000, run_rows=200)
    for b in range(30):  # one day, 1,500 payments in arrival order
        pending.remember_many([f"P{b}-{i}" for i in range(50)], [b * 10.0 + i for i in range(50)], inputs(50))
    assert 800 <= len(pending) <= 1_000 and pending.dropped == 1_500 - len(pending)
    newest = pending.label_many([f"P29-{i}" for i in range(50)], [DAY_S] * 50, [False] * 50, [None] * 50)
    oldest = pending.label_many([f"P0-{i}" for i in range(50)], [DAY_S] * 50, [False] * 50, [None] * 50)
    assert len(newest.is_fraud) == 50 and oldest.is_fraud == []


def test_the_store_pickles_and_costs_a_fixed_number_of_bytes_per_payment() -> None:
    pending = PendingPayments()
    pending.remember_many([f"P{i}" for i in range(10_000)], [float(i) for i in range(10_000)], inputs(10_000, 30))
    assert pending.bytes_per_payment == 8 + 4 + 2 * 30 + 1  # half-precision inputs
    assert pending.nbytes == 10_000 * pending.bytes_per_payment
    blob = pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 10_000 * pending.bytes_per_payment * 1.05
    clone = pickle.loads(blob)
    assert clone.label_many(["P77"], [DAY_S], [True], [None]).inputs.shape == (1, 30)


def test_payment_keys_are_stable_and_distinct() -> None:
    keys = payment_keys([f"P{i}" for i in range(100_000)])
    assert len(np.unique(keys)) == 100_000
    assert payment_keys(["P1"]).tolist() == payment_keys(["P1"]).tolist()


def test_merging_runs_equals_sorting_their_concatenation() -> None:
    from operators.fraud.pending import _merge, _Run, _sorted_run

    rng = np.random.default_rng(5)
    runs: list[_Run] = []
    for size in (0, 1, 7, 300, 64):
        keys = rng.integers(0, 50, size=size).astype(np.uint64)  # repeats: the tie order matters
        offsets = rng.integers(0, 86_400, size=size).astype(np.uint32)
        states = rng.integers(0, 3, size=size).astype(np.uint8)
        runs.append(_sorted_run(keys, offsets, rng.random((size, 3)).astype(np.float32), states))
    merged = _merge(runs)
    expected = _sorted_run(*(np.concatenate([getattr(r, f) for r in runs]) for f in _Run._fields))
    for field in _Run._fields:
        assert np.array_equal(getattr(merged, field), getattr(expected, field)), field


def test_a_store_snapshotted_with_single_precision_inputs_keeps_learning_after_the_change() -> None:
    from operators.fraud.pending import _Run

    pending = PendingPayments()
    pending.remember_many([f"OLD{i}" for i in range(100)], [float(i) for i in range(100)], inputs(100, 2, 0.1))
    block = pending.blocks[0]
    block.runs = [_Run(r.keys, r.offsets, r.inputs.astype(np.float32), r.state) for r in block.runs]
    clone = pickle.loads(pickle.dumps(pending))  # as the release before wrote it: float32 inputs
    for b in range(4):  # new rows in half precision merge with the old run
        clone.remember_many([f"NEW{b}-{i}" for i in range(100)], [200.0 + b] * 100, inputs(100, 2, 0.25))
    matched = clone.label_many(["OLD7", "NEW3-7"], [DAY_S, DAY_S], [True, False], [None, None])
    assert np.allclose(matched.inputs, [[0.1, 0.1], [0.25, 0.25]], atol=1e-3) and matched.is_fraud == [True, False]


def test_a_late_row_reopens_a_compacted_day_and_is_found_after_the_next_compaction() -> None:
    pending = PendingPayments(run_rows=400)
    for b in range(40):
        pending.remember_many([f"P{b}-{i}" for i in range(50)], [b * 10.0] * 50, inputs(50))
    block = pending.blocks[0]
    pending.mature(now=DAY_S + 3_600.0)
    pending.mature(now=DAY_S + 3_700.0)
    pending.remember_many(["LATE"], [DAY_S - 1.0], inputs(1, value=7.0))  # a late row for the day that is over
    pending.mature(now=DAY_S + 3_800.0)
    assert sum(len(run.keys) for run in block.runs) == 2_001
    assert max(len(run.keys) for run in block.runs) <= 400
    assert pending.label_many(["LATE"], [DAY_S + 3_900.0], [True], [None]).inputs.tolist() == [[7.0, 7.0, 7.0]]
