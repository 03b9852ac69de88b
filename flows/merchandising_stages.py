"""The merchandising flow's stages: decoding into merchandising signals, the till journal, the SKU shards.

`flows.merchandising` wires them. Stock movements keep the role they play for
merchandising (`operators.merch.sku_merch.Role`): a till sale or an online
order is demand where it happens, a supplier receipt is fresh stock, a
transfer out/in is stock in flight. Till events need the per-store journal
first (a void names a transaction, not SKUs), as in the inventory flow.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.models import (
    Event,
    PriceChange,
    ProductUpsert,
    Purchase,
    Receipt,
    Return,
    Sale,
    TransferIn,
    TransferOut,
    Void,
)
from events.suggestions import Suggestion
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord
from flows.metrics import MERCH_SUGGESTIONS, StateEntities
from omnistream.settings import Settings
from operators.merch.markdown import MarkdownPolicy
from operators.merch.sku_merch import MerchConfig, MerchInput, MerchMove, MerchShard, Role, SuggestionDoc, Tick
from operators.merch.transfers import TransferPolicy
from operators.movements import inventory_movement, purchase_movements
from operators.shard_keys import ShardKeys, add_to_group
from operators.txn_journal import TxnJournal
from state import keys
from state.doc_writer import FencedDoc

FLOW = "merchandising"
INPUT_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM, Topic.CATALOG)
TillEvent = Sale | Return | Void
_ENTITIES = StateEntities(FLOW)
_INVENTORY, _POS, _CATALOG = Topic.INVENTORY, Topic.POS, Topic.CATALOG
_ROLES: dict[type, Role] = {Receipt: Role.RECEIPT, TransferOut: Role.SENT, TransferIn: Role.ARRIVED}


class MerchBatch:
    """One batch of decoded events as the flow's next steps take them (a `flows.decoding.DecodedBatch`).

    Till events go on whole (to the per-store journal); inventory events and
    purchases become `MerchMove`s; catalog events pass as they are. This flow
    owns no topic's dead letters (`flows.dead_letters`): malformed events are
    the inventory and recommend flows' to report, and are skipped here.
    """

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out: list[Any] = []

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        if topic is _INVENTORY:
            role = _ROLES.get(type(event), Role.STOCK)
            move = inventory_movement(event)  # type: ignore[arg-type]
            if role is Role.SENT or role is Role.ARRIVED:
                transfer: TransferOut | TransferIn = event  # type: ignore[assignment]
                self.out.append(MerchMove(move, role, transfer.transfer_id, transfer.peer_location_id))
            else:
                self.out.append(MerchMove(move, role))
        elif topic is _POS or topic is _CATALOG:
            self.out.append(event)
        elif type(event) is Purchase:
            self.out.extend(MerchMove(move, Role.DEMAND) for move in purchase_movements(event))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        raise AssertionError("the merchandising flow owns no topic's dead letters")

    def add_raw(self, topic: Topic, record: KafkaRecord) -> int:
        raise AssertionError(f"the merchandising flow decodes every topic it reads, not {topic.value}")

    def output(self) -> list[Any]:
        return self.out


class Decoder(BatchDecoder[Any]):
    """Raw records to till events, `MerchMove`s and catalog events; only purchases of the clickstream are decoded."""

    def __init__(self, source_topics: dict[str, Topic]) -> None:
        super().__init__(FLOW, source_topics, MerchBatch, wanted={Topic.CLICKSTREAM: b'"purchase"'})


def is_till_event(item: object) -> bool:
    return type(item) in (Sale, Return, Void)


class JournalLogic:
    """Builds the per-store `TxnJournal` step: till events to movements, a sale's lines as demand."""

    def __init__(self, settings: Settings) -> None:
        self.retention_s = settings.dedup_window_s

    def __call__(self, resume: bytes | None) -> _JournalStep:
        journal = TxnJournal.from_bytes(resume) if resume is not None else TxnJournal(self.retention_s)
        return _JournalStep(journal)


class _JournalStep(StatefulBatchLogic[TillEvent, MerchMove, bytes]):
    def __init__(self, journal: TxnJournal) -> None:
        self.journal = journal

    def on_batch(self, events: list[TillEvent]) -> tuple[list[MerchMove], bool]:
        out: list[MerchMove] = []
        for event in events:
            # A sale lowers on-hand: demand. A return, or a void's compensation, gives units back: stock only
            # (a voided sale still counted as demand: the shopper wanted the goods at the till).
            out += [MerchMove(m, Role.DEMAND if m.qty < 0 else Role.STOCK) for m in self.journal.apply(event)]
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return self.journal.to_bytes()


class SkuShards:
    """Groups a batch's signals by SKU shard (one routed item per shard per batch), with a `Tick` for every shard.

    The tick carries the newest event time of the batch to every shard, so a
    shard whose SKUs are quiet still reviews them as event time passes.
    """

    def __init__(self, shards: int) -> None:
        self._names = [f"sku:{i}" for i in range(shards)]
        self._shard = ShardKeys("sku:", shards)

    def group(self, items: list[MerchInput]) -> list[tuple[str, list[MerchInput]]]:
        groups: dict[str, list[MerchInput]] = {}
        shard = self._shard
        newest = -math.inf
        for item in items:
            if type(item) is MerchMove:
                move = item.move
                add_to_group(groups, shard(move.sku), item)
                if move.ts > newest:
                    newest = move.ts
            else:
                event: ProductUpsert | PriceChange = item  # type: ignore[assignment]
                add_to_group(groups, shard(event.sku), event)
                ts = event.ts.timestamp()
                if ts > newest:
                    newest = ts
        if newest > -math.inf:
            tick = Tick(newest)
            for name in self._names:
                add_to_group(groups, name, tick)
        return list(groups.items())


def merch_config(settings: Settings) -> MerchConfig:
    """The merchandising policies of `settings.merch`."""
    m = settings.merch
    transfer = TransferPolicy(
        lead_time_days=m.lead_time_days, horizon_days=m.horizon_days, trigger_cover_days=m.trigger_cover_days,
        target_cover_days=m.target_cover_days, keep_days=m.keep_days, min_keep_units=m.min_keep_units,
        min_lot=m.min_lot, cost_per_transfer=m.transfer_cost, cost_per_unit=m.transfer_cost_per_unit,
        margin_rate=m.margin_rate,
    )  # fmt: skip
    markdown = None
    if m.season_end is not None:
        markdown = MarkdownPolicy(
            season_end_ts=m.season_end.timestamp(), floor_share=m.markdown_floor_share,
            max_discount=m.markdown_max_discount, step=m.markdown_step, min_cover_days=m.markdown_min_cover_days,
            min_age_days=m.markdown_min_age_days, elasticity=m.markdown_elasticity, max_change=m.markdown_max_change,
            cadence_days=m.markdown_cadence_days,
        )  # fmt: skip
    return MerchConfig(
        transfer, markdown, half_life_s=m.half_life_s, basket_cap=m.basket_cap, review_interval_s=m.review_interval_s,
        transit_timeout_s=m.transit_timeout_s, dedup_window_s=settings.dedup_window_s,
        count_window_s=settings.count_window_s, order_retention_s=settings.order_retention_s,
    )  # fmt: skip


class MerchLogic:
    """Builds the step logic of one shard of SKUs (a Bytewax builder)."""

    def __init__(self, settings: Settings) -> None:
        self.config = merch_config(settings)

    def __call__(self, resume: bytes | None) -> _MerchStep:
        shard: MerchShard = pickle.loads(resume) if resume else MerchShard(self.config)
        shard.config = self.config  # the policies in force now, not those of the snapshot
        for sku in shard.skus.values():
            sku.config = self.config
        return _MerchStep(shard)


class _MerchStep(StatefulBatchLogic[list[MerchInput], Suggestion | FencedDoc, bytes]):
    def __init__(self, shard: MerchShard) -> None:
        self.shard = shard

    def on_batch(self, groups: list[list[MerchInput]]) -> tuple[list[Suggestion | FencedDoc], bool]:
        items = groups[0] if len(groups) == 1 else [item for group in groups for item in group]
        records, docs = self.shard.apply(items)
        for record in records:
            MERCH_SUGGESTIONS.labels(FLOW, record.kind, record.status).inc()
        out: list[Suggestion | FencedDoc] = [*records]
        out += [fenced(doc) for doc in docs]
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("merch_skus", self.shard, len(self.shard))
        return pickle.dumps(self.shard, protocol=pickle.HIGHEST_PROTOCOL)


def fenced(doc: SuggestionDoc) -> FencedDoc:
    """A SKU's suggestions document as the sink writes it, with the SKU in or out of its kind's index set."""
    return FencedDoc(keys.suggestions(doc.kind, doc.sku), doc.version, doc.doc, as_of=doc.as_of,
                     flag_set=keys.suggestion_skus(doc.kind), flag_member=doc.sku, flagged=doc.open)  # fmt: skip
