"""Attribution flow: which campaigns brought each sale, online and in store, under six models.

Consumes `omni.clickstream` (every event: UTM tags, referrers and new sessions are
touchpoints; purchases convert), the member sales of `omni.pos` (a store sale converts the
member's journey, fed by every account linked to the member) and the identity links of
`omni.members`. Writes per-day totals (conversions, revenue, heuristic credits, path counts for
the Markov model) to Redis for `GET /v1/attribution`, and each order's credits to
`omni.attribution`.

```
attribution_in → decode ─┬─ clicks, orders, links (per actor shard) → actors ─┐
                         └─ member store sales (per member shard) ─────────────┴→ members ─┐
                                                 converted and abandoned paths ─────────────┴→ totals → out
```

It owns no topic's dead letters (the inventory and loyalty flows do); docs/attribution.md says more.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.attribution_stages import FLOW, ActorStage, AttributionStage, Decoder, MemberStage, TotalsStage, ungroup
from flows.kafka_source import KafkaRecord
from flows.keyed import keyed_stage, to_stage
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings

INPUT_TOPICS = (Topic.CLICKSTREAM, Topic.POS, Topic.MEMBERS)


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Clicks, member sales and links in; per-day attribution documents and per-order credits out."""
    flow = Dataflow(FLOW)
    routed = decoded_input(flow, settings, INPUT_TOPICS, lambda topics: Decoder(topics, settings), source)
    to_actors = to_stage("to_actors", routed, AttributionStage.ACTORS)
    actors = keyed_stage("actors", to_actors.trues, ActorStage(settings))
    to_members = to_stage("to_members", op.merge("members_in", actors, to_actors.falses), AttributionStage.MEMBERS)
    members = keyed_stage("members", to_members.trues, MemberStage(settings))
    to_totals = to_stage("to_totals", op.merge("totals_in", members, to_members.falses), AttributionStage.TOTALS)
    totals = keyed_stage("totals", to_totals.trues, TotalsStage(settings))
    records_out(FLOW, op.flat_map("ungroup", totals, ungroup), settings, generation, sink)
    return flow


__all__ = ["FLOW", "INPUT_TOPICS", "AttributionStage", "build_flow"]
