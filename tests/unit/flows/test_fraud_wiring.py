"""The fraud flow's wiring, run in process: injected source and sink, no broker, no Redis."""

from __future__ import annotations

import bisect
import dataclasses
import random
import time
import zlib
from typing import Any

import msgspec
import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.fraud import INPUT_TOPICS, build_flow
from flows.fraud_stages import Decoder, FraudAlertStage, FraudStage, OpsStage
from flows.kafka_source import KafkaRecord
from flows.metrics import DUPLICATES, EVENTS_IN, FRAUD_LABELS, SKIPPED
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from operators.fraud.alerts import card_ref
from operators.fraud.records import DeadLetterSeen, ShardVerdicts, ShrinkSeen, TrafficSeen
from sim.workload import Workload
from state import keys
from state.doc_writer import FencedDoc
from tests.integration.fraud_events import RULES, T0, burst, label, normal_shopper, purchase, sale

SETTINGS = Settings(fraud_rules_path=RULES, fraud_shards=4)


def records(events: list[tuple[Topic, bytes, bytes]]) -> list[KafkaRecord]:
    """One Kafka record per event, offsets counted per topic (one partition each)."""
    offsets: dict[Topic, int] = {}
    out = []
    for topic, _, value in events:
        offsets[topic] = offsets.get(topic, -1) + 1
        out.append(KafkaRecord(SETTINGS.topic(topic), 0, offsets[topic], value))
    return out


def run(events: list[KafkaRecord]) -> list[FlowRecord]:
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(events, batch_size=7), sink=TestingSink(out)))
    return out


def scores(out: list[FlowRecord]) -> dict[str, list[dict[str, Any]]]:
    """Every score document the flow emitted, by payment id (a list: a payment scored twice would show)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for item in out:
        if type(item) is FencedDoc and item.key.startswith(keys.score("")[:-2]):
            doc = orjson.loads(item.doc)
            assert item.key == keys.score(doc["payment_id"])
            found.setdefault(doc["payment_id"], []).append(doc)
    return found


def counter(child: Any) -> float:
    return float(child._value.get())


def test_payments_a_label_a_malformed_label_and_a_retry_give_scores_alerts_and_one_dead_letter() -> None:
    shopper = normal_shopper("U-000042", "tok_regular_42", T0)
    attack = burst("tok_stolen_77", T0 + 600.0, n=8)
    till = [sale(f"TXN-{i}", T0 + 900.0 * i, card_token=f"tok_till_{i}") for i in range(3)]
    retried = attack[4]
    events = shopper + till + attack[:5] + [retried] + attack[5:]
    events.append(label(T0 + 900.0, order_id="BURST-0"))
    malformed = (Topic.LABELS, b"BURST-1", b'{"type": "fraud_label", "label": "maybe"}')
    events.append(malformed)
    duplicates, fraud_labels = counter(DUPLICATES.labels("fraud")), counter(FRAUD_LABELS.labels("fraud", "fraud"))

    out = run(records(events))

    scored = scores(out)
    expected = {f"U-000042-O{i}" for i in range(4)} | {f"TXN-{i}" for i in range(3)} | {f"BURST-{i}" for i in range(8)}
    assert set(scored) == expected
    assert all(len(docs) == 1 for docs in scored.values()), "the retried event was scored twice"
    assert counter(DUPLICATES.labels("fraud")) == duplicates + 1
    assert all(scored[f"U-000042-O{i}"][0]["decision"] == "allow" for i in range(4))
    assert all(scored[f"TXN-{i}"][0]["decision"] == "allow" for i in range(3))
    burst_decisions = [scored[f"BURST-{i}"][0]["decision"] for i in range(8)]
    assert all(d in ("review", "block") for d in burst_decisions[3:]), burst_decisions
    # The label found the input its payment was scored with (same scorer shard) and taught it.
    assert counter(FRAUD_LABELS.labels("fraud", "fraud")) == fraud_labels + 1

    letters = [item for item in out if type(item) is DeadLetter]
    assert [(d.source_topic, d.offset) for d in letters] == [(SETTINGS.topic(Topic.LABELS), 1)]
    assert letters[0].error

    alerts = [item for item in out if type(item) is Alert]
    fraud = [a for a in alerts if a.kind == "fraud"]
    assert fraud and {a.entity.type for a in fraud} == {"card"} and len({a.entity.id for a in fraud}) == 1
    assert {a.entity.id for a in alerts} == {card_ref("tok_stolen_77")}  # nothing on the shopper or the tills
    opened = [a for a in fraud if a.status == "open"]
    assert all(a.alert_id.startswith(opened[0].alert_id) for a in fraud)  # one incident, escalated at most
    assert len({a.severity for a in opened}) == len(opened) <= 3
    assert "tok_stolen_77" not in orjson.dumps(alerts).decode()
    model_docs = [item for item in out if type(item) is FencedDoc and item.key.startswith(keys.fraud_model(0)[:-3])]
    assert model_docs, "no scorer shard published its model document"
    assert {type(item) for item in out} <= {FencedDoc, Alert, DeadLetter}


def test_building_and_running_needs_no_broker_and_no_redis() -> None:
    # Unreachable addresses: anything that connected at build or run time would fail or hang here.
    settings = SETTINGS.model_copy(update={"kafka_brokers": "127.0.0.1:9", "redis_url": "redis://127.0.0.1:9/0"})
    out: list[FlowRecord] = []
    events = records([sale("TXN-9", T0)])
    run_main(build_flow(settings, source=TestingSource(events), sink=TestingSink(out)))
    assert [orjson.loads(item.doc)["payment_id"] for item in out if type(item) is FencedDoc
            and item.key == keys.score("TXN-9")] == ["TXN-9"]  # fmt: skip


DECODER_TOPICS = {
    SETTINGS.topic(t): t for t in (Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY, Topic.LABELS, Topic.DLQ)
}
STOCK = {"event_id": "st-1", "ts": "2025-11-23T00:10:00Z", "schema_version": 1, "sku": "SKU-1", "location_id": "S1"}


def record(topic: Topic, offset: int, value: bytes | None, error: str | None = None) -> KafkaRecord:
    return KafkaRecord(SETTINGS.topic(topic), 0, offset, value, error)


def test_a_kafka_error_on_the_dead_letter_topic_is_counted_as_skipped_and_signals_nothing() -> None:
    # No flow dead-letters `dlq`: the ops signal the record would have given is lost, and the count says so.
    before = counter(SKIPPED.labels("fraud", Topic.DLQ.value))

    out = Decoder(DECODER_TOPICS, 4).decode_batch([record(Topic.DLQ, 0, None, error="Broker: Message corrupt")])

    assert out == []
    assert counter(SKIPPED.labels("fraud", Topic.DLQ.value)) == before + 1


def test_dead_letter_records_become_ops_signals_and_are_not_counted_as_input_events() -> None:
    letter = msgspec.json.encode(DeadLetter.of("omni.pos", 0, 3, "bad", b"{}"))
    seen = counter(EVENTS_IN.labels("fraud", Topic.DLQ.value, Topic.DLQ.value))

    out = Decoder(DECODER_TOPICS, 4).decode_batch([record(Topic.DLQ, 0, letter), record(Topic.DLQ, 1, b"not json")])

    assert len(out) == 1 and out[0].stage is FraudStage.OPS
    [signal] = out[0].items
    assert type(signal) is DeadLetterSeen and signal.source_topic == "omni.pos"
    assert counter(EVENTS_IN.labels("fraud", Topic.DLQ.value, Topic.DLQ.value)) == seen


def test_only_purchases_and_shrink_adjustments_of_the_shared_topics_are_decoded_and_counted() -> None:
    view = orjson.dumps({"event_id": "v1", "type": "page_view", "ts": "2025-11-23T00:10:00Z", "schema_version": 1,
                         "session_id": "s1", "channel": "web", "path": "/"})  # fmt: skip
    receipt = orjson.dumps(STOCK | {"type": "receipt", "qty": 4})
    shrink = orjson.dumps(STOCK | {"type": "adjustment", "qty": -2, "reason": "shrink"})
    bought = purchase("O-1", T0, card_token="tok_web_1", user_id="U-1")[2]
    counted = {kind: counter(EVENTS_IN.labels("fraud", topic.value, kind)) for topic, kind in
               ((Topic.CLICKSTREAM, "page_view"), (Topic.CLICKSTREAM, "purchase"), (Topic.INVENTORY, "receipt"),
                (Topic.INVENTORY, "adjustment"))}  # fmt: skip

    out = Decoder(DECODER_TOPICS, 4).decode_batch([
        record(Topic.CLICKSTREAM, 0, view), record(Topic.INVENTORY, 0, receipt),
        record(Topic.CLICKSTREAM, 1, bought), record(Topic.INVENTORY, 1, shrink),
    ])  # fmt: skip

    [order] = [batch for batch in out if batch.stage is FraudStage.ORDER]  # payments go through event-time order
    [arrivals] = order.items
    assert [item.payment_id for _, _, item in arrivals.entries] == ["O-1"]
    assert arrivals.marks == {f"{SETTINGS.topic(Topic.CLICKSTREAM)}/0": T0}
    [ops] = [batch for batch in out if batch.stage is FraudStage.OPS]
    assert ops.items == [TrafficSeen(T0), ShrinkSeen("S1", 2, T0 + 600.0)]  # the web purchase, then the shrink
    assert {batch.stage for batch in out} == {FraudStage.ORDER, FraudStage.OPS}
    after = {kind: counter(EVENTS_IN.labels("fraud", topic.value, kind)) for topic, kind in
             ((Topic.CLICKSTREAM, "page_view"), (Topic.CLICKSTREAM, "purchase"), (Topic.INVENTORY, "receipt"),
              (Topic.INVENTORY, "adjustment"))}  # fmt: skip
    assert {kind: after[kind] - counted[kind] for kind in after} == {"page_view": 0, "purchase": 1, "receipt": 0,
                                                                    "adjustment": 1}  # fmt: skip


def _partitioned(events: list[tuple[Topic, bytes, bytes]], partitions: int) -> dict[tuple[str, int], list[bytes]]:
    """Each event in its topic's partition by key (crc32, as Kafka's producer would spread them), in order."""
    out: dict[tuple[str, int], list[bytes]] = {}
    for topic, key, value in events:
        out.setdefault((SETTINGS.topic(topic), zlib.crc32(key) % partitions), []).append(value)
    return out


def _interleaved(parts: dict[tuple[str, int], list[bytes]], block: int) -> list[KafkaRecord]:
    """The partitions read `block` records at a time, in turn (how a consumer's fetches may fall)."""
    cursors = dict.fromkeys(parts, 0)
    out: list[KafkaRecord] = []
    while any(cursors[part] < len(values) for part, values in parts.items()):
        for (topic, partition), values in parts.items():
            at = cursors[topic, partition]
            out += [KafkaRecord(topic, partition, at + i, value) for i, value in enumerate(values[at : at + block])]
            cursors[topic, partition] = at + block
    return out


def test_scores_do_not_depend_on_how_the_partitions_interleave_or_the_batches_fall() -> None:
    # Sales of 200 cards at 12 stores (4 partitions by store) over two days, each labelled an hour later (labels
    # topic, 2 partitions): read one record per partition in turn in batches of 7, or 100 per partition in
    # batches of 64, every stage sees the same events in the same order, and the models learn the same chunks.
    rng = random.Random(3)
    events = []
    for i in range(3000):
        ts, card = T0 + i * 50.0, rng.randrange(200)
        fraud = card % 25 == 0
        total = round(rng.uniform(10.0, 60.0) * (6.0 if fraud else 1.0), 2)
        store = "STORE-BAD" if fraud and rng.random() < 0.7 else f"STORE-{rng.randrange(12):02d}"
        events.append(sale(f"T-{i}", ts, store=store, total=total, card_token=f"tok_{card}"))
        events.append(label(ts + 3600.0, txn_id=f"T-{i}", verdict="fraud" if fraud else "legit"))
    sales = [e for e in events if e[0] is Topic.POS]
    labels = [e for e in events if e[0] is Topic.LABELS]
    parts = _partitioned(sales, 4) | _partitioned(labels, 2)
    settings = SETTINGS.model_copy(update={"fraud": SETTINGS.fraud.model_copy(
        update={"order_idle_s": 1e-3, "order_idle_batches": 40, "order_quiet_s": 60.0})})  # fmt: skip

    def scored(block: int, batch_size: int) -> dict[str, tuple[Any, ...]]:
        out: list[FlowRecord] = []
        source = TestingSource(_interleaved(parts, block), batch_size=batch_size)
        run_main(build_flow(settings, source=source, sink=TestingSink(out)))
        return {pid: (d["score"], d["decision"], d["reasons"], d["model_version"]) for pid, [d] in scores(out).items()}

    one_by_one, in_blocks = scored(1, 7), scored(100, 64)
    assert len(one_by_one) == 3000
    differing = [pid for pid in one_by_one if one_by_one[pid] != in_blocks.get(pid)]
    assert differing == [], [(pid, one_by_one[pid][::3], in_blocks[pid][::3]) for pid in differing[:3]]
    assert "+lr0" not in one_by_one["T-2999"][3], "the supervised model should have learned by the end"
    assert len({version for *_, version in one_by_one.values()}) > 10  # the models moved on, chunk by chunk


def test_the_model_document_is_written_when_a_chunk_is_learned_not_every_batch() -> None:
    # 200 sales within 40 s of event time in 40 batches: the chunk (60 s) stays open, so the model has not
    # changed and no document is written; a sale a chunk later closes it: one document, fenced by its version.
    events = [sale(f"T-{i}", T0 + i * 0.2, card_token=f"tok_{i % 30}") for i in range(200)]
    events.append(sale("T-next", T0 + 90.0, card_token="tok_next"))
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(records(events), batch_size=5), sink=TestingSink(out)))
    model_docs = [item for item in out if type(item) is FencedDoc and item.key == keys.fraud_model(0)]
    assert len(scores(out)) == 201
    assert [doc.version for doc in model_docs] == [1]
    assert orjson.loads(model_docs[0].doc)["pending_labels"] == 201  # after the batch that closed it (T-next's)


def _auc(positives: list[float], negatives: list[float]) -> float:
    """The chance that a positive scores above a negative (ties count half)."""
    ranked = sorted(negatives)
    below = [bisect.bisect_left(ranked, p) + 0.5 * (bisect.bisect_right(ranked, p) - bisect.bisect_left(ranked, p))
             for p in positives]  # fmt: skip
    return sum(below) / len(positives) / len(negatives)


def test_the_flow_ranks_the_simulators_amount_outliers_and_leaked_cards_above_the_rest() -> None:
    # A small simulated run with the card-fraud benchmark's scenarios on. Its supervised model never starts
    # (it waits for 500 genuine examples; the simulator confirms few payments genuine and none mature in hours),
    # so this is the rules and the anomaly model: they see amounts, not a skimmed terminal (at chance here).
    workload = Workload(seed=5, n_skus=200, n_stores=4, n_warehouses=2, n_users=400, events_per_s=20.0,
                        amount_outlier_rate=0.002, compromised_terminal_rate=0.0005, compromised_card_rate=0.002,
                        terminal_compromise_s=3 * 3600.0, card_compromise_s=2 * 3600.0)  # fmt: skip
    wanted = set(INPUT_TOPICS)
    stream = [KafkaRecord(SETTINGS.topic(r.topic), 0, i, r.value)
              for i, r in enumerate(workload.records(60_000)) if r.topic in wanted]  # fmt: skip
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(stream, batch_size=500), sink=TestingSink(out)))
    scored = {pid: docs[0]["score"] for pid, docs in scores(out).items()}
    rest = [score for pid, score in scored.items() if pid not in workload.fraud_ids]
    for scenario in ("amount_outlier", "compromised_card"):
        planted = [scored[pid] for pid in workload.fraud_by_scenario[scenario] if pid in scored]
        assert len(planted) >= 5, scenario
        assert _auc(planted, rest) > 0.65, scenario


def test_stages_without_event_time_order_take_several_groups_in_one_batch() -> None:
    # Bytewax may hand a key several upstream batches at once: verdicts and ops signals carry no `sequence`.
    alerts = FraudAlertStage(SETTINGS)(None)
    alerts.on_batch([[ShardVerdicts([], T0)], [ShardVerdicts([], T0 + 1.0)]])
    assert alerts.shard.clock == T0 + 1.0
    ops = OpsStage(SETTINGS)(None)
    ops.on_batch([[TrafficSeen(T0)], [TrafficSeen(T0 + 1.0), ShrinkSeen("S1", 1, T0 + 2.0)]])
    assert ops.shard.clock == T0 + 2.0


def test_events_dated_far_ahead_of_the_wall_clock_are_refused_and_presume_no_payment_genuine() -> None:
    # A label system or a till whose clock is a year ahead: learned from, it would move the scorer's event-time
    # clock past every pending payment's maturity, and they would all be learned as genuine at once.
    year_ahead = time.time() + 365 * 86_400.0
    events = [sale(f"TXN-{i}", T0 + 60.0 * i, card_token=f"tok_till_{i}") for i in range(5)]
    events += [label(year_ahead, txn_id="TXN-0", verdict="legit"), sale("TXN-AHEAD", year_ahead)]
    presumed = counter(FRAUD_LABELS.labels("fraud", "presumed_legit"))
    skipped = counter(SKIPPED.labels("fraud", Topic.POS.value))

    out = run(records(events))

    assert set(scores(out)) == {f"TXN-{i}" for i in range(5)}  # the sale from the future is not scored
    letters = [item for item in out if type(item) is DeadLetter]
    assert [(d.source_topic, d.offset) for d in letters] == [(SETTINGS.topic(Topic.LABELS), 0)]
    assert "ahead of the wall clock" in letters[0].error
    assert counter(SKIPPED.labels("fraud", Topic.POS.value)) == skipped + 1  # the inventory flow dead-letters it
    assert counter(FRAUD_LABELS.labels("fraud", "presumed_legit")) == presumed


def test_a_dead_letter_record_dated_ahead_of_the_wall_clock_does_not_turn_a_trickle_into_a_burst() -> None:
    # The dead-letter watch runs on the records' own time. One record a year ahead, taken, would open a minute a
    # year away, and every real dead letter after it would count in that one minute: a trickle of one a minute
    # would reach the burst threshold (50) within the hour, and no burst would ever be resolved.
    def letter(offset: int, ts: float) -> KafkaRecord:
        dead = DeadLetter.of("omni.pos", 0, offset, "bad", b"{}")
        return record(Topic.DLQ, offset, msgspec.json.encode(dataclasses.replace(dead, ts=rfc3339_ms(ts))))

    start = time.time() // 60 * 60 - 2 * 3_600.0  # on a minute: the burst below falls in one
    trickle = [letter(i + 1, start + 60.0 * i) for i in range(70)]
    skipped = counter(SKIPPED.labels("fraud", Topic.DLQ.value))

    out = run([letter(0, time.time() + 365 * 86_400.0), *trickle])

    assert counter(SKIPPED.labels("fraud", Topic.DLQ.value)) == skipped + 1
    assert not [item for item in out if type(item) is Alert and item.entity.type == "topic"]
    # The same trickle after a record from the right clock: nothing either (the test is not blind to alerts).
    burst_of_60 = [letter(100 + i, start + 80 * 60.0 + i) for i in range(60)]
    alerts = [item for item in run([*trickle, *burst_of_60]) if type(item) is Alert and item.entity.type == "topic"]
    assert [(a.entity.id, a.reasons[0]) for a in alerts][:1] == [("omni.pos", "burst of malformed events")]
