"""Fraud flow: every card payment scored within a second; fraud and operational alerts raised once.

Consumes `omni.pos` (sales, returns, voids), the `purchase` events of `omni.clickstream`,
the shrink adjustments of `omni.inventory`, `omni.labels` (fraud labels, days later) and
`omni.dlq` (dead letters, for their rate per source topic). Writes each payment's score to
Redis (`GET /v1/scores/{id}`, with a time to live), each scorer shard's model document,
and alerts to `omni.alerts` and its Redis stream.

```
fraud_in → decode ─┬─ payments (per card shard) → cards → shoppers ─┐
                   ├─ labels (per payment) ─────────────────────────┴→ directory ─┬→ registers ─┐
                   │               labels, on to their payment's scorer shard ────┴─────────────┴→ scorer ─┬→ out
                   ├─ sales, shrink, dead letters, event clock → ops (one key) ────────────────────────────┤
                   └─ malformed labels (this flow owns their dead letters) ───────────────────────────────┤
                                         scorer: suspicious payments + its clock → fraud_alerts ──────────┘
```

The `directory` (keyed by payment id) remembers each payment's store for the label horizon,
so a label, which names only its payment, also reaches its store's fraud rate (`registers`).

Items between steps are `ShardBatch`es (`operators.keyed_shards`): one list of payments per
shard per batch, addressed to a `FraudStage`, so Bytewax's per-item cost is paid per group,
not per payment (the whole flow must do ≥ 15k payments/s per worker). Keys are shards of the
entity (`crc32(id) % shards`, stable across processes), and each shard holds a bounded cache
of entities (`operators.entity_cache`): a stream with a new card on every guest checkout
still runs in fixed memory. The steps' logic is in `flows/fraud_stages.py`, the shards' state
in `operators.fraud.shards`.

A label reaches the scorer shard that scored its payment because both are keyed by the
payment id (`txn_id` / `order_id`): that shard kept the model input the payment was scored
with (`LabelJoin`) and learns from it. Fraud alerts are de-duplicated per card or shopper
in one keyed step (`fraud_alerts`), so a card-testing burst spread over several scorer
shards still raises one alert.

Malformed pos/clickstream/inventory events are skipped and counted (the inventory flow
dead-letters them, `flows.dead_letters`); malformed labels go to the dead-letter stream.

Run it with `omnistream flow fraud` (or `python -m flows.run fraud`). With an injected
`source` and `sink`, nothing connects to Kafka or Redis: the wiring test and the quality
harness (`benchmarks/fraud_quality.py`) run this very dataflow in process.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.fraud_stages import (
    FLOW,
    CardStage,
    Decoder,
    DirectoryStage,
    FraudAlertStage,
    FraudStage,
    OpsStage,
    OrderStage,
    RegisterStage,
    ScorerStage,
    ShopperStage,
    stage_shards,
    ungroup,
)
from flows.kafka_source import KafkaRecord
from flows.keyed import keyed_stage, to_stage
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings

INPUT_TOPICS = (Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY, Topic.LABELS, Topic.DLQ)


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Payments, labels, till actions, shrink and dead letters in; scores, model documents and alerts out.

    `source` / `sink` default to the Kafka topics and the Redis/Kafka `RecordSink`;
    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`).
    """
    flow = Dataflow(FLOW)
    routed = decoded_input(
        flow,
        settings,
        INPUT_TOPICS,
        lambda topics: Decoder(topics, settings.fraud.shards, stage_shards(settings)),
        source,
    )
    to_order = to_stage("to_order", routed, FraudStage.ORDER)
    ordered = keyed_stage("order", to_order.trues, OrderStage(settings))
    to_cards = to_stage("to_cards", op.merge("cards_in", ordered, to_order.falses), FraudStage.CARDS)
    cards = keyed_stage("cards", to_cards.trues, CardStage(settings))
    shoppers = keyed_stage("shoppers", cards, ShopperStage(settings))
    to_directory = to_stage("to_directory", op.merge("directory_in", shoppers, to_cards.falses), FraudStage.DIRECTORY)
    directory = keyed_stage("directory", to_directory.trues, DirectoryStage(settings))
    to_registers = to_stage("to_registers", directory, FraudStage.REGISTERS)
    registers = keyed_stage("registers", to_registers.trues, RegisterStage(settings))
    to_scorer = to_stage("to_scorer", op.merge("scorer_in", registers, to_registers.falses), FraudStage.SCORER)
    scored = keyed_stage("scorer", to_scorer.trues, ScorerStage(settings))
    to_alerts = to_stage("to_fraud_alerts", scored, FraudStage.FRAUD_ALERTS)
    fraud_alerts = keyed_stage("fraud_alerts", to_alerts.trues, FraudAlertStage(settings))
    to_ops = to_stage("to_ops", op.merge("ops_in", to_directory.falses, to_scorer.falses), FraudStage.OPS)
    ops = keyed_stage("ops", to_ops.trues, OpsStage(settings))
    # What is left: records for the sink (score and model documents, alerts, malformed labels' dead letters).
    records = op.merge("records", to_alerts.falses, fraud_alerts, to_ops.falses, ops)
    records_out(FLOW, op.flat_map("ungroup", records, ungroup), settings, generation, sink)
    return flow


__all__ = ["FLOW", "INPUT_TOPICS", "FraudStage", "build_flow"]
