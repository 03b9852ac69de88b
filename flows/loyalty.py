"""Loyalty flow: points earned in store and online, pending through the return window, redeemed in event order.

Consumes `omni.pos` (member sales, returns, voids), the `purchase`s of `omni.clickstream`,
the order cancels and fulfilments of `omni.inventory`, the `product_upsert`s of
`omni.catalog` (categories, for their multipliers) and `omni.members` (identity links and
redemption requests, whose dead letters it owns). Writes each member's document (balances,
tier, recent entries) and each redemption's decision to Redis behind a version fence, and
every ledger entry to `omni.loyalty` for finance systems.

```
loyalty_in → decode ─┬─ online orders, identity links (per account shard) → identity ─┐
                     ├─ member sales, returns, voids, cancels (per txn shard) ─────────┴→ book ─┐
                     └─ redemption requests (per member shard) ──────────────────────────────────┴→ ledger → out
```

The book (keyed by transaction) holds each transaction's lines and what happened to them, so a
return, which names only its transaction, finds its member; the ledger (keyed by member) holds
the lots of points and decides redemptions in its member's order. Every stage also gets the
event-time clock (`Tick`) that matures, expires and forgets. docs/loyalty.md says more.

Run it with `omnistream flow loyalty`. With an injected `source` and `sink`, nothing connects.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.keyed import keyed_stage, to_stage
from flows.loyalty_stages import FLOW, BookStage, Decoder, IdentityStage, LedgerStage, LoyaltyStage, ungroup
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings

INPUT_TOPICS = (Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY, Topic.CATALOG, Topic.MEMBERS)


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Member transactions, links and redemption requests in; member documents, decisions and ledger entries out.

    `source` / `sink` default to the Kafka topics and the Redis/Kafka `RecordSink`;
    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`).
    """
    flow = Dataflow(FLOW)
    routed = decoded_input(flow, settings, INPUT_TOPICS, lambda topics: Decoder(topics, settings), source)
    to_identity = to_stage("to_identity", routed, LoyaltyStage.IDENTITY)
    identity = keyed_stage("identity", to_identity.trues, IdentityStage(settings))
    to_book = to_stage("to_book", op.merge("book_in", identity, to_identity.falses), LoyaltyStage.BOOK)
    book = keyed_stage("book", to_book.trues, BookStage(settings))
    to_ledger = to_stage("to_ledger", op.merge("ledger_in", book, to_book.falses), LoyaltyStage.LEDGER)
    ledger = keyed_stage("ledger", to_ledger.trues, LedgerStage(settings))
    records = op.merge("records", to_ledger.falses, ledger)  # dead letters, then what the ledger wrote
    records_out(FLOW, op.flat_map("ungroup", records, ungroup), settings, generation, sink)
    return flow


__all__ = ["FLOW", "INPUT_TOPICS", "LoyaltyStage", "build_flow"]
