"""The quality harness measures the deployed flow: its in-process run and the real one score alike.

`benchmarks/fraud_quality.py` runs `flows.fraud.build_flow` with Bytewax's testing source
and sink; production runs the same function on Kafka and Redis. Fed the same events, both
must give every payment the same score document (score, decision, reasons, time).

Not compared: `model_version`, which counts the anomaly model's completed windows at the
start of the batch a payment was scored in, and batches are cut differently by a Kafka poll
than by the testing source. The stream stays below the supervised model's `min_legit`
(labels are few), so the blend is the rule score and does not depend on batch boundaries
either; what is compared is everything else the flow computes per payment: de-duplication,
card, shopper and register features across shards, routing, the score and its reasons.
Each entity's events are on one partition (cards of one session or store), as the
contract's keys make them, so their order is the same in both runs.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from benchmarks.fraud import PaymentStream
from benchmarks.fraud_quality import run_flow, score_docs
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish, run_to_end
from tests.integration.fraud_events import RULES, T0, burst, label, normal_shopper, sale

pytestmark = pytest.mark.integration


def events() -> list[tuple[Topic, bytes, bytes]]:
    """Till sales and online orders on fresh cards, card-testing bursts, a regular shopper, labels, a retry."""
    stream = [(r.topic, r.key or b"", r.value) for r in PaymentStream(3).records(3000)]
    stream += normal_shopper("U-000042", "tok_regular_42", T0)
    stream += burst("tok_stolen_77", T0 + 1.0, n=12, gap_s=0.1)
    stream += [sale(f"TXN-MANUAL-{i}", T0 + i, store="STORE-77", total=1500.0, entry_mode="manual",
                    card_token=f"tok_manual_{i}") for i in range(3)]  # fmt: skip
    stream.append(stream[10])  # a producer's retry: the same event again
    stream += [label(T0 + 5.0, order_id="BURST-0"), label(T0 + 6.0, order_id="BURST-1", verdict="legit")]
    return stream


def as_read(settings: Settings, stream: list[tuple[Topic, bytes, bytes]]) -> list[KafkaRecord]:
    offsets: dict[Topic, int] = {}
    out = []
    for topic, _, value in stream:
        offsets[topic] = offsets.get(topic, -1) + 1
        out.append(KafkaRecord(settings.topic(topic), 0, offsets[topic], value))
    return out


def comparable(doc: dict[str, Any]) -> tuple[Any, ...]:
    return doc["score"], doc["decision"], doc["reasons"], doc["scored_at"]


def test_harness_run_and_the_flow_on_kafka_and_redis_give_every_payment_the_same_score(
    settings: Settings, redis_client: redis.Redis
) -> None:
    fraud_settings = settings.model_copy(update={"fraud_rules_path": RULES})
    stream = events()
    publish(fraud_settings, stream)

    run_to_end(fraud_settings, flow="fraud")
    out, _ = run_flow(fraud_settings, as_read(fraud_settings, stream), batch=500)

    in_process = {doc["payment_id"]: comparable(doc) for doc in score_docs(out)}
    assert len(in_process) == len(score_docs(out)) > 3000  # every payment scored once
    deployed = {}
    for payment_id in in_process:
        doc = read_doc(redis_client, keys.score(payment_id))
        assert doc is not None, f"the deployed flow did not score {payment_id}"
        deployed[payment_id] = comparable(orjson.loads(doc))
    stored = sum(1 for _ in redis_client.scan_iter(match=keys.score("*"), count=1000))
    assert stored == len(in_process)
    assert deployed == in_process
    assert {decision for _, decision, _, _ in in_process.values()} >= {"allow", "review", "block"}
