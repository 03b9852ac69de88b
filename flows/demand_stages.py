"""The demand flow's stages: decoding into demand lines, and the Bytewax logic of each keyed step.

`flows.demand` wires them. The domain is in `operators.demand`: `OpenDays` (the days step),
`DemandModels` (the models step); this module routes between them and shapes what the API
serves (`events.forecast`).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import msgspec
from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.forecast import METHOD, METHOD_GLOBAL, DailyForecast, RisingItem, RisingItems, SkuForecast
from events.models import (
    Adjustment,
    Count,
    Event,
    Fulfilment,
    LineItem,
    OrderCancel,
    Purchase,
    Receipt,
    Reservation,
    Return,
    Sale,
    TransferIn,
    TransferOut,
    Void,
    Weather,
)
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord
from flows.keyed import RouterPerThread
from omnistream.settings import Settings
from operators.demand.days import (
    CancelOrder,
    DaysInput,
    DaysOutput,
    Demand,
    OpenDays,
    Tick,
    VoidTxn,
    WeatherDay,
)
from operators.demand.global_model import GlobalModelConfig
from operators.demand.locations import LocationBook, day_number, day_of
from operators.demand.models import ClosedDay, DemandModels, rise_of
from operators.demand.reorders import Outlook, ReorderDoc, ReorderInput, ReorderPolicy, ReorderShard
from operators.demand.series import ForecastConfig, SeriesForecast
from operators.keyed_shards import ShardBatch, ShardRouter
from operators.movements import inventory_movement
from operators.rounding import round_all
from state import keys
from state.doc_writer import FencedDoc

FLOW = "demand"
_ENCODER = msgspec.json.Encoder()
_STOCK_EVENTS = (Receipt, Adjustment, TransferOut, TransferIn, Count, Fulfilment, Reservation)


class Stage(StrEnum):
    """The keyed stages: days shard i feeds models shard i, which feeds reorders shard i; rising is keyed by location.

    Days and reorders shards hold the same (location, SKU) pairs: both are keyed `location\x1fSKU`.
    """

    DAYS = "days"
    MODELS = "models"
    RISING = "rising"
    REORDERS = "reorders"


Routed = ShardBatch[Stage, Any]


class RisingCandidates(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """One models shard's rising candidates at a location as of a closed day."""

    location_id: str
    day: int
    shard: int
    items: list[RisingItem]


def location_book(settings: Settings) -> LocationBook:
    """The configured locations; a bad `OMNISTREAM_DEMAND_LOCATIONS` stops the flow at build time."""
    try:
        return LocationBook.parse(settings.demand.locations)
    except ValueError as ex:
        raise SystemExit(f"omnistream: bad configuration: OMNISTREAM_DEMAND_LOCATIONS: {ex}") from None


def forecast_config(settings: Settings) -> ForecastConfig:
    d = settings.demand
    return ForecastConfig(
        alpha=d.alpha, interval=d.interval, horizon_days=d.horizon_days, idle_days=d.idle_days,
        rising_alpha=d.rising_alpha,
    )  # fmt: skip


def global_model_config(settings: Settings) -> GlobalModelConfig | None:
    """The global model's knobs, or None when `OMNISTREAM_DEMAND_GLOBAL_MODEL` leaves it off."""
    d = settings.demand
    return GlobalModelConfig(learning_rate=d.global_learning_rate) if d.global_model else None


def unknown_location(location_id: str) -> str:
    """The dead-letter error of an event at a location no rule of `OMNISTREAM_DEMAND_LOCATIONS` names."""
    return f"Unknown location {location_id!r}: no rule of the demand flow's locations names it"


class DemandBatch:
    """One batch's demand lines per days shard, then the batch's newest event time to every days shard.

    The newest event time is that of demand (till, order and cancel events) and weather, as before the
    reorders step read the whole inventory topic: stock movements feed the reorders step only.

    Till sales (+) and returns (−) go to the shard of their (store, SKU); voids and weather go to
    every shard (each shard undoes the voided lines it holds; every shard forecasts with the
    weather); online order lines and cancels to the shard of their (fulfilment location, SKU).
    The `Tick` closing each shard's group carries the batch's newest event time, after the lines
    it covers, so a day never closes ahead of lines of the same batch.
    """

    __slots__ = ("book", "horizon_days", "letters", "newest", "router")

    def __init__(
        self, router: ShardRouter[Stage, DaysInput | ReorderInput], book: LocationBook, horizon_days: int
    ) -> None:
        self.router = router
        self.book = book
        self.horizon_days = horizon_days
        self.letters: list[DeadLetter] = []
        self.newest = float("-inf")

    def _refuse(self, record: KafkaRecord, error: str) -> None:
        self.letters.append(DeadLetter.of(record.topic, record.partition, record.offset, error, record.value))

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        kind = type(event)
        route, days, book = self.router.add, Stage.DAYS, self.book
        if kind in _STOCK_EVENTS:
            # Stock movements do not move the watermark: read ahead of the tills (the inventory topic's own
            # partitions, another producer's clock), they would close a day before its demand is in.
            stock: Receipt = event  # type: ignore[assignment]
            if book.plan(stock.location_id) is not None:  # elsewhere: no plan, no reorders (nor a dead letter)
                route(Stage.REORDERS, f"{stock.location_id}\x1f{stock.sku}", inventory_movement(stock))
            return
        ts = event.ts.timestamp()
        if ts > self.newest:
            self.newest = ts
        if kind is Sale or kind is Return:
            till: Sale | Return = event  # type: ignore[assignment]
            if book.plan(till.store_id) is None:
                self._refuse(record, unknown_location(till.store_id))
                return
            self._feed_by_shard(till, till.store_id, till.items)
            sign = 1 if kind is Sale else -1
            for index, line in enumerate(till.items):
                route(
                    days,
                    f"{till.store_id}\x1f{line.sku}",
                    Demand(till.event_id, ts, till.store_id, line.sku, sign * line.qty, txn_id=till.txn_id, line=index),
                )
        elif kind is Purchase:
            order: Purchase = event  # type: ignore[assignment]
            location_id = order.fulfilment_location_id
            if book.plan(location_id) is None:
                self._refuse(record, unknown_location(location_id))
                return
            self._feed_by_shard(order, location_id, order.items)
            for index, line in enumerate(order.items):
                route(
                    days,
                    f"{location_id}\x1f{line.sku}",
                    Demand(order.event_id, ts, location_id, line.sku, line.qty, order_id=order.order_id, line=index),
                )
        elif kind is OrderCancel:
            cancel: OrderCancel = event  # type: ignore[assignment]
            undo = CancelOrder(
                cancel.event_id, ts, cancel.location_id or "", cancel.sku or "", cancel.order_id, cancel.qty or 0
            )
            if cancel.location_id is None or cancel.sku is None:
                # A whole order, or a line wherever its purchase put it: every shard nets the lines it holds.
                self._to_every_shard(undo)
                self._to_every_shard(cancel, Stage.REORDERS)
                return
            if book.plan(cancel.location_id) is None:
                self._refuse(record, unknown_location(cancel.location_id))
                return
            pair = f"{cancel.location_id}\x1f{cancel.sku}"
            route(days, pair, undo)
            route(Stage.REORDERS, pair, cancel)
        elif kind is Void:
            void: Void = event  # type: ignore[assignment]
            if book.plan(void.store_id) is None:
                self._refuse(record, unknown_location(void.store_id))
                return
            self._to_every_shard(VoidTxn(void.event_id, ts, void.store_id, void.original_txn_id))
            self._to_every_shard(void, Stage.REORDERS)
        elif kind is Weather:
            self._weather(event, ts, record)  # type: ignore[arg-type]

    def _weather(self, weather: Weather, ts: float, record: KafkaRecord) -> None:
        if self.book.plan(weather.location_id) is None:
            self._refuse(record, unknown_location(weather.location_id))
            return
        day = day_number(weather.day)
        issued = self.book.days(weather.location_id).day(ts)
        if day - issued > self.horizon_days:
            self._refuse(
                record,
                f"Weather for {weather.day.isoformat()} is {day - issued} days ahead of its ts: "
                f"beyond the {self.horizon_days}-day forecast horizon",
            )
            return
        self._to_every_shard(
            WeatherDay(
                weather.event_id,
                ts,
                weather.location_id,
                day,
                weather.kind == "observation",
                weather.temperature_c,
                weather.precipitation_mm,
            )
        )

    def _to_every_shard(self, item: DaysInput | ReorderInput, stage: Stage = Stage.DAYS) -> None:
        for index in range(self.router.shards):
            self.router.add_at(stage, index, item)

    def _feed_by_shard(self, event: Sale | Return | Purchase, location_id: str, items: list[LineItem]) -> None:
        """The till or order event, whole, once to each reorders shard holding one of its lines.

        Not cut to the shard's lines: a shard tracks only its stocked pairs, which are its own, and ignores the rest.
        """
        router = self.router
        if len(items) == 1:  # most baskets: one line, one shard
            router.add(Stage.REORDERS, f"{location_id}\x1f{items[0].sku}", event)
            return
        shard_of = router.shard_of
        sent: set[str] = set()
        for line in items:
            pair = f"{location_id}\x1f{line.sku}"
            name = shard_of(Stage.REORDERS, pair)
            if name not in sent:
                sent.add(name)
                router.add(Stage.REORDERS, pair, event)

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        raise AssertionError("the demand flow reads no topic raw")

    def output(self) -> list[DeadLetter | Routed]:
        if self.newest > float("-inf"):
            for index in range(self.router.shards):
                self.router.add_at(Stage.DAYS, index, Tick(self.newest, index))
        out: list[DeadLetter | Routed] = [*self.letters]
        out.extend(self.router.drain())
        return out


class Decoder(BatchDecoder[DeadLetter | Routed]):
    """Raw Kafka records to demand lines per days shard; never raises.

    Reads every till event, the `purchase` events of the clickstream and the `order_cancel` events of
    the inventory topic (pre-filtered on their raw bytes: those topics' dead letters are the inventory
    flow's), and the weather, whose dead letters are this flow's.
    """

    def __init__(self, source_topics: dict[str, Topic], settings: Settings) -> None:
        super().__init__(
            FLOW,
            source_topics,
            self._new_batch,
            wanted={Topic.CLICKSTREAM: b'"purchase"'},
        )
        self.book = location_book(settings)
        self.horizon_days = settings.demand.horizon_days
        self._routers: RouterPerThread[Stage, DaysInput | ReorderInput] = RouterPerThread(settings.demand.shards)

    def _new_batch(self) -> DemandBatch:
        return DemandBatch(self._routers.get(), self.book, self.horizon_days)


class _PickledStep(StatefulBatchLogic[list[Any], Any, bytes]):
    state: Any

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


# --- days: open days per shard -------------------------------------------------------------------------------


class DaysLogic:
    """Builds the days step (`operators.demand.days.OpenDays`): day closes and late corrections to models shard i."""

    def __init__(self, settings: Settings) -> None:
        self.book = location_book(settings)
        self.shards = settings.demand.shards
        self.lateness_s = settings.demand.lateness_s
        self.journal_s = max(settings.dedup_window_s, settings.order_retention_s)

    def __call__(self, resume: bytes | None) -> _DaysStep:
        state = pickle.loads(resume) if resume else OpenDays(self.lateness_s, self.journal_s)
        return _DaysStep(state, self)


class _DaysStep(_PickledStep):
    def __init__(self, state: OpenDays, builder: DaysLogic) -> None:
        self.state = state
        self.builder = builder
        self.router: ShardRouter[Stage, DaysOutput] = ShardRouter(builder.shards)

    def on_batch(self, groups: list[list[DaysInput]]) -> tuple[list[Any], bool]:
        state, book = self.state, self.builder.book
        produced: list[DaysOutput] = []
        for group in groups:
            produced += state.apply(group, book)
        if not produced:
            return [], StatefulBatchLogic.RETAIN
        for item in produced:
            self.router.add_at(Stage.MODELS, state.shard, item)
        return list(self.router.drain()), StatefulBatchLogic.RETAIN


# --- models: series per location per shard -------------------------------------------------------------------


class ModelsLogic:
    """Builds the models step (`operators.demand.models.DemandModels`): forecast documents and rising candidates."""

    def __init__(self, settings: Settings) -> None:
        self.book = location_book(settings)
        self.config = forecast_config(settings)
        self.shards = settings.demand.shards
        self.rising_kept = settings.demand.rising_kept
        self.interval = settings.demand.interval
        self.global_model = global_model_config(settings)

    def __call__(self, resume: bytes | None) -> _ModelsStep:
        state: DemandModels = pickle.loads(resume) if resume else DemandModels(self.config, self.rising_kept)
        # The setting in force now, not the snapshot's: switched off, the learnt models are dropped; switched on
        # (or its knobs changed), each location's model starts afresh at the next close.
        state.global_model = self.global_model
        if self.global_model is None:
            state.corrections.clear()
        return _ModelsStep(state, self)


_DATES: dict[int, str] = {}


def iso_date(day: int) -> str:
    """The ISO date of a day number, memoised (every forecast document names 28 of them)."""
    text = _DATES.get(day)
    if text is None:
        if len(_DATES) > 4096:
            _DATES.clear()
        text = _DATES[day] = day_of(day).isoformat()
    return text


def forecast_documents(
    location_id: str, as_of: int, forecasts: Sequence[SeriesForecast], interval: float, method: str = METHOD
) -> list[bytes]:
    """The stored (and served) JSON of each SKU's forecast at a location: `events.forecast.SkuForecast`.

    A close makes one per SKU of the location in the shard (tens of thousands): every figure is rounded
    to 3 decimals in one pass over them all (`operators.rounding.round_all`, `round`'s very results).
    """
    flat: list[float] = []
    for forecast in forecasts:
        if not len(forecast.points) == len(forecast.lower) == len(forecast.upper):
            raise ValueError(f"forecast of {forecast.sku}: points and bounds of different lengths")
        flat += forecast.points
        flat += forecast.lower
        flat += forecast.upper
    rounded = round_all(flat, 3)
    as_of_text = iso_date(as_of)
    dates: dict[tuple[int, int], list[str]] = {}
    docs: list[bytes] = []
    at = 0
    for forecast in forecasts:
        n = len(forecast.points)
        named = dates.get((forecast.first_day, n))
        if named is None:
            named = dates[forecast.first_day, n] = [iso_date(forecast.first_day + h) for h in range(n)]
        days = [
            DailyForecast(date, point, low, high)
            for date, point, low, high in zip(
                named,
                rounded[at : at + n],
                rounded[at + n : at + 2 * n],
                rounded[at + 2 * n : at + 3 * n],
                strict=True,
            )
        ]
        at += 3 * n
        docs.append(_ENCODER.encode(SkuForecast(forecast.sku, location_id, as_of_text, method, interval,
                                                round(forecast.last_28_days, 3), days)))  # fmt: skip
    return docs


def rising_item(forecast: SeriesForecast) -> RisingItem:
    week = sum(forecast.points[:7])
    rate = forecast.last_28_days / 4.0
    recent = forecast.recent_7_days
    return RisingItem(
        forecast.sku,
        round(week, 3),
        round(forecast.last_28_days, 3),
        round(rate, 3),
        round(rise_of(forecast), 3),
        round(recent / rate, 3) if rate > 0 else None,
        round(recent, 3),
    )


class _ModelsStep(_PickledStep):
    def __init__(self, state: DemandModels, builder: ModelsLogic) -> None:
        self.state = state
        self.builder = builder
        self.shard = -1
        self.router: ShardRouter[Stage, RisingCandidates | Outlook] = ShardRouter(builder.shards)

    def on_batch(self, groups: list[list[DaysOutput]]) -> tuple[list[Any], bool]:
        out: list[Any] = []
        for group in groups:
            for closed in self.state.apply(group, self.builder.book):
                out += self._documents(closed)
        out.extend(self.router.drain())
        return out, StatefulBatchLogic.RETAIN

    def _documents(self, closed: ClosedDay) -> list[Any]:
        location_id, day, interval = closed.location_id, closed.day, self.builder.interval
        method = METHOD if self.builder.global_model is None else METHOD_GLOBAL
        docs: list[Any] = [
            FencedDoc(keys.forecast(f.sku, location_id), day, doc)
            for f, doc in zip(
                closed.forecasts, forecast_documents(location_id, day, closed.forecasts, interval, method), strict=True
            )
        ]
        for f in closed.forecasts:
            self.router.add_at(
                Stage.REORDERS, closed.shard, Outlook(location_id, f.sku, day, f.points, f.lower, f.upper)
            )
        # Each shard's list for a day replaces that shard's earlier one at the rising step.
        self.router.add(
            Stage.RISING,
            location_id,
            RisingCandidates(location_id, day, closed.shard, [rising_item(f) for f in closed.rising]),
        )
        return docs


# --- rising: per location --------------------------------------------------------------------------------------


class RisingLogic:
    """Builds the rising step: each location's candidates from every models shard, merged into one document."""

    def __init__(self, settings: Settings) -> None:
        self.kept = settings.demand.rising_kept

    def __call__(self, resume: bytes | None) -> _RisingStep:
        state: dict[str, tuple[int, dict[int, list[RisingItem]]]] = pickle.loads(resume) if resume else {}
        return _RisingStep(state, self.kept)


class _RisingStep(_PickledStep):
    def __init__(self, state: dict[str, tuple[int, dict[int, list[RisingItem]]]], kept: int) -> None:
        self.state = state
        self.kept = kept

    def on_batch(self, groups: list[list[RisingCandidates]]) -> tuple[list[Any], bool]:
        changed: dict[str, None] = {}
        for group in groups:
            for candidates in group:
                held = self.state.get(candidates.location_id)
                if held is None or candidates.day > held[0]:
                    held = self.state[candidates.location_id] = (candidates.day, {})
                elif candidates.day < held[0]:
                    continue  # an older day's list, after a newer one: forecasts have moved on
                held[1][candidates.shard] = candidates.items
                changed[candidates.location_id] = None
        out: list[Any] = []
        for location_id in changed:
            day, by_shard = self.state[location_id]
            merged = sorted((item for items in by_shard.values() for item in items), key=lambda i: (-i.increase, i.sku))
            doc = _ENCODER.encode(RisingItems(location_id, iso_date(day), merged[: self.kept]))
            # Versions grow with the day and, within a day, with the shards merged so far.
            out.append(FencedDoc(keys.rising(location_id), day * 65_536 + len(by_shard), doc))
        return out, StatefulBatchLogic.RETAIN


# --- reorders: stock and forecasts per (location, SKU) shard ------------------------------------------------------


def reorder_policy(settings: Settings) -> ReorderPolicy:
    d = settings.demand
    return ReorderPolicy(review_days=d.reorder_review_days, interval=d.interval, change_share=d.reorder_change_share)


class ReorderLogic:
    """Builds the reorders step (`operators.demand.reorders.ReorderShard`): reorder records and fenced documents."""

    def __init__(self, settings: Settings) -> None:
        self.book = location_book(settings)
        self.policy = reorder_policy(settings)
        self.windows = (settings.dedup_window_s, settings.count_window_s, settings.order_retention_s)

    def __call__(self, resume: bytes | None) -> _ReorderStep:
        state: ReorderShard = pickle.loads(resume) if resume else ReorderShard(self.policy, *self.windows)
        state.policy = self.policy  # the policy in force now, not the snapshot's
        return _ReorderStep(state, self.book)


class _ReorderStep(_PickledStep):
    def __init__(self, state: ReorderShard, book: LocationBook) -> None:
        self.state = state
        self.book = book

    def on_batch(self, groups: list[list[ReorderInput]]) -> tuple[list[Any], bool]:
        items = groups[0] if len(groups) == 1 else [item for group in groups for item in group]
        records, docs = self.state.apply(items, self.book)
        out: list[Any] = [*records]
        out += [reorder_doc(doc) for doc in docs]
        return out, StatefulBatchLogic.RETAIN


def reorder_doc(doc: ReorderDoc) -> FencedDoc:
    """A pair's open reorder as the sink writes it, with the pair in or out of the reorders index set."""
    member = keys.reorder_member(doc.sku, doc.location_id)
    return FencedDoc(keys.reorder(doc.sku, doc.location_id), doc.version, doc.doc, as_of=doc.as_of,
                     flag_set=keys.suggestion_skus("reorder"), flag_member=member, flagged=doc.open)  # fmt: skip
