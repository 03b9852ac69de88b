"""Inventory flow: stock movements from stores, web and warehouses in; live, versioned stock out.

Consumes `omni.inventory`, `omni.pos` and the `purchase` events of
`omni.clickstream`; keeps on-hand, reserved and available per SKU and
location (CONTRACT.md "Stock semantics") and writes every SKU's stock to
Redis, fenced by version; raises stock alerts; routes every invalid event to
the dead-letter stream.

Run it with `omnistream flow inventory` (recovery on by default); see `flows.run`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Count, Purchase, Return, Sale, Void, event_type
from events.topics import Topic
from flows.kafka_source import KafkaRecord, kafka_source
from flows.metrics import DUPLICATES, EVENTS_IN, UNMATCHED_VOIDS, StateEntities
from flows.sinks import FlowRecord, RecordSink, is_dead_letter
from omnistream.settings import Settings
from operators.ledger_shard import LedgerShard
from operators.movements import StockMovement, inventory_movement, purchase_movements
from operators.shard_keys import ShardKeys, add_to_group
from operators.stock_ledger import StockLedger
from operators.txn_journal import TxnJournal

FLOW = "inventory"
# Ledgers are held in this many keyed shards. Part of the recovery state's layout
# (`flows.run.STATE_FORMATS`): a snapshot holds the ledgers of its shard.
LEDGER_SHARDS = 64
# Reported when a shard snapshots (once per epoch per shard that changed): counting on every batch costs more.
_ENTITIES = StateEntities(FLOW)
TillEvent = Sale | Return | Void


def build_flow(settings: Settings, generation: str = "") -> Dataflow:
    """Stock movements in; absolute, versioned stock per SKU, stock alerts and dead letters out.

    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`).
    """
    flow = Dataflow(FLOW)
    source_topics = {settings.topic(t): t for t in (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)}
    raw = op.input("inventory_in", flow, kafka_source(settings, list(source_topics)))
    decoded = op.flat_map_batch("decode", raw, Decoder(source_topics).decode_batch)
    split = op.branch("is_dead_letter", decoded, is_dead_letter)
    till = op.branch("is_till", split.falses, is_till_event)
    by_store = op.key_on("by_store", till.trues, lambda event: event.store_id)
    till_moves = op.key_rm("till_moves", op.stateful_batch("txn_journal", by_store, JournalLogic(settings)))
    movements = op.merge("movements", till.falses, till_moves)
    by_shard = op.flat_map_batch("by_sku_shard", movements, ShardRouter().group)
    ledgers = op.stateful_batch("ledgers", by_shard, LedgerLogic(settings))  # type: ignore[arg-type]
    ledger_out = op.key_rm("ledger_out", ledgers)
    op.output("records_out", op.merge("records", split.trues, ledger_out), RecordSink(FLOW, settings, generation))
    return flow


class Decoder:
    """Raw Kafka messages to stock movements, till events and dead letters; never raises."""

    def __init__(self, source_topics: dict[str, Topic]) -> None:
        self.source_topics = source_topics
        # (topic, its contract name) per topic name, resolved once: enum attribute access is slow per event.
        self._topics = {name: (topic, topic.value) for name, topic in source_topics.items()}

    def decode_batch(self, records: list[KafkaRecord]) -> list[Any]:
        out: list[Any] = []
        seen: Counter[tuple[str, str]] = Counter()
        topics, inventory, pos = self._topics, Topic.INVENTORY, Topic.POS
        for record in records:
            if record.error is not None:
                out.append(DeadLetter.of(record.topic, record.partition, record.offset,
                                         f"Kafka error: {record.error}", record.value))  # fmt: skip
                continue
            topic, topic_value = topics[record.topic]
            event = decode(topic, record.value, source_topic=record.topic, partition=record.partition,
                           offset=record.offset)  # fmt: skip
            kind = type(event)
            if kind is DeadLetter:
                out.append(event)
                continue
            seen[topic_value, event_type(event)] += 1  # type: ignore[arg-type]
            if topic is inventory:
                source = (*record[:3], record.value) if kind is Count else None
                out.append(inventory_movement(event, source))  # type: ignore[arg-type]
            elif topic is pos:
                out.append(event)
            elif kind is Purchase:
                out.extend(purchase_movements(event))  # type: ignore[arg-type]
        for (topic_name, type_name), n in seen.items():
            EVENTS_IN.labels(FLOW, topic_name, type_name).inc(n)
        return out


def is_till_event(item: StockMovement | TillEvent) -> bool:
    return type(item) is not StockMovement


class JournalLogic:
    """Builds the per-store `TxnJournal` step logic (a Bytewax builder)."""

    def __init__(self, settings: Settings) -> None:
        self.retention_s = settings.dedup_window_s

    def __call__(self, resume: bytes | None) -> _JournalStep:
        journal = TxnJournal.from_bytes(resume) if resume is not None else TxnJournal(self.retention_s)
        return _JournalStep(journal)


class _JournalStep(StatefulBatchLogic[TillEvent, StockMovement, bytes]):
    def __init__(self, journal: TxnJournal) -> None:
        self.journal = journal

    def on_batch(self, events: list[TillEvent]) -> tuple[list[StockMovement], bool]:
        moves: list[StockMovement] = []
        unmatched_before = self.journal.unmatched_voids
        for event in events:
            moves += self.journal.apply(event)
        if self.journal.unmatched_voids != unmatched_before:
            UNMATCHED_VOIDS.labels(FLOW).inc(self.journal.unmatched_voids - unmatched_before)
        return moves, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("till_transactions", self.journal, len(self.journal))
        return self.journal.to_bytes()


class ShardRouter:
    """Groups a batch's movements by SKU shard: one routed item per shard per batch, not one per movement.

    Fewer keys make shorter snapshot pauses: Bytewax writes a row per key
    touched in the epoch (about 10 us each here, on top of the bytes), and
    the ledgers' own bytes are kept between snapshots (`LedgerShard`).
    """

    def __init__(self) -> None:
        self._shard = ShardKeys("", LEDGER_SHARDS)

    def group(self, moves: list[StockMovement]) -> list[tuple[str, list[StockMovement]]]:
        groups: dict[str, list[StockMovement]] = {}
        shard = self._shard
        for move in moves:
            add_to_group(groups, shard(move.sku), move)
        return list(groups.items())


class LedgerLogic:
    """Builds the step logic of one shard of `StockLedger`s (a Bytewax builder)."""

    def __init__(self, settings: Settings) -> None:
        self.dedup_window_s = settings.dedup_window_s
        self.count_window_s = settings.count_window_s
        self.order_retention_s = settings.order_retention_s
        self.low_stock_threshold = settings.low_stock_threshold

    def __call__(self, resume: bytes | None) -> _LedgerStep:
        shard = LedgerShard.from_bytes(resume, self.new_ledger) if resume else LedgerShard(self.new_ledger)
        return _LedgerStep(shard)

    def new_ledger(self, sku: str) -> StockLedger:
        return StockLedger(sku, self.dedup_window_s, self.count_window_s, self.order_retention_s,
                           self.low_stock_threshold)  # fmt: skip


class _LedgerStep(StatefulBatchLogic[list[StockMovement], FlowRecord, bytes]):
    def __init__(self, shard: LedgerShard) -> None:
        self.shard = shard

    def on_batch(self, groups: list[list[StockMovement]]) -> tuple[list[FlowRecord], bool]:
        shard = self.shard
        duplicates_before = shard.duplicates
        out: list[FlowRecord] = []
        for moves in groups:
            out += shard.apply(moves)
        if shard.duplicates != duplicates_before:
            DUPLICATES.labels(FLOW).inc(shard.duplicates - duplicates_before)
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        data = self.shard.to_bytes()
        _ENTITIES.report("sku_ledgers", self.shard, len(self.shard))
        return data
