"""The quality harness runs end to end on a small stream and writes a well-formed result."""

from __future__ import annotations

import math

import numpy as np
import orjson

from benchmarks.fraud_quality import average_precision, roc_auc, run
from operators.fraud.scorer import MODES


def test_roc_and_pr_auc_of_known_rankings() -> None:
    y = np.asarray([False, False, True, True])
    assert roc_auc(y, np.asarray([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.asarray([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert average_precision(y, np.asarray([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert math.isclose(average_precision(y, np.asarray([0.9, 0.2, 0.8, 0.1])), (1 / 2 + 2 / 4) / 2)


def test_harness_small_run_is_well_formed() -> None:
    small = dict(n_skus=300, n_stores=4, n_warehouses=2, n_users=800, events_per_s=20.0, incident_start_s=600.0)
    result = run(seed=3, n_records=40_000, batch=200, shuttle_rows=800, workload_params=small)
    orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)  # writable as JSON
    assert set(result["modes"]) == set(MODES)
    for mode in result["modes"].values():
        assert mode["payments"] > 1000 and mode["fraud_payments"] > 0
        assert 0.0 <= mode["roc_auc"] <= 1.0 and 0.0 <= mode["pr_auc"] <= 1.0
        assert {"precision", "recall", "threshold", "flagged"} <= set(mode["review"])
        assert mode["flow_us_per_payment"] > 0 and mode["score_documents"] == mode["payments"]
        assert set(mode["detection"]["incidents"]) == {"store_dark", "register_silent", "shrink_spike",
                                                       "dead_letter_burst"}  # fmt: skip
    shuttle = result["shuttle"]
    assert shuttle["rows"] == 800
    assert 0.0 <= shuttle["river_hst_default"]["roc_auc"] <= 1.0
    assert set(result["acceptance"]) == {
        "blend_pr_auc_beats_rules_only", "blend_pr_auc_beats_anomaly_only", "block_precision_at_least_0_9",
        "review_recall_at_least_0_9",
    }  # fmt: skip
