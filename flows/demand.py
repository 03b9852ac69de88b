"""Demand flow: sales, orders, cancels and stock in; daily forecasts, rising items and reorders per SKU × location out.

Consumes `omni.pos` (sales +, returns −, voids undo), the `purchase` events of `omni.clickstream`,
`omni.inventory` (order cancels undo online demand, whole orders included; every stock movement keeps
the reorders step's copy of available stock), and `omni.weather`.
Keeps each SKU's daily net demand at each location by its local day, and when the watermark (the
newest event time read, less `OMNISTREAM_DEMAND_LOCATIONS`' lateness) passes a local midnight, closes
that day: every active SKU there gets a fresh forecast for the next `horizon_days` with an interval,
and the location its rising items; each stocked pair whose available units fall to its reorder point
gets a reorder suggestion on `omni.suggestions`. Documents are fenced, so a recovery replay changes
nothing; a forecast only ever sees events dated on or before its origin. docs/demand.md.

    decode ─┬─> days (open days, by (location, SKU) shard) ─> models (shard i ← days shard i) ─┬─> forecasts
            │                                                                                 ├─> rising (by location)
            └─> stock movements (by (location, SKU) shard) ─────────> reorders (shard i) <────┘ (forecasts of shard i)

Run it with `omnistream flow demand` (recovery on by default); see `flows.run`.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.demand_stages import FLOW, DaysLogic, Decoder, ModelsLogic, ReorderLogic, RisingLogic, Stage
from flows.kafka_source import KafkaRecord
from flows.keyed import keyed_stage, to_stage
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings

INPUT_TOPICS = (Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY, Topic.WEATHER)


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Demand events in; fenced forecast and rising-items documents, and weather dead letters, out.

    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`). `source` and `sink`
    default to the topics in Kafka and the Redis/Kafka `RecordSink`; nothing connects while building.
    """
    flow = Dataflow(FLOW)
    decoded = decoded_input(flow, settings, INPUT_TOPICS, lambda topics: Decoder(topics, settings), source)
    days_in = to_stage("to_days", decoded, Stage.DAYS)
    stock_in = to_stage("to_stock", days_in.falses, Stage.REORDERS)  # dead letters go on the `falses` side
    models_in = keyed_stage("days", days_in.trues, DaysLogic(settings))
    models_out = to_stage("to_rising", keyed_stage("models", models_in, ModelsLogic(settings)), Stage.RISING)
    outlooks = to_stage("to_reorders", models_out.falses, Stage.REORDERS)  # forecast documents: `falses`
    reorders_in = op.merge("reorders_in", stock_in.trues, outlooks.trues)
    records: Any = op.merge(
        "records",
        stock_in.falses,  # dead letters
        outlooks.falses,  # forecast documents
        keyed_stage("rising", models_out.trues, RisingLogic(settings)),
        keyed_stage("reorders", reorders_in, ReorderLogic(settings)),
    )
    records_out(FLOW, records, settings, generation, sink)
    return flow
