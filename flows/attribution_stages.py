"""The attribution flow's steps: the decoder and its keyed stages' Bytewax logic (wiring in `flows/attribution.py`).

Thin adapters over `operators.attribution.shards`: the batch's items go in, what comes out
is routed on as `ShardBatch`es (`AttributionStage` names where) or, from the totals, shaped
into the day documents the API reads and the per-order credits `omni.attribution` carries.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import msgspec
import orjson
from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Event, Id, IdentityLink, Purchase, Sale, Timestamp
from events.registry import REGISTRY
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord
from flows.keyed import RouterPerThread
from flows.metrics import SKIPPED
from flows.sinks import TopicRecord
from omnistream.settings import Settings
from operators.attribution.journeys import Conversion
from operators.attribution.shards import (
    ActorShard,
    AttributionTotals,
    ClickSeen,
    Clock,
    ForMember,
    Linked,
    MemberShard,
    OrderSeen,
)
from operators.keyed_shards import ShardBatch, ShardRouter
from state import keys
from state.doc_writer import FencedDoc

FLOW = "attribution"


class AttributionStage(StrEnum):
    """Where a `ShardBatch` of the attribution flow goes; values prefix the Bytewax keys (`actor:3`, `totals`)."""

    ACTORS = "actor"
    MEMBERS = "member"
    TOTALS = "totals"
    SINK = "sink"
    """Records for the sink: not a keyed stage."""


Routed = ShardBatch[AttributionStage, Any]
_ACTORS, _MEMBERS, _TOTALS, _SINK = (AttributionStage.ACTORS, AttributionStage.MEMBERS, AttributionStage.TOTALS,
                                     AttributionStage.SINK)  # fmt: skip
_CLICKS, _POS = Topic.CLICKSTREAM, Topic.POS


def ungroup(batch: Routed) -> list[Any]:
    return batch.items


class AttributionBatch:
    """One batch as the attribution flow routes it (a `flows.decoding.DecodedBatch`).

    Clickstream events go to their actor's shard (account, or session without one), an order
    after its event's own touchpoint; member store sales to the member's shard; identity links
    to the account's shard. Every stage gets the clock when event time moved on.
    """

    __slots__ = ("clock", "max_ts", "router", "visits")

    def __init__(self, router: ShardRouter[AttributionStage, Any], clock: _Clock) -> None:
        self.router = router
        self.clock = clock
        self.max_ts = 0.0
        self.visits: set[str] = set()  # actor and session of the untagged events passed on in this batch

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        ts = event.ts.timestamp()
        if ts > self.max_ts:
            self.max_ts = ts
        if topic is _CLICKS:
            click: Purchase = event  # type: ignore[assignment]  # any clickstream event; a purchase below
            actor = f"u:{click.user_id}" if click.user_id is not None else f"s:{click.session_id}"
            seen = ClickSeen(actor, click.session_id, ts, click.event_id, click.utm_source, click.utm_medium,
                             click.utm_campaign, click.referrer)  # fmt: skip
            self.router.add(_ACTORS, actor, seen)
            if type(event) is Purchase:
                conversion = Conversion(click.order_id, ts, click.total, click.channel)
                self.router.add(_ACTORS, actor, OrderSeen(actor, conversion))
        elif topic is _POS:
            if type(event) is Sale and event.customer_id is not None:
                conversion = Conversion(event.txn_id, ts, event.total, "pos")
                sold = ForMember(event.customer_id, conversion=conversion, in_store=True)
                self.router.add(_MEMBERS, event.customer_id, sold)
        elif type(event) is IdentityLink:
            actor = f"u:{event.user_id}"
            self.router.add(_ACTORS, actor, Linked(actor, event.customer_id, ts))

    def add_dead_letter(self, letter: DeadLetter) -> None:  # owns no topic's dead letters
        raise AssertionError("the attribution flow owns no dead letters")

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        """A clickstream record: decoded in full when it can be more than a visit's start (tags, referrer,
        order), else only as far as who, which session and when (`_Visit`), the rest of it unread.

        One dated past `latest_s` is skipped and counted, as the decoder does with the other topics'
        events (the inventory flow dead-letters it): its time would move the flow's clock and end
        every journey's lookback at once."""
        value = record.value
        if value is None:
            return 0
        if b'"utm_' in value or b'"referrer"' in value or b'"purchase"' in value:
            event = decode(topic, value, source_topic=record.topic, partition=record.partition, offset=record.offset)
            if type(event) is DeadLetter:
                return 0  # the inventory flow dead-letters it
            if event.ts.timestamp() > latest_s:  # type: ignore[union-attr]
                SKIPPED.labels(FLOW, topic.value).inc()
                return 0
            self.add(topic, event, record)  # type: ignore[arg-type]
            return 1
        try:
            visit = _VISIT.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return 0
        if visit.type not in _CLICK_TYPES:
            return 0
        ts = visit.ts.timestamp()
        if ts > latest_s:
            SKIPPED.labels(FLOW, topic.value).inc()
            return 0
        if ts > self.max_ts:
            self.max_ts = ts
        actor = f"u:{visit.user_id}" if visit.user_id is not None else f"s:{visit.session_id}"
        # After one untagged event of a session, another of the same session in this batch can change
        # nothing: it is no new session and carries no tags. Only the first goes on.
        seen = f"{actor}\x1f{visit.session_id}"
        if seen not in self.visits:
            self.visits.add(seen)
            self.router.add(_ACTORS, actor, ClickSeen(actor, visit.session_id, ts, visit.event_id, None, None, None,
                                                      None))  # fmt: skip
        return 1

    def output(self) -> list[Routed]:
        router = self.router
        tick = self.clock.tick(self.max_ts)
        if tick is not None:
            router.add_to_every(_ACTORS, tick)
            router.add_to_every(_MEMBERS, tick)
            router.add_to_single(_TOTALS, tick)
        return router.drain()


class _Clock:
    """The newest event time a decoder thread has seen, sent on at most every `tick_s` of it."""

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._local = threading.local()

    def tick(self, ts: float) -> Clock | None:
        last: float = getattr(self._local, "last", 0.0)
        if ts - last < self.tick_s:
            return None
        self._local.last = ts
        return Clock(ts)


class _Visit(msgspec.Struct):
    """What an untagged clickstream event tells attribution: whose visit, which session, when (a direct visit
    starts with a new session). Decoding only these fields, without the card-number scan of a full decode,
    is several times cheaper, and most clickstream events are such."""

    type: str
    event_id: Id
    ts: Timestamp
    session_id: Id
    user_id: Id | None = None


_VISIT = msgspec.json.Decoder(_Visit)
_CLICK_TYPES = frozenset(entry.name for entry in REGISTRY.of_topic(Topic.CLICKSTREAM))

# Member sales only (a sale without `customer_id` cannot be linked to a journey), and links only.
_WANTED = {Topic.POS: b'"customer_id"', Topic.MEMBERS: b'"identity_link"'}


class Decoder(BatchDecoder[Routed]):
    def __init__(self, source_topics: dict[str, Topic], settings: Settings) -> None:
        super().__init__(FLOW, source_topics, self._new_batch, wanted=_WANTED, raw_topics={Topic.CLICKSTREAM})
        self._routers: RouterPerThread[AttributionStage, Any] = RouterPerThread(settings.attribution.shards)
        self._clock = _Clock(settings.attribution.tick_s)

    def _new_batch(self) -> AttributionBatch:
        return AttributionBatch(self._routers.get(), self._clock)


class _Step(StatefulBatchLogic[list[Any], Routed, bytes]):
    def __init__(self, state: Any, shards: int) -> None:
        self.state = state
        self.router: ShardRouter[AttributionStage, Any] = ShardRouter(shards)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def items(groups: list[list[Any]]) -> list[Any]:
        return groups[0] if len(groups) == 1 else [item for group in groups for item in group]


def _resume(resume: bytes | None, make: Callable[[], Any]) -> Any:
    return pickle.loads(resume) if resume is not None else make()


class ActorStage:
    """Builds the `actors` step: accounts' and sessions' journeys until linked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _ActorStep:
        s = self.settings.attribution
        return _ActorStep(_resume(resume, lambda: ActorShard(s.lookback_s)), s.shards)


class _ActorStep(_Step):
    state: ActorShard

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        to_members, paths = self.state.apply(self.items(groups))
        router = self.router
        for item in to_members:
            router.add(_MEMBERS, item.customer_id, item)
        router.add_all_to_single(_TOTALS, paths)
        return router.drain(), StatefulBatchLogic.RETAIN


class MemberStage:
    """Builds the `members` step: members' journeys across their accounts and stores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _MemberStep:
        s = self.settings.attribution
        return _MemberStep(_resume(resume, lambda: MemberShard(s.lookback_s)), s.shards)


class _MemberStep(_Step):
    state: MemberShard

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        self.router.add_all_to_single(_TOTALS, self.state.apply(self.items(groups)))
        return self.router.drain(), StatefulBatchLogic.RETAIN


class TotalsStage:
    """Builds the `totals` step: credits per order (to `omni.attribution`) and per-day documents."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _TotalsStep:
        s = self.settings.attribution
        return _TotalsStep(_resume(resume, lambda: AttributionTotals(s.half_life_s, s.max_paths)), 1)


class _TotalsStep(_Step):
    state: AttributionTotals

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        days, orders = self.state.apply(self.items(groups))
        records: list[Any] = [TopicRecord(Topic.ATTRIBUTION, o["order_id"], orjson.dumps(o)) for o in orders]
        records += [FencedDoc(keys.attribution_day(d.day), d.version, orjson.dumps(d.doc())) for d in days]
        self.router.add_all_to_single(_SINK, records)
        return self.router.drain(), StatefulBatchLogic.RETAIN
