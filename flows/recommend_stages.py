"""The recommend flow's stages: decoding and the Bytewax logic of each keyed step.

`flows.recommend` wires them; each keyed step holds shards of entities
(`operators.rec_shards`) and sends what the next stage needs as
`operators.keyed_shards.ShardBatch`es naming a `Stage`: one routed item per
shard per batch instead of one per update (docs/performance.md: Bytewax's
per-item cost), with a bound on the entities each shard holds.
"""

from __future__ import annotations

import pickle
from collections import Counter, OrderedDict
from enum import StrEnum
from operator import attrgetter, itemgetter
from typing import Any
from zlib import crc32

import orjson
from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.models import Event, PriceChange, ProductUpsert
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord
from flows.keyed import RouterPerThread
from flows.metrics import DUPLICATES, REC_FEEDBACK
from omnistream.settings import Settings
from operators.keyed_shards import ShardBatch, ShardRouter
from operators.rec_shards import Shopper, ThrottledShard, next_version
from operators.recs.catalog import CATALOG_EVENTS, CatalogItem
from operators.recs.covisitation import DEFAULT_KIND_WEIGHTS, CoVisit, ItemNeighbours, SessionTrail
from operators.recs.experiments import (
    ExperimentTally,
    Feedback,
    LabelledExample,
    ServedRecord,
    TallyIncrement,
    served_records,
)
from operators.recs.interactions import Interaction, interactions_of
from operators.recs.profile import ShopperProfile
from operators.recs.ranker import RecRanker
from operators.recs.session_knn import SessionNeighbours
from operators.recs.trending import Trending, scopes_of
from state import keys
from state.doc_writer import FencedDoc

FLOW = "recommend"


class Stage(StrEnum):
    """The keyed stages of the flow; a stage's value is the prefix of its shard keys (`catalog:3`)."""

    CATALOG = "catalog"
    SHOPPERS = "shoppers"
    NEIGHBOURS = "neighbours"
    TRENDING = "trending"
    SIMILAR = "similar"
    EXPERIMENTS = "experiments"


TrendHits = dict[tuple[str, str], list[Any]]
"""(scope, SKU) -> [summed weight, newest ts, category]: one batch's trending hits for one trending shard."""
Routed = ShardBatch[Stage, Any]


def is_doc(item: object) -> bool:
    return type(item) is FencedDoc


_TO_CATALOG, _TO_SHOPPERS = Stage.CATALOG, Stage.SHOPPERS
"""Looked up once: an enum member's attribute look-up costs per event."""


class RecBatch:
    """One batch of decoded records as the catalog and shoppers stages take them (a `flows.decoding.DecodedBatch`).

    Catalog events (`operators.recs.catalog.CATALOG_EVENTS`) and the
    interactions of the others go to their SKU's catalog shard; each answer of
    a `rec_served` record goes to its shopper's shard. Malformed `catalog` and
    `rec_served` records become dead letters (this flow owns them,
    `flows.dead_letters`); malformed `clickstream` and `pos` events are skipped
    and counted by `BatchDecoder`, as the inventory flow dead-letters them.
    """

    __slots__ = ("letters", "route", "router")

    def __init__(self, router: ShardRouter[Stage, Any]) -> None:
        self.router = router
        self.route = router.add  # bound once per batch: `add` runs for every event
        self.letters: list[DeadLetter] = []

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        if type(event) in CATALOG_EVENTS:
            catalog_event: ProductUpsert | PriceChange = event  # type: ignore[assignment]
            self.route(_TO_CATALOG, catalog_event.sku, catalog_event)
            return
        for interaction in interactions_of(event):
            self.route(_TO_CATALOG, interaction.sku, interaction)

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        """A `rec_served` record: the answers it holds to their shoppers, a rejected one to the dead letters.

        Answers dated past `latest_s` are refused with the rest of the record's rejects (one dead letter
        per record): an answer's time moves its shopper's feedback clock, which would close every open
        answer of the shopper unclicked.
        """
        answers, rejected = served_records(record.value, latest_s)
        if rejected is not None:
            self.letters.append(DeadLetter.of(record.topic, record.partition, record.offset, rejected[0], rejected[1]))
        route = self.route
        for served in answers:
            route(_TO_SHOPPERS, served.actor, served)
        return len(answers)

    def output(self) -> list[DeadLetter | Routed]:
        """The dead letters in the order read, then the batch's groups."""
        out: list[DeadLetter | Routed] = [*self.letters]
        out.extend(self.router.drain())
        return out


class Decoder(BatchDecoder[DeadLetter | Routed]):
    """Raw Kafka messages to routed groups of catalog events, interactions and served answers; never raises.

    `BatchDecoder` with a `RecBatch` per batch and `rec_served` read raw
    (`served_records` parses its answers). Routing is per worker thread
    (`flows.keyed.RouterPerThread`).
    """

    def __init__(self, source_topics: dict[str, Topic], shards: int) -> None:
        super().__init__(FLOW, source_topics, self._new_batch, raw_topics={Topic.REC_SERVED})
        self.shards = shards
        self._routers: RouterPerThread[Stage, Any] = RouterPerThread(shards)

    def _new_batch(self) -> RecBatch:
        return RecBatch(self._routers.get())


class _PickledStep(StatefulBatchLogic[list[Any], Any, bytes]):
    """A keyed step whose whole state is one picklable object (a shard)."""

    state: Any

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


# --- catalog: by SKU shard ---------------------------------------------------------------------------------


class CatalogLogic:
    """Builds the catalog step: stamps interactions with their SKU's category, drops withdrawn SKUs' ones.

    Upserts and price changes keep each SKU's `CatalogItem`; a changed one is
    written as its item document (`CatalogItem.get`: the live price with it),
    once per batch, and kept in step with the set of withdrawn SKUs.
    """

    def __init__(self, settings: Settings) -> None:
        self.capacity = max(1, settings.rec.catalog_capacity // settings.rec.shards)
        self.shards = settings.rec.shards

    def __call__(self, resume: bytes | None) -> _CatalogStep:
        # OrderedDict(...) also takes the plain dict of snapshots from before it, in the same order.
        items: OrderedDict[str, tuple[CatalogItem, int]] = OrderedDict(pickle.loads(resume) if resume else ())
        return _CatalogStep(items, self)


class _CatalogStep(_PickledStep):
    def __init__(self, items: OrderedDict[str, tuple[CatalogItem, int]], builder: CatalogLogic) -> None:
        self.state = items
        self.builder = builder
        self.router: ShardRouter[Stage, Interaction] = ShardRouter(builder.shards)

    def on_batch(self, groups: list[list[Interaction | ProductUpsert | PriceChange]]) -> tuple[list[Any], bool]:
        items, router, to_shoppers, catalog_events = self.state, self.router, Stage.SHOPPERS, CATALOG_EVENTS
        changed: dict[str, None] = {}
        dropped: dict[str, tuple[CatalogItem, int]] = {}
        for group in groups:
            for value in group:
                if type(value) in catalog_events:  # an upsert or a price change (which may lead its upsert)
                    event: ProductUpsert | PriceChange = value  # type: ignore[assignment]
                    held = items.get(event.sku)
                    if held is None:
                        held = items[event.sku] = (CatalogItem(event.sku), 0)
                        if len(items) > self.builder.capacity:
                            # The oldest-known SKU: its interactions pass unstamped. popitem, O(1): a plain
                            # dict deleted at its front keeps holes that `next(iter(d))` walks over.
                            sku, oldest = items.popitem(last=False)
                            if sku in changed:
                                dropped[sku] = oldest  # changed earlier in this batch: its document is still due
                    held[0].apply(event)
                    changed[event.sku] = None
                    continue
                interaction: Interaction = value  # type: ignore[assignment]  # not a catalog event: an interaction
                held = items.get(interaction.sku)
                if held is not None:
                    enriched = held[0].enrich(interaction)
                    if enriched is None:
                        continue  # a withdrawn product: no longer learned
                    interaction = enriched
                router.add(to_shoppers, interaction.actor, interaction)
        out: list[Any] = []
        inactive = keys.rec_inactive()
        for sku in changed:
            kept = items.get(sku)
            item, version = kept if kept is not None else dropped[sku]
            as_of = item.as_of
            version = next_version(version, as_of)
            if kept is not None:
                items[sku] = (item, version)
            doc = orjson.dumps(item.get())
            out.append(FencedDoc(keys.rec_item(sku), version, doc, as_of=as_of, flag_set=inactive,
                                 flag_member=sku, flagged=not item.active))  # fmt: skip
        out.extend(router.drain())
        return out, StatefulBatchLogic.RETAIN


# --- shoppers: by actor shard --------------------------------------------------------------------------------


class ShopperLogic:
    """Builds the shoppers step: profiles, co-visit pairs, trending hits and feedback of each shopper."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.shards = settings.rec.shards
        self.capacity = max(1, settings.rec.actor_capacity // settings.rec.shards)
        self.profile_ttl_s = settings.rec.profile_ttl_s
        self.kind_weights = DEFAULT_KIND_WEIGHTS
        self.similar = settings.rec.knn_sessions > 0
        self.similar_keys = similar_keys(settings.rec.knn_replicas)

    def __call__(self, resume: bytes | None) -> _ShopperStep:
        shard: ThrottledShard[Shopper] = pickle.loads(resume) if resume else ThrottledShard(self.capacity, 0.0)
        return _ShopperStep(shard, self)

    def new_shopper(self, actor: str) -> Shopper:
        s = self.settings
        # `Shopper.learn_one` is the only way into the profile and the trail, and it drops a redelivered
        # (`event_id`, SKU) seen within `dedup_window_s` (at least an hour). Their own windows (same key,
        # shorter) could never drop anything more, a double click included (two event ids), so they are
        # off: one fingerprint and one remembered id per interaction instead of three.
        profile = ShopperProfile(actor, s.rec.profile_recent, s.rec.profile_half_life_s, dedup_window_s=0)
        trail = SessionTrail(s.rec.trail_window_s, s.rec.trail_items, 0, position_decay=s.rec.position_decay)
        return Shopper(actor, profile, trail, s.dedup_window_s, s.rec.feedback_window_s)


_ts_of = attrgetter("ts")


class _ShopperStep(_PickledStep):
    def __init__(self, shard: ThrottledShard[Shopper], builder: ShopperLogic) -> None:
        self.state = shard
        self.builder = builder
        self.router: ShardRouter[Stage, CoVisit] = ShardRouter(builder.shards)

    def on_batch(self, groups: list[list[Interaction | ServedRecord]]) -> tuple[list[Any], bool]:
        shard, builder = self.state, self.builder
        weights, new_shopper = builder.kind_weights, builder.new_shopper
        router, to_neighbours, to_trending = self.router, Stage.NEIGHBOURS, Stage.TRENDING
        trend_hits: dict[str, TrendHits] = {}  # by trending shard
        feedback: list[Feedback] = []
        clicks: list[Click] = []  # for the session-kNN index
        similar, similar_keys = builder.similar, builder.similar_keys
        replicas = len(similar_keys)
        duplicates = 0
        # A shopper's interactions reach this step grouped by the catalog shard of their SKU, so within a batch
        # they are not in the order they happened: taken in event-time order (stable: the log's order at equal
        # times), the profile's newest SKU, the trail's pairs and the kNN index see the shopper's own sequence
        # however the stream was cut into batches (a backlog read in large batches scrambled it).
        for value in sorted((value for group in groups for value in group), key=_ts_of):
            if type(value) is ServedRecord:
                feedback += shard.touch(value.actor, new_shopper, value.ts).learn_served(value)
                continue
            interaction: Interaction = value  # type: ignore[assignment]
            learned = shard.touch(interaction.actor, new_shopper, interaction.ts).learn_one(interaction)
            if learned is None:
                duplicates += 1
                continue
            covisits, shopper_feedback = learned
            if similar:
                actor = interaction.actor
                owner = similar_keys[crc32(actor.encode()) % replicas] if replicas > 1 else similar_keys[0]
                clicks.append((actor, interaction.sku, interaction.ts, owner))
            for covisit in covisits:
                router.add(to_neighbours, covisit.item, covisit)
            if shopper_feedback:
                feedback += shopper_feedback
            # Summed per (scope, SKU) here: the global scope is hit by every interaction.
            weight, ts, sku = weights[interaction.kind - 1], interaction.ts, interaction.sku
            for scope in scopes_of(interaction):
                key = router.shard_of(to_trending, scope)
                summed = trend_hits.get(key)
                if summed is None:
                    summed = trend_hits[key] = {}
                held = summed.get((scope, sku))
                if held is None:
                    summed[scope, sku] = [weight, ts, interaction.category or ""]
                else:
                    held[0] += weight
                    if ts > held[1]:
                        held[1] = ts
        if duplicates:
            DUPLICATES.labels(FLOW).inc(duplicates)
        out = self._emit(shard.collect(), trend_hits, feedback)
        if clicks:  # every replica learns every click, and lists the shoppers it owns
            out.extend(ShardBatch(Stage.SIMILAR, key, [(key, clicks)]) for key in similar_keys)
        return out, StatefulBatchLogic.RETAIN

    def _emit(self, written: Any, trend_hits: dict[str, TrendHits], feedback: list[Feedback]) -> list[Any]:
        ttl_s = self.builder.profile_ttl_s
        out: list[Any] = []
        for actor, shopper, version in written:  # every changed profile, every batch: freshness
            profile = shopper.profile.get()
            out.append(FencedDoc(keys.rec_profile(actor), version, orjson.dumps(profile), ttl_s, profile["as_of"]))
        out.extend(self.router.drain())
        # Summed per (scope, SKU) above, so each trending shard gets one item: the batch's summed hits.
        out.extend(ShardBatch(Stage.TRENDING, shard, [hits]) for shard, hits in trend_hits.items())
        if feedback:
            out.append(ShardBatch(Stage.EXPERIMENTS, Stage.EXPERIMENTS.value, feedback))
        return out

    def on_eof(self) -> tuple[list[Any], bool]:
        # A bounded run ends: close every open answer so its labels train the ranker.
        feedback: list[Feedback] = []
        for _, shopper in self.state.items():
            feedback += shopper.close_answers()
        return self._emit(self.state.flush(), {}, feedback), StatefulBatchLogic.RETAIN


# --- neighbours and trending: by SKU shard / scope shard, written throttled -------------------------------------


class _ThrottledStep(_PickledStep):
    """Folds routed updates into a `ThrottledShard` and writes each changed entity's document when due."""

    def __init__(self, shard: ThrottledShard[Any], builder: NeighbourLogic | TrendingLogic) -> None:
        self.state = shard
        self.builder = builder

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[FencedDoc], bool]:
        learn = self.builder.learn
        shard = self.state
        for group in groups:
            learn(shard, group)
        return self._docs(shard.collect()), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[FencedDoc], bool]:
        return self._docs(self.state.flush()), StatefulBatchLogic.RETAIN

    def _docs(self, written: Any) -> list[FencedDoc]:
        builder, clock = self.builder, self.state.clock
        return [
            FencedDoc(
                builder.key_of(key),
                version,
                orjson.dumps(state.top(builder.published, clock)),
                builder.ttl_s,
                state.newest,
            )
            for key, state, version in written
        ]


class NeighbourLogic:
    """Builds the neighbours step: time-decayed co-visitation per SKU, top-N written throttled."""

    def __init__(self, settings: Settings) -> None:
        self.capacity = max(1, settings.rec.item_capacity // settings.rec.shards)
        self.interval_s = settings.rec.neighbours_write_interval_s
        self.published = settings.rec.neighbours_published
        self.ttl_s = settings.rec.doc_ttl_s
        self.half_life_s = settings.rec.neighbours_half_life_s
        self.neighbours_capacity = settings.rec.neighbours_capacity
        self.key_of = keys.rec_neighbours

    def __call__(self, resume: bytes | None) -> _ThrottledStep:
        shard = pickle.loads(resume) if resume else ThrottledShard(self.capacity, self.interval_s)
        return _ThrottledStep(shard, self)

    def new(self, sku: str) -> ItemNeighbours:
        return ItemNeighbours(self.half_life_s, self.neighbours_capacity)

    def learn(self, shard: ThrottledShard[ItemNeighbours], covisits: list[CoVisit]) -> None:
        new = self.new
        for covisit in covisits:
            shard.touch(covisit.item, new, covisit.ts).learn_one(covisit)


class TrendingLogic:
    """Builds the trending step: decayed weight per SKU per scope, each scope kind with its half-life."""

    def __init__(self, settings: Settings) -> None:
        self.capacity = 1 << 30  # scopes are categories, locations, channels: few; each Trending is bounded
        self.interval_s = settings.rec.trending_write_interval_s
        self.published = settings.rec.trending_published
        self.ttl_s = settings.rec.doc_ttl_s
        self.trending_capacity = settings.rec.trending_capacity
        self.half_lives = {
            "cat": settings.rec.trending_half_life_category_s,
            "loc": settings.rec.trending_half_life_location_s,
            "ch": settings.rec.trending_half_life_channel_s,
        }
        self.global_half_life_s = settings.rec.trending_half_life_global_s
        self.key_of = keys.rec_trending

    def __call__(self, resume: bytes | None) -> _ThrottledStep:
        shard = pickle.loads(resume) if resume else ThrottledShard(self.capacity, self.interval_s)
        return _ThrottledStep(shard, self)

    def half_life_of(self, scope: str) -> float:
        return self.half_lives.get(scope.partition(":")[0], self.global_half_life_s)

    def new(self, scope: str) -> Trending:
        return Trending(self.half_life_of(scope), self.trending_capacity)

    def learn(self, shard: ThrottledShard[Trending], batches: list[TrendHits]) -> None:
        """Each of `batches` is one shoppers shard's summed hits of one batch (`TrendHits`)."""
        new = self.new
        for summed in batches:
            for (scope, sku), (weight, ts, category) in summed.items():
                shard.touch(scope, new, ts).learn_one(sku, weight, ts, category or None)


# --- similar: one key, the session-kNN index over every shopper ----------------------------------------------------


Click = tuple[str, str, float, str]
"""(actor, SKU, event time, the key of the similar replica that lists the actor) for the session-kNN index."""


def similar_keys(replicas: int) -> list[str]:
    """The keys of the similar step's replicas: `similar` alone (the key of the releases before replicas, so
    their recovery state is found), else `similar:0` ... `similar:<replicas - 1>`."""
    if replicas <= 1:
        return [Stage.SIMILAR.value]
    return [f"{Stage.SIMILAR.value}:{n}" for n in range(replicas)]


class SimilarLogic:
    """Builds the similar step: the session-kNN index (`SessionNeighbours`) and each changed shopper's list.

    A shopper's neighbours may be any shopper, so the index cannot be split by shopper without losing them,
    nor by SKU without a second exchange per click. It is replicated instead (`rec_knn_replicas` keys, spread
    over the workers like every key): each replica learns every click (a few microseconds each) and lists
    only the shoppers it owns (crc32 of the actor), so the scoring, the cost, is split over the replicas at
    the price of one index in memory per replica. Every shopper who clicked in a batch gets their list
    written in that batch (never throttled: it is what their next answer reads).

    Cost: one `SessionNeighbours.top` per owned shopper per batch (tens of microseconds of CPU at the default
    sizes); `rec_knn_sessions=0` turns the step's lists off.
    """

    def __init__(self, settings: Settings) -> None:
        rec = settings.rec
        self.rec = rec
        self.ttl_s = rec.profile_ttl_s

    def __call__(self, resume: bytes | None) -> _SimilarStep:
        rec = self.rec
        index = pickle.loads(resume) if resume else SessionNeighbours(
            rec.knn_session_items, rec.knn_sessions_per_sku, rec.knn_sessions, rec.item_capacity, rec.knn_neighbours
        )  # fmt: skip
        return _SimilarStep(index, self)


_event_time = itemgetter(2)


class _SimilarStep(_PickledStep):
    def __init__(self, index: SessionNeighbours, builder: SimilarLogic) -> None:
        self.state = index
        self.builder = builder

    def on_batch(self, groups: list[list[tuple[str, list[Click]]]]) -> tuple[list[FencedDoc], bool]:
        """Learn the batch's clicks in event-time order; the list of a shopper this replica owns is computed right
        after their last click of the batch: the index as of that click, whatever came after it in the batch. So
        the list is the same however the stream was cut into batches (a replay, the live stream, the in-process
        harness) and however many replicas there are, at one list per shopper per batch.

        Each group is one shoppers shard's [(this replica's key, its clicks)] (the clicks shared by every
        replica)."""
        index = self.state
        mine = groups[0][0][0]
        # In event-time order: the groups of one batch come from several shoppers shards, in no set order.
        clicks = sorted((click for group in groups for _, sent in group for click in sent), key=_event_time)
        last = {actor: n for n, (actor, _, _, owner) in enumerate(clicks) if owner == mine}
        published, ttl_s, out = self.builder.rec.knn_published, self.builder.ttl_s, []
        for n, (actor, sku, ts, _) in enumerate(clicks):
            index.learn_one(actor, sku, ts)
            if last.get(actor) == n:
                listed = index.top(actor, published)
                out.append(FencedDoc(keys.rec_similar(actor), index.next_version(actor), orjson.dumps(listed), ttl_s,
                                     index.as_of(actor)))  # fmt: skip
        return out, StatefulBatchLogic.RETAIN


# --- experiments: one key, tallies per variant and the ranker ------------------------------------------------------


class Experiments:
    """Per-variant tallies and the online ranker, with the versions of their documents."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.tallies: dict[str, tuple[ExperimentTally, int]] = {}
        self.ranker = RecRanker(learning_rate=learning_rate)
        self.ranker_written = float("-inf")
        self.clock = float("-inf")


class ExperimentLogic:
    """Builds the experiments step: counts each variant's requests, impressions, clicks, carts, conversions
    and trains the ranker on labelled examples (weights written at most every `rec_trending_write_interval_s`)."""

    def __init__(self, settings: Settings) -> None:
        self.learning_rate = settings.rec.ranker_learning_rate
        self.interval_s = settings.rec.trending_write_interval_s

    def __call__(self, resume: bytes | None) -> _ExperimentStep:
        return _ExperimentStep(pickle.loads(resume) if resume else Experiments(self.learning_rate), self)


class _ExperimentStep(_PickledStep):
    def __init__(self, experiments: Experiments, builder: ExperimentLogic) -> None:
        self.state = experiments
        self.builder = builder

    def on_batch(self, groups: list[list[Feedback]]) -> tuple[list[FencedDoc], bool]:
        state = self.state
        changed: dict[str, None] = {}
        learned = 0
        counted: Counter[tuple[str, str]] = Counter()
        for group in groups:
            for item in group:
                if item.ts > state.clock:
                    state.clock = item.ts
                if type(item) is TallyIncrement:
                    held = state.tallies.get(item.variant)
                    if held is None:
                        held = state.tallies[item.variant] = (ExperimentTally(item.variant), 0)
                    held[0].update(item)
                    changed[item.variant] = None
                    counted[item.variant, item.counter] += item.n
                elif type(item) is LabelledExample:
                    state.ranker.learn_one(item.features, item.clicked)
                    learned += 1
        for (variant, counter), n in counted.items():
            REC_FEEDBACK.labels(variant, counter).inc(n)
        out: list[FencedDoc] = []
        for variant in changed:
            tally, version = state.tallies[variant]
            version = next_version(version, 0.0)  # a plain counter: tallies are never evicted
            state.tallies[variant] = (tally, version)
            out.append(FencedDoc(keys.rec_experiment(variant), version, orjson.dumps(tally.get()), as_of=tally.as_of))
        if learned and state.clock - state.ranker_written >= self.builder.interval_s:
            out.append(self._ranker_doc())
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[FencedDoc], bool]:
        state = self.state
        if state.ranker.version and state.ranker_written < state.clock:
            return [self._ranker_doc()], StatefulBatchLogic.RETAIN
        return [], StatefulBatchLogic.RETAIN

    def _ranker_doc(self) -> FencedDoc:
        state = self.state
        state.ranker_written = state.clock
        weights = state.ranker.export()
        return FencedDoc(keys.rec_ranker(), weights["version"], orjson.dumps(weights), as_of=state.clock)
