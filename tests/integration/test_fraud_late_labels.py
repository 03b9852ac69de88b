"""Late labels on the real broker, Redis and Bytewax: a month late, all matched and learned, across a restart.

Payments of ten days are scored; the flow stops (its state in the recovery partitions); it is
restarted and their labels arrive 30 days after each payment, among a later week of traffic.
Every label must meet the input its payment was scored with, and no unlabelled payment may be
learned as genuine before its maturity.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from omnistream.settings import Settings
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish, run_to_end, stream_records
from tests.integration.fraud_events import RULES, T0, label, sale

pytestmark = pytest.mark.integration

DAY = 86_400.0
SHARDS = 2
LATE = 30 * DAY


def _first_days() -> list[tuple[str, float, bool]]:
    """(payment id, ts, fraud) for 60 payments a day over 10 days; every 20th is fraud."""
    return [
        (f"T-{d:02d}-{i:02d}", T0 + d * DAY + i * 1200.0, (d * 60 + i) % 20 == 0) for d in range(10) for i in range(60)
    ]


def _models(client: redis.Redis) -> list[dict[str, Any]]:
    docs = [read_doc(client, keys.fraud_model(shard)) for shard in range(SHARDS)]
    return [orjson.loads(doc) for doc in docs if doc is not None]


def _totals(models: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(m["labels"][name] for m in models) for name in models[0]["labels"]}


@pytest.fixture
def late_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fraud_rules_path": RULES, "fraud_shards": SHARDS,
                                       "fraud_label_maturity_s": 45 * DAY})  # fmt: skip


def test_labels_a_month_late_are_all_matched_and_learned_and_nothing_is_presumed_genuine_before_maturity(
    late_settings: Settings, redis_client: redis.Redis
) -> None:
    payments = _first_days()
    publish(late_settings, [sale(pid, ts, card_token=f"tok_{pid[-2:]}", store=f"STORE-{pid[-1]}")
                            for pid, ts, _ in payments])  # fmt: skip
    run_to_end(late_settings, flow="fraud")
    before = _models(redis_client)
    assert sum(m["pending_labels"] for m in before) == len(payments)
    assert _totals(before)["presumed_genuine"] == 0 and sum(m["supervised_updates"] for m in before) == 0
    assert {m["bytes_per_pending_payment"] for m in before} == {before[0]["bytes_per_pending_payment"]}
    assert 0 < before[0]["bytes_per_pending_payment"] < 200

    # Restarted from its recovery state: a week of later traffic, each label 30 days after its payment,
    # and one label for a payment nobody scored.
    later = [sale(f"L-{h:03d}", T0 + LATE + h * 3600.0, card_token="tok_later") for h in range(24 * 12)]
    labels = [label(ts + LATE, txn_id=pid, verdict="fraud" if fraud else "legit") for pid, ts, fraud in payments]
    labels.append(label(T0 + LATE, txn_id="T-NEVER-SCORED"))
    publish(late_settings, later + labels)
    run_to_end(late_settings, flow="fraud")

    after = _models(redis_client)
    frauds = sum(fraud for _, _, fraud in payments)
    totals = _totals(after)
    assert (totals["fraud"], totals["legit"]) == (frauds, len(payments) - frauds)
    # Day 42 at the latest: no payment is 45 days old, none was learned as genuine without a label.
    assert totals["presumed_genuine"] == 0
    # Learned, or held until the model's first `min_legit` genuine examples (then learned together).
    assert sum(m["supervised_updates"] + m["examples_buffered"] for m in after) == len(payments)
    assert sum(m["pending_labels"] for m in after) == len(later)
    assert totals["unknown"] == 1
    letters = [r for r in stream_records(late_settings.redis.url, keys.dlq_stream())
               if "label for an unknown payment" in str(r["error"])]  # fmt: skip
    assert len(letters) == 1 and "T-NEVER-SCORED" in str(letters[0]["error"])


def test_a_payment_is_learned_as_genuine_at_maturity_when_no_label_came(
    late_settings: Settings, redis_client: redis.Redis
) -> None:
    publish(late_settings, [sale(f"T-{i}", T0 + i * 60.0, card_token=f"tok_{i}") for i in range(600)])
    publish(late_settings, [sale(f"T-44-{i}", T0 + 44 * DAY + i, card_token="tok_x") for i in range(20)])
    run_to_end(late_settings, flow="fraud")
    assert _totals(_models(redis_client))["presumed_genuine"] == 0  # 44 days on: not mature yet

    # Each scorer shard judges maturity on its own payments' clock: traffic for every shard.
    publish(late_settings, [sale(f"T-46-{i}", T0 + 46 * DAY + i, card_token="tok_y") for i in range(20)])
    run_to_end(late_settings, flow="fraud")
    models = _models(redis_client)
    assert _totals(models)["presumed_genuine"] == 600
    assert sum(m["supervised_updates"] + m["examples_buffered"] for m in models) == 600
