"""Recommendation flow: shoppers' interactions and the catalog in; neighbours, trending, profiles, experiments out.

Consumes `omni.clickstream` (views, carts, orders), loyalty-card `sale`s of
`omni.pos` (an in-store purchase is a preference too), `omni.catalog` and
`omni.rec_served` (each answer the API served). Keeps, with bounded memory
and event-time decay: co-visitation neighbours per SKU, trending per scope,
a short-term profile per shopper, the join of served answers with the
clicks, carts and purchases that followed, per-variant experiment tallies
and an online ranker. Every result is an absolute document behind a version
fence (`state.doc_writer.FencedDoc`), so a recovery replay changes nothing.

Each keyed stage holds shards of entities and receives `ShardBatch`es naming
it (`flows.recommend_stages.Stage`, `flows.keyed`), in this order:

    decode ─> catalog (by SKU shard) ─> shoppers (by actor shard) ─┬─> neighbours (by SKU shard)
    rec_served ─────────────────────────────────^                    ├─> trending (by scope shard)
                                                                     ├─> similar (kNN index: rec_knn_replicas keys)
                                                                     └─> experiments (one key: tallies + ranker)

Run it with `omnistream flow recommend` (recovery on by default); see `flows.run`.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.keyed import keyed_stage, to_stage
from flows.recommend_stages import (
    FLOW,
    CatalogLogic,
    Decoder,
    ExperimentLogic,
    NeighbourLogic,
    ShopperLogic,
    SimilarLogic,
    Stage,
    TrendingLogic,
    is_doc,
)
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings

INPUT_TOPICS = (Topic.CATALOG, Topic.CLICKSTREAM, Topic.POS, Topic.REC_SERVED)


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Interactions, catalog and served answers in; fenced recommendation documents and dead letters out.

    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`). `source` and `sink`
    default to the topics in Kafka and the Redis/Kafka `RecordSink`; nothing connects while building.
    """
    flow = Dataflow(FLOW)
    decoded = decoded_input(flow, settings, INPUT_TOPICS, lambda topics: Decoder(topics, settings.rec.shards), source)
    # Dead letters pass every branch below on the `falses` side, straight to the records.
    catalog_in = to_stage("to_catalog", decoded, Stage.CATALOG)
    catalog_out = keyed_stage("catalog", catalog_in.trues, CatalogLogic(settings))
    shoppers_in = to_stage("to_shoppers", op.merge("shoppers_in", catalog_in.falses, catalog_out), Stage.SHOPPERS)
    shoppers_out = op.branch("is_profile_doc", keyed_stage("shoppers", shoppers_in.trues, ShopperLogic(settings)),
                             is_doc)  # fmt: skip
    neighbours_in = to_stage("to_neighbours", shoppers_out.falses, Stage.NEIGHBOURS)
    trending_in = to_stage("to_trending", neighbours_in.falses, Stage.TRENDING)
    similar_in = to_stage("to_similar", trending_in.falses, Stage.SIMILAR)
    records: Any = op.merge(
        "records",
        shoppers_in.falses,  # dead letters and item documents
        shoppers_out.trues,  # profiles
        keyed_stage("neighbours", neighbours_in.trues, NeighbourLogic(settings)),
        keyed_stage("trending", trending_in.trues, TrendingLogic(settings)),
        keyed_stage("similar", similar_in.trues, SimilarLogic(settings)),
        keyed_stage("experiments", similar_in.falses, ExperimentLogic(settings)),  # all that is left
    )
    records_out(FLOW, records, settings, generation, sink)
    return flow
