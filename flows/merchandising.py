"""Merchandising flow: live stock and demand in; transfer and markdown suggestions out.

Consumes `omni.inventory` (order cancels included), `omni.pos`, the `purchase`
events of `omni.clickstream` and `omni.catalog`. Keeps, per SKU and location, stock (the
inventory flow's ledger logic over the same movements: the inventory flow stays
the only writer of stock) and demand velocity by event time; per SKU, the
transfers in flight, the list and selling price and the age of its stock. It
suggests transfers before a location stocks out and markdowns for stock that
will not sell through by season end (docs/merchandising.md), publishes each
suggestion, its material changes and its withdrawal to `omni.suggestions`, and
keeps each SKU's open suggestions as fenced documents the API serves.

    decode ─┬─> till events (by store) ─> txn_journal ───────────┐
            ├─> purchases, order cancels (by order) ─> order_book ─┤
            └────────────────────────────────────────────────────┴─> by SKU shard ─> skus ─> records

Run it with `omnistream flow merchandising` (recovery on by default); see `flows.run`.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.kafka_source import KafkaRecord
from flows.merchandising_stages import (
    FLOW,
    INPUT_TOPICS,
    Decoder,
    JournalLogic,
    MerchLogic,
    OrderBookLogic,
    OrderRelease,
    SkuShards,
    is_order_event,
    is_till_event,
)
from flows.order_routing import OrderRouter
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Stock movements, sales and prices in; suggestion records and fenced suggestion documents out.

    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`). `source` and `sink`
    default to the topics in Kafka and the Redis/Kafka `RecordSink`; nothing connects while building.
    """
    flow = Dataflow(FLOW)
    decoded = decoded_input(flow, settings, INPUT_TOPICS, Decoder, source)
    till = op.branch("is_till", decoded, is_till_event)
    by_store = op.key_on("by_store", till.trues, lambda event: event.store_id)
    till_moves = op.key_rm("till_moves", op.stateful_batch("txn_journal", by_store, JournalLogic(settings)))
    orders = op.branch("is_order", till.falses, is_order_event)
    by_order_shard = op.flat_map_batch("by_order_shard", orders.trues, OrderRouter(marker=OrderRelease).group)
    order_moves = op.key_rm("order_moves", op.stateful_batch("order_book", by_order_shard, OrderBookLogic(settings)))
    signals = op.merge("signals", orders.falses, till_moves, order_moves)
    shards = SkuShards(settings.merch.shards, settings.merch.review_step_s)
    by_shard = op.flat_map_batch("by_sku_shard", signals, shards.group)
    records = op.key_rm("skus_out", op.stateful_batch("skus", by_shard, MerchLogic(settings)))
    records_out(FLOW, records, settings, generation, sink)
    return flow
