"""Recommendation quality: prequential HitRate@20 and MRR@20 of what the deployed code serves, against baselines.

One pipeline: the events run through the real recommend dataflow in process
(`flows.recommend.build_flow` with a `TestingSource` and a `TestingSink`), and
every request is answered from the `FencedDoc` documents that flow emitted, read
with the API's own parsers (`state.rec_reader.scored_list`, `plain_doc`) and
combined by the API's own pure functions (`operators.recs.blend.material_plan`,
`followup_plan`, `recommend`: the blend, the stock filter, the diversification).
`tests/integration/test_recommend_harness.py` checks that this path and
the live one (broker, Redis, flows, HTTP endpoint) give identical lists.

Prequential: for each interaction (view, cart, purchase) in stream order,
every method is asked for its top 20 given the documents the flow had written
*before* it (a document counts from the event time of its write: the fence
version of a sharded document is that time in milliseconds, see
`operators.rec_shards.next_version`; so a throttled list counts from when it
was written, not from its newest event), for the shopper (user and/or
session), the SKU they are on (their previous SKU in the session) and their
location (the store, for till baskets; none online: "sellable anywhere"). A hit
is the interaction's SKU among the 20; MRR adds 1/rank. The task is "the next
different SKU": an interaction on the SKU the shopper is already on is not
scored (the contract never recommends the SKU being viewed).

Methods, all filtered the same way (never the current SKU, never a SKU without
available stock where the shopper is, never a withdrawn one):
- `omnistream_blend`: what `GET /v1/recommendations` answers (the default variant, default `seen=exclude`);
- `omnistream_blend_seen_include`: the same with `seen=include` (viewed SKUs ranked in);
- `popularity`: all-time interaction counts (kept here: the flow has no such list);
- `recent_popularity`: the flow's global trending document;
- `covisitation`: the flow's neighbour document of the current SKU only.

Stock: the simulator's inventory, till and order events run through the real
`TxnJournal` and `StockLedger`, so "sellable" means what the inventory flow's
sellable sets say. `oos_share` re-checks every returned SKU against that view.

Inputs are logs of contract events (`InputLog`: topic and JSON value per
record): the simulator (default), or a CSV `ts,user_or_session,item,event_type`
(`benchmarks/interactions_csv.py` converts public logs) turned into clickstream
events; a CSV has no stock, so every SKU seen counts as sellable. A reader of
recorded sessions plugs in as one more `InputLog`.

Recorded click sessions (`--sessions [DIR]`, a `SessionId ItemId Time` TSV pair, see
`benchmarks/session_log.py`) run the next-click protocol instead: the same flow
and the same answer, against popularity, last-item co-visitation and session
kNN implemented in that module as references.

Run: `python benchmarks/recs_quality.py [--events N] [--seed S] [--csv PATH] [--sessions [DIR]]`;
results go to `benchmarks/results/recs_quality.json` (`recs_quality_sessions.json`) and a table is printed.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import heapq
import math
import platform
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.session_log import (
    DEFAULT_DIR,
    Click,
    Scores,
    SessionLog,
    next_click_tasks,
    reference_scores,
    view_event,
)
from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Count, OrderCancel, Purchase, Return, Sale, Void
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.recommend import INPUT_TOPICS, build_flow
from omnistream.settings import Settings
from operators.movements import StockMovement, inventory_movement
from operators.order_book import OrderBook
from operators.recs.blend import RecItem, RecMaterial, RecRequest, followup_plan, material_plan, recommend
from operators.recs.experiments import Variant
from operators.recs.interactions import Interaction, interactions_of
from operators.stock_ledger import StockLedger
from operators.txn_journal import TxnJournal
from sim.workload import Workload
from state import keys
from state.doc_writer import FencedDoc, read_doc
from state.rec_reader import ScoredList, plain_doc, scored_list

K = 20
RESULTS = Path(__file__).resolve().parent / "results" / "recs_quality.json"
SESSION_RESULTS = Path(__file__).resolve().parent / "results" / "recs_quality_sessions.json"
METHODS = ("omnistream_blend", "omnistream_blend_seen_include", "popularity", "recent_popularity", "covisitation")
BASELINES = METHODS[2:]
SESSION_GAP_S = 1_800.0
"""A shopper's previous SKU is "the SKU they are on" only within this gap (and for CSV input, it splits sessions)."""
FLOW_BATCH = 16
"""Records per batch of the in-process flow: the documents of a batch are written at once, at its newest event."""
_MS_VERSIONS = 10**11
"""Fence versions at least this large are event-time milliseconds (2001 onwards); smaller ones are counters."""
Record = tuple[Topic, bytes]


class InputLog(Protocol):
    """A log of contract events in stream order: what the flow consumes and what the requests are drawn from."""

    def records(self) -> Iterator[Record]: ...


class SimulatorLog:
    """The simulator's records: the opening catalog and stock, then `events` more."""

    def __init__(self, events: int, seed: int, n_skus: int, n_users: int) -> None:
        self.workload = Workload(seed=seed, n_skus=n_skus, n_users=n_users)
        opening = n_skus * (1 + self.workload.n_warehouses) + self.workload.n_stores * min(n_skus, 1000)
        self.limit = opening + events

    def records(self) -> Iterator[Record]:
        for record in self.workload.records(self.limit):
            yield record.topic, record.value


_EVENT_TYPES = {"view": "product_view", "cart": "add_to_cart", "purchase": "purchase"}


class CsvLog:
    """A CSV `ts,user_or_session,item,event_type` as clickstream events; bad rows are skipped, never fatal.

    `ts` is epoch seconds or RFC 3339. Sessions are split at SESSION_GAP_S of inactivity.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> Iterator[Record]:
        last_seen: dict[str, tuple[float, int]] = {}
        with self.path.open(newline="") as handle:
            for row_number, row in enumerate(csv.DictReader(handle)):
                try:
                    ts = _parse_ts(row["ts"])
                    who, sku = row["user_or_session"].strip(), row["item"].strip()
                    kind = _EVENT_TYPES[row["event_type"].strip()]
                except (KeyError, ValueError, AttributeError):
                    continue
                if not who or not sku:
                    continue
                previous = last_seen.get(who)
                session = 0 if previous is None else previous[1] + (ts - previous[0] > SESSION_GAP_S)
                last_seen[who] = (ts, session)
                event: dict[str, Any] = {"event_id": f"csv-{row_number}", "type": kind, "ts": rfc3339_ms(ts),
                                         "schema_version": 1, "session_id": f"{who}#{session}", "user_id": who,
                                         "channel": "web"}  # fmt: skip
                if kind == "purchase":
                    event |= {"order_id": f"csv-{row_number}", "items": [{"sku": sku, "qty": 1, "unit_price": 0.0}],
                              "total": 0.0, "currency": "EUR", "fulfilment_location_id": "online",
                              "payment": {"method": "card"}}  # fmt: skip
                else:
                    event |= {"sku": sku, "qty": 1} if kind == "add_to_cart" else {"sku": sku}
                yield Topic.CLICKSTREAM, orjson.dumps(event)


def _parse_ts(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class StockView:
    """Available stock per (sku, location) from the real ledgers; answers "sellable here?"."""

    def __init__(self) -> None:
        self.ledgers: dict[str, StockLedger] = {}
        self.journals: dict[str, TxnJournal] = {}
        self.orders = OrderBook()
        self.available: dict[tuple[str, str], int] = {}
        self.locations_with_stock: dict[str, int] = {}

    def apply(self, moves: Iterable[StockMovement]) -> None:
        for move in moves:
            ledger = self.ledgers.get(move.sku)
            if ledger is None:
                ledger = self.ledgers[move.sku] = StockLedger(move.sku)
            if ledger.apply(move) is not None:
                pass  # alerts and stale counts are the inventory flow's business, not stock truth here
            for location in ledger.stock().locations:
                if location.location_id == move.location_id:
                    self._set(move.sku, move.location_id, location.available)

    def apply_event(self, event: object, topic: Topic, offset: int, value: bytes) -> None:
        """The stock effect of one decoded event, if it has one (inventory movements, orders, till baskets)."""
        kind = type(event)
        if kind is Purchase or kind is OrderCancel:
            self.apply(self.orders.apply(event))  # type: ignore[arg-type]
        elif topic is Topic.INVENTORY:
            source = (topic.value, 0, offset, value) if kind is Count else None
            self.apply([inventory_movement(event, source)])  # type: ignore[arg-type]
        elif kind in (Sale, Return, Void):
            self.apply_till(event)  # type: ignore[arg-type]

    def apply_till(self, event: Sale | Return | Void) -> None:
        journal = self.journals.get(event.store_id)
        if journal is None:
            journal = self.journals[event.store_id] = TxnJournal()
        self.apply(journal.apply(event))

    def _set(self, sku: str, location_id: str, available: int) -> None:
        before = self.available.get((sku, location_id), 0)
        self.available[(sku, location_id)] = available
        if (before > 0) != (available > 0):
            self.locations_with_stock[sku] = self.locations_with_stock.get(sku, 0) + (1 if available > 0 else -1)

    def sellable(self, sku: str, location_id: str | None) -> bool:
        if location_id is None:
            return self.locations_with_stock.get(sku, 0) > 0
        return self.available.get((sku, location_id), 0) > 0


class Metrics:
    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0
        self.reciprocal_ranks = 0.0
        self.returned = 0
        self.out_of_stock = 0
        self.skus: set[str] = set()

    def score(self, returned: Sequence[str], target: str, oos: int) -> None:
        self.requests += 1
        self.returned += len(returned)
        self.out_of_stock += oos
        self.skus.update(returned)
        for rank, sku in enumerate(returned, 1):
            if sku == target:
                self.hits += 1
                self.reciprocal_ranks += 1.0 / rank
                break

    def get(self, catalog_size: int) -> dict[str, Any]:
        n = max(self.requests, 1)
        return {
            "requests": self.requests,
            f"hit_rate_at_{K}": self.hits / n,
            f"mrr_at_{K}": self.reciprocal_ranks / n,
            "catalog_coverage": len(self.skus) / max(catalog_size, 1),
            "oos_share": self.out_of_stock / max(self.returned, 1),
            "mean_returned": self.returned / n,
        }


# --- the deployed pipeline ------------------------------------------------------


def flow_documents(
    records: Iterable[Record], settings: Settings | None = None, batch_size: int = FLOW_BATCH
) -> list[FencedDoc]:
    """Every document the recommend flow writes for `records`, in order: the real dataflow, run in process."""
    settings = settings or Settings()
    wanted = set(INPUT_TOPICS)
    kafka = [KafkaRecord(settings.topic(topic), 0, offset, value)
             for offset, (topic, value) in enumerate(records) if topic in wanted]  # fmt: skip
    out: list[Any] = []
    run_main(build_flow(settings, source=TestingSource(kafka, batch_size=batch_size), sink=TestingSink(out)))
    return [item for item in out if type(item) is FencedDoc]


def written_at(doc: FencedDoc) -> float:
    """The event time at which the flow wrote `doc` (from then on the API can read it)."""
    as_of = doc.as_of if doc.as_of is not None else float("-inf")
    return max(as_of, doc.version / 1000.0) if doc.version >= _MS_VERSIONS else as_of


class DocumentStore:
    """What Redis holds of the flow's documents at a point of event time: the newest version per key, fenced.

    Feed it the flow's documents; `advance(ts)` applies those written before `ts`.
    Lists and profiles are parsed once per stored version, by the API's parsers.
    """

    def __init__(self, docs: Iterable[FencedDoc]) -> None:
        self._pending = sorted(docs, key=written_at)
        self._times = [written_at(doc) for doc in self._pending]
        self._next = 0
        self.docs: dict[str, FencedDoc] = {}
        self.inactive: set[str] = set()
        self._parsed: dict[str, Any] = {}

    @classmethod
    def final(cls, docs: Iterable[FencedDoc]) -> DocumentStore:
        """Every document applied: the state the flow leaves once its input is consumed."""
        store = cls(docs)
        store.advance(float("inf"))
        return store

    def advance(self, ts: float) -> None:
        """Apply every document written strictly before `ts`."""
        end = bisect.bisect_left(self._times, ts, lo=self._next)
        for doc in self._pending[self._next : end]:
            held = self.docs.get(doc.key)
            if held is not None and held.version >= doc.version:
                continue  # the fence keeps the newer version
            self.docs[doc.key] = doc
            self._parsed.pop(doc.key, None)
            if doc.flag_set is not None:
                (self.inactive.add if doc.flagged else self.inactive.discard)(doc.flag_member)
        self._next = end

    def _doc(self, key: str, parse: Any) -> Any:
        if key in self._parsed:
            return self._parsed[key]
        doc = self.docs.get(key)
        parsed = self._parsed[key] = parse(doc.doc) if doc is not None else None
        return parsed

    def scored(self, key: str) -> ScoredList | None:
        return self._doc(key, scored_list)  # type: ignore[no-any-return]

    def plain(self, key: str) -> Any | None:
        """A profile or the ranker weights: unchecked JSON objects, typed as the blend reads them (as `Round`)."""
        return self._doc(key, plain_doc)


class Sellable:
    """The `sellable` container the API builds: in stock where the shopper is (or anywhere) and not withdrawn."""

    def __init__(self, stock: StockView | None, location_id: str | None, store: DocumentStore, known: set[str]) -> None:
        self.stock, self.location_id, self.store, self.known = stock, location_id, store, known

    def __contains__(self, sku: object) -> bool:
        if not isinstance(sku, str) or sku in self.store.inactive:
            return False
        if self.stock is None:
            return sku in self.known
        return self.stock.sellable(sku, self.location_id)


def served_answer(request: RecRequest, variant: Variant, k: int, store: DocumentStore, sellable: Any) -> list[RecItem]:
    """What `GET /v1/recommendations` answers from these documents: the route's plan, fetch and blend, without I/O.

    The route (`serving.routes.recommendations.Recommender.answer`) fetches round 1 (`material_plan`) and
    round 2 (`followup_plan` of round 1) from Redis, then calls `recommend`; here the fetch reads `store`.
    """
    material = RecMaterial({}, {}, {}, store.plain(keys.rec_ranker()) if variant.use_ranker else None, sellable)
    for plan in (material_plan(request), None):
        if plan is None:
            plan = followup_plan(request, material)
        profiles = dict(material.profiles)
        for actor in plan.profiles:
            profile = store.plain(keys.rec_profile(actor))
            if profile is not None:
                profiles[actor] = profile
        neighbours = dict(material.neighbours)
        for sku in plan.neighbours:
            listed = store.scored(keys.rec_neighbours(sku))
            if listed is not None:
                neighbours[sku] = listed
        trending = dict(material.trending)
        for scope in plan.trending:
            listed = store.scored(keys.rec_trending(scope))
            if listed is not None:
                trending[scope] = listed
        similar = dict(material.similar)
        for actor in plan.similar:
            listed = store.scored(keys.rec_similar(actor))
            if listed is not None:
                similar[actor] = listed
        material = material._replace(profiles=profiles, neighbours=neighbours, trending=trending, similar=similar)
    return recommend(request, material, variant, k)


# --- the evaluation -------------------------------------------------------------


class Evaluation:
    """Asks every method before each interaction, from the documents written before it, and scores the answers."""

    def __init__(self, store: DocumentStore, stock: StockView | None, variant: Variant | None = None) -> None:
        self.store = store
        self.stock = stock
        self.variant = variant or Variant("blend")
        self.popularity: dict[str, float] = {}
        self.last: dict[str, tuple[str, float, str]] = {}  # actor -> (sku, ts, session) of the previous interaction
        self.known: set[str] = set()
        self.metrics = {name: Metrics() for name in METHODS}
        self._popular: tuple[int, list[str]] = (-1, [])
        self.interactions = 0
        self.evaluated = 0

    def step(self, interaction: Interaction) -> None:
        """Ask every method, score them, then count `interaction`."""
        store = self.store
        store.advance(interaction.ts)
        if interaction.sku in store.inactive:
            return  # a withdrawn product: the flow no longer learns it, nor is it scored
        actor = interaction.actor
        last = self.last.get(actor)
        current = None
        if last is not None and (last[2] == interaction.session or interaction.ts - last[1] <= SESSION_GAP_S):
            current = last[0]
        if current != interaction.sku:
            user_id = actor[2:] if actor.startswith("u:") else None
            session_id = interaction.session[2:] if interaction.session.startswith("s:") else None
            location_id = interaction.location_id if interaction.channel == "store" else None
            request = RecRequest(user_id, session_id, current, location_id, interaction.channel)
            sellable = Sellable(self.stock, location_id, store, self.known)
            including = request._replace(include_seen=True)
            answers = {
                "omnistream_blend": [item.sku for item in served_answer(request, self.variant, K, store, sellable)],
                "omnistream_blend_seen_include": [
                    item.sku for item in served_answer(including, self.variant, K, store, sellable)
                ],
                "popularity": _filtered(self._popular_skus(), current, sellable),
                "recent_popularity": _filtered(_skus(store.scored(keys.rec_trending("global"))), current, sellable),
                "covisitation": _filtered(_skus(store.scored(keys.rec_neighbours(current or ""))), current, sellable),
            }
            for name, returned in answers.items():
                oos = sum(1 for sku in returned if not self._in_stock(sku, location_id))
                self.metrics[name].score(returned, interaction.sku, oos)
            self.evaluated += 1
        self.popularity[interaction.sku] = self.popularity.get(interaction.sku, 0.0) + 1.0
        self.known.add(interaction.sku)
        self.last[actor] = (interaction.sku, interaction.ts, interaction.session)
        self.interactions += 1

    def _popular_skus(self) -> list[str]:
        if self._popular[0] != self.interactions // 200:  # refreshed every 200 interactions
            top = heapq.nlargest(100, self.popularity.items(), key=lambda kv: kv[1])
            self._popular = (self.interactions // 200, [sku for sku, _ in top])
        return self._popular[1]

    def _in_stock(self, sku: str, location_id: str | None) -> bool:
        # Checked against the stock view directly, not through `Sellable`: an independent re-check.
        if self.stock is None:
            return sku in self.known
        return self.stock.sellable(sku, location_id)


def _skus(scored: ScoredList | None) -> list[str]:
    return [sku for sku, _, _ in scored or ()]


def _filtered(skus: Sequence[str], exclude: str | None, sellable: Sellable) -> list[str]:
    out: list[str] = []
    for sku in skus:
        if sku != exclude and sku in sellable:
            out.append(sku)
            if len(out) == K:
                break
    return out


def replay(records: Iterable[Record], evaluation: Evaluation, stock: StockView | None) -> int:
    """Walk `records` in order: each new interaction is asked about, then stock effects apply; returns how many."""
    seen: set[str] = set()
    total = 0
    for offset, (topic, value) in enumerate(records):
        total += 1
        event = decode(topic, value, source_topic=topic.value, partition=0, offset=offset)
        if isinstance(event, DeadLetter):
            continue
        if stock is not None and topic is Topic.INVENTORY:
            stock.apply_event(event, topic, offset, value)
        interactions = interactions_of(event)
        if interactions and event.event_id not in seen:
            seen.add(event.event_id)
            for interaction in interactions:
                evaluation.step(interaction)
        # Stock effects after the answers: the shopper was recommended to before their order reserved anything.
        if stock is not None and topic is not Topic.INVENTORY:
            stock.apply_event(event, topic, offset, value)
    return total


def stock_of(records: Iterable[Record]) -> StockView:
    """The stock view once every record has applied: what the inventory flow's sellable sets then hold."""
    stock = StockView()
    for offset, (topic, value) in enumerate(records):
        event = decode(topic, value, source_topic=topic.value, partition=0, offset=offset)
        if not isinstance(event, DeadLetter):
            stock.apply_event(event, topic, offset, value)
    return stock


# --- recorded sessions: the next-click protocol ------------------------------------------------------------


SESSION_BATCH = 1
"""Records per batch of the in-process flow on a session log: each click's documents are written before the next
click is asked about, as the live stack does within its freshness bound (the next click comes seconds later)."""


SEEN_SETTINGS = {"omnistream_blend_seen_include": True, "omnistream_blend_seen_exclude": False}
"""The deployed answer under each `seen` setting of the API (`seen=include` / `seen=exclude`), passed explicitly."""


def session_answers(
    log: SessionLog, docs: Sequence[FencedDoc], variant: Variant, include_seen: bool
) -> dict[str, Scores]:
    """The deployed answer after every validation click that has a successor, scored both ways."""
    store = DocumentStore(docs)
    tasks = next_click_tasks(log.valid)
    known = {click.item for click in log.train}
    deployed = {"all": Scores(), "next_different": Scores()}
    for index, click in enumerate(log.valid):
        known.add(click.item)
        target = tasks.get(index)
        if target is None:
            continue
        store.advance(math.nextafter(click.ts, math.inf))  # what was written up to and with this click
        request = RecRequest(None, click.session, click.item, None, "web", include_seen)
        items = served_answer(request, variant, K, store, Sellable(None, None, store, known))
        returned, reasons = [item.sku for item in items], [item.reason for item in items]
        deployed["all"].score(returned, target, reasons)
        if target != click.item:
            deployed["next_different"].score(returned, target, reasons)
    return deployed


def evaluate_sessions(
    directory: Path, variant: Variant | None = None, docs: Sequence[FencedDoc] | None = None
) -> dict[str, Any]:
    """The next-click protocol of `benchmarks/session_log.py` on a recorded log: the deployed answer under both
    `seen` settings and the reference methods of the same run, under both scorings (`all`, `next_different`).

    `docs`: the flow's documents for this log when already computed (tuning the API side reuses them)."""
    started = time.perf_counter()
    log = SessionLog(directory)
    if docs is None:
        docs = flow_documents(log.records(), batch_size=SESSION_BATCH)
    flow_s = time.perf_counter() - started
    variant = variant or Variant("blend")
    deployed = {name: session_answers(log, docs, variant, include) for name, include in SEEN_SETTINGS.items()}
    references = reference_scores(log)
    catalog_size = len({click.item for click in log.clicks()})
    methods = {**deployed, **references}
    scorings: dict[str, dict[str, Any]] = {
        scoring: {name: scores[scoring].get(catalog_size) for name, scores in methods.items()}
        for scoring in ("all", "next_different")
    }
    hit, mrr = f"hit_rate_at_{K}", f"mrr_at_{K}"
    best = scorings["all"]["omnistream_blend_seen_include"]
    knn = scorings["all"]["session_knn"]
    acceptance = {
        "hit_rate_at_least_0.70": best[hit] >= 0.70,
        "mrr_at_least_0.34": best[mrr] >= 0.34,
        "ahead_of_session_knn": best[hit] > knn[hit] and best[mrr] > knn[mrr],
    }
    acceptance["passed"] = all(acceptance.values())
    return {
        "benchmark": "recs_quality_sessions",
        "k": K,
        "protocol": "learn the training log in time order, replay each validation session click by click; after"
        " click i ask the top 20 with session_id, the current sku and seen=include or seen=exclude; hit if"
        " click i+1 is in them. Scorings: all (every next click, repeats included: under seen=exclude the API"
        " never recommends a SKU the shopper viewed, so a repeat is always a miss for it) and next_different (a"
        " repeat of the current SKU is not scored; references filtered of the current SKU)",
        "pipeline": "flows.recommend run in process (TestingSource/TestingSink, one record per batch), answers by"
        " the API's material_plan/followup_plan/recommend; references from benchmarks/session_log.py",
        "source": {
            "kind": "sessions",
            "path": str(directory),
            "train_clicks": len(log.train),
            "valid_clicks": len(log.valid),
        },
        "documents": len(docs),
        "scorings": scorings,
        "acceptance": acceptance,
        "flow_s": round(flow_s, 1),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


SETTLE_S = 0.015
"""Live mode: wait this long after a click's profile is written before asking, so the documents the same flow
batch writes after the profile (neighbour lists, trending) are in Redis too, as the in-process mode has them."""


def live_sessions(directory: Path, variant_spec: str = "blend:1") -> dict[str, Any]:
    """The next-click protocol through the running stack: the truth the in-process mode must agree with.

    Private services (an in-memory broker, a diskless Redis, one topic partition so the log keeps its order),
    the recommend flow tailing the clickstream, the API on one uvicorn worker with auth on. The training clicks
    are published as a backlog and consumed; then each validation click is published alone, timed until its
    session's profile in Redis holds it (freshness: view -> reflected in what the next answer reads), and, when
    the session goes on, `GET /v1/recommendations` is asked with `seen=include` and with `seen=exclude`.
    `variant_spec` is `rec_variants`: one blend arm by default, the one the in-process mode answers with.
    """
    import os
    import shutil
    import tempfile
    import urllib.request

    import redis
    from confluent_kafka import Producer

    from benchmarks.inventory import api_headers, start_api
    from benchmarks.keyspace import KeyWrites
    from events.stock import LocationStock, SkuStock
    from flows.launcher import start_flow
    from omnistream.kafka_admin import create_topics
    from omnistream.stack import start_broker, start_redis
    from state.stock_writer import StockWriter

    started = time.perf_counter()
    log = SessionLog(directory)
    broker, store = start_broker(), start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-recs-live-"))
    settings = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_prefix="rl.",
                        topic_partitions=1, recovery_dir=workdir / "recovery", flow_metrics_port=0,
                        rec_variants=variant_spec, api_redis_timeout_ms=2_000)  # fmt: skip
    # The API's Redis timeout (80 ms by default: an answer late is a 503) is raised: this measures what is answered,
    # and on a machine loaded by other jobs one call in thousands took longer (the first full run ended on a 503).
    create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
    client = redis.Redis.from_url(settings.redis.url)
    # A click log has no stock: every SKU of it is sellable (in stock at one warehouse), as the in-process mode
    # counts every SKU seen; written as the inventory flow writes stock, sellable set included.
    writer = StockWriter(client, generation="recs-live")
    skus = sorted({click.item for click in log.clicks()})
    for start in range(0, len(skus), 1000):
        writer.write_batch(
            [SkuStock(sku, 1, 0.0, (LocationStock("WH-01", 20, 0, 0.0),)) for sku in skus[start : start + 1000]]
        )
    # The last document of a click the answer reads: the session-kNN list when on (a later step), else the profile.
    written_last = keys.rec_similar if settings.rec.knn_sessions > 0 else keys.rec_profile
    writes = KeyWrites(settings.redis.url, written_last("s:*"))
    producer = Producer({"bootstrap.servers": settings.kafka.brokers, "linger.ms": 0})
    topic = settings.topic(Topic.CLICKSTREAM)
    flow_log = open(workdir / "flow.log", "wb")  # noqa: SIM115 - closed in the finally below
    run = start_flow("recommend", settings, stdout=flow_log, stderr=flow_log)
    api_proc, port = start_api("serving.app:create_app", settings)
    headers = api_headers(settings, "storefront")
    number = 0

    knn_on = written_last is keys.rec_similar

    def reflected(click: Click) -> bool:
        """The click is in what the session's next answer reads: its profile, and its session-kNN list (written
        by the flow's later `similar` step, fenced at the click's event time in ms at least)."""
        raw = read_doc(client, keys.rec_profile("s:" + click.session))
        doc = orjson.loads(raw) if raw else None
        if not (doc and doc["recent"] and doc["recent"][0][0] == click.item and doc["as_of"] >= click.ts):
            return False
        if not knn_on:
            return True
        version = client.hget(keys.rec_similar("s:" + click.session), keys.VERSION_FIELD)
        return version is not None and int(version) >= int(click.ts * 1000)

    def send(click: Click) -> float:
        nonlocal number
        producer.produce(topic, view_event(number, click), key=click.session.encode())
        producer.flush(10)
        number += 1
        return time.perf_counter()

    def ask(click: Click, seen: str) -> list[tuple[str, str]]:
        url = (f"http://127.0.0.1:{port}/v1/recommendations?session_id={click.session}&sku={click.item}"
               f"&channel=web&k={K}&seen={seen}")  # fmt: skip
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            items = orjson.loads(response.read())["items"]
        return [(item["sku"], item["reason"]) for item in items]

    names = {"include": "omnistream_blend_seen_include", "exclude": "omnistream_blend_seen_exclude"}
    deployed = {name: {"all": Scores(), "next_different": Scores()} for name in names.values()}
    lags: list[float] = []
    try:
        # The training backlog in batches (librdkafka lingers and compresses; one flush at the end): a flush per
        # click, as the validation clicks are sent, kept the broker at one round trip per click and the backlog
        # did not finish in 10 minutes on a loaded machine.
        backlog = Producer({"bootstrap.servers": settings.kafka.brokers, "linger.ms": 20, "batch.num.messages": 10000,
                            "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})  # fmt: skip
        for click in log.train:
            backlog.produce(topic, view_event(number, click), key=click.session.encode())
            backlog.poll(0)
            number += 1
        backlog.flush(120)
        last = log.train[-1]
        deadline = time.perf_counter() + float(os.environ.get("RECS_LIVE_BACKLOG_S", "600"))
        while not reflected(last):  # the backlog consumed (one partition: in order)
            if time.perf_counter() > deadline:
                raise RuntimeError("the recommend flow did not consume the training clicks in 10 minutes")
            time.sleep(0.2)
        backlog_s = time.perf_counter() - started
        tasks = next_click_tasks(log.valid)
        for index, click in enumerate(log.valid):
            sent = send(click)
            while not reflected(click):
                writes.wait(written_last("s:" + click.session), sent, timeout_s=30.0)
            lags.append(time.perf_counter() - sent)
            time.sleep(SETTLE_S)
            target = tasks.get(index)
            if target is None:
                continue
            for seen, name in names.items():
                answer = ask(click, seen)
                returned, reasons = [sku for sku, _ in answer], [reason for _, reason in answer]
                deployed[name]["all"].score(returned, target, reasons)
                if target != click.item:
                    deployed[name]["next_different"].score(returned, target, reasons)
    finally:
        api_proc.terminate()
        api_proc.wait(10)
        run.stop()
        flow_log.close()
        broker.stop()
        store.stop()
        if os.environ.get("RECS_LIVE_KEEP") is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("kept", workdir)
    catalog_size = len({click.item for click in log.clicks()})
    lags.sort()
    return {
        "mode": "live",
        "pipeline": "broker (one partition) -> recommend flow (tailing) -> Redis -> GET /v1/recommendations on one"
        " uvicorn worker, auth on, rec_variants=" + variant_spec,
        "scorings": {
            scoring: {name: scores[scoring].get(catalog_size) for name, scores in deployed.items()}
            for scoring in ("all", "next_different")
        },
        "freshness_ms": {
            "views": len(lags),
            "p50": round(1000 * lags[len(lags) // 2], 1),
            "p99": round(1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
            "max": round(1000 * lags[-1], 1),
        },
        "backlog_s": round(backlog_s, 1),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def add_live(result: dict[str, Any], live: dict[str, Any]) -> None:
    """Put the live run's figures beside the in-process ones (as `<method>_live`) and check they agree."""
    result["live"] = live
    hit, mrr = f"hit_rate_at_{K}", f"mrr_at_{K}"
    gaps = []
    for scoring, methods in live["scorings"].items():
        for name, figures in methods.items():
            result["scorings"][scoring][name + "_live"] = figures
            here = result["scorings"][scoring][name]
            gaps += [abs(figures[hit] - here[hit]), abs(figures[mrr] - here[mrr])]
    best = live["scorings"]["all"]["omnistream_blend_seen_include"]
    knn = result["scorings"]["all"]["session_knn"]
    acceptance = result["acceptance"]
    acceptance["live_hit_rate_at_least_0.70"] = best[hit] >= 0.70
    acceptance["live_mrr_at_least_0.34"] = best[mrr] >= 0.34
    acceptance["live_ahead_of_session_knn"] = best[hit] > knn[hit] and best[mrr] > knn[mrr]
    acceptance["in_process_within_0.01_of_live"] = max(gaps) <= 0.01
    acceptance["live_freshness_p99_at_most_1s"] = live["freshness_ms"]["p99"] <= 1000.0
    acceptance.pop("passed")
    acceptance["passed"] = all(acceptance.values())


def sessions_table(result: dict[str, Any], scoring: str) -> Table:
    methods = result["scorings"][scoring]
    requests = next(iter(methods.values()))["requests"]
    out = Table(title=f"Next click on recorded sessions, scoring {scoring} @ {K} ({requests} predictions)")
    for column in ("method", f"HitRate@{K}", f"MRR@{K}", "coverage", "hits by source"):
        out.add_column(column, justify="left" if column in ("method", "hits by source") else "right")
    for name, m in methods.items():
        shares = ", ".join(f"{s} {v:.0%}" for s, v in m.get("hit_share_by_source", {}).items())
        out.add_row(name, f"{m[f'hit_rate_at_{K}']:.4f}", f"{m[f'mrr_at_{K}']:.4f}",
                    f"{m['catalog_coverage']:.1%}", shares)  # fmt: skip
    return out


# --- the run ------------------------------------------------------------------


def evaluate(
    events: int = 200_000, seed: int = 7, csv_path: Path | None = None, n_skus: int = 5000, n_users: int = 10_000
) -> dict[str, Any]:
    """One prequential run; returns the result document (also what the JSON file holds)."""
    started = time.perf_counter()
    log: InputLog = SimulatorLog(events, seed, n_skus, n_users) if csv_path is None else CsvLog(csv_path)
    records = list(log.records())  # read once: the flow and the requests see the very same log
    docs = flow_documents(records)
    flow_s = time.perf_counter() - started
    stock = StockView() if csv_path is None else None
    evaluation = Evaluation(DocumentStore(docs), stock)
    replay(records, evaluation, stock)
    if csv_path is None:
        catalog_size = n_skus
        source: dict[str, Any] = {"kind": "simulator", "seed": seed, "events": events, "records": len(records),
                                  "n_skus": n_skus, "n_users": n_users}  # fmt: skip
    else:
        catalog_size = len(evaluation.known)
        source = {"kind": "csv", "path": str(csv_path)}
    methods = {name: metrics.get(catalog_size) for name, metrics in evaluation.metrics.items()}
    hit, mrr = f"hit_rate_at_{K}", f"mrr_at_{K}"
    acceptance: dict[str, bool] = {}
    for name, setting in (("omnistream_blend", "seen_exclude"), ("omnistream_blend_seen_include", "seen_include")):
        blend = methods[name]
        acceptance[f"{setting}_beats_every_baseline_on_hit_rate"] = all(blend[hit] > methods[b][hit] for b in BASELINES)
        acceptance[f"{setting}_beats_every_baseline_on_mrr"] = all(blend[mrr] > methods[b][mrr] for b in BASELINES)
    acceptance["no_out_of_stock"] = all(m["oos_share"] == 0.0 for m in methods.values())
    acceptance["passed"] = acceptance["no_out_of_stock"] and any(
        acceptance[f"{setting}_beats_every_baseline_on_hit_rate"]
        and acceptance[f"{setting}_beats_every_baseline_on_mrr"]
        for setting in ("seen_exclude", "seen_include")
    )
    return {
        "benchmark": "recs_quality",
        "k": K,
        "protocol": "prequential: ask every method from the documents the recommend flow wrote before the"
        " interaction, then go on; target = the next different SKU of the actor",
        "pipeline": "flows.recommend run in process (TestingSource/TestingSink), answers by the API's"
        " material_plan/followup_plan/recommend over the API's document parsers",
        "source": source,
        "documents": len(docs),
        "interactions": evaluation.interactions,
        "evaluated": evaluation.evaluated,
        "methods": methods,
        "acceptance": acceptance,
        "flow_s": round(flow_s, 1),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def table(result: dict[str, Any]) -> Table:
    out = Table(title=f"Recommendation quality, prequential @ {K} ({result['evaluated']} requests)")
    for column in ("method", f"HitRate@{K}", f"MRR@{K}", "coverage", "out of stock"):
        out.add_column(column, justify="left" if column == "method" else "right")
    for name, m in result["methods"].items():
        out.add_row(name, f"{m[f'hit_rate_at_{K}']:.4f}", f"{m[f'mrr_at_{K}']:.4f}",
                    f"{m['catalog_coverage']:.1%}", f"{m['oos_share']:.2%}")  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="simulator records after the opening stock")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--csv", type=Path, default=None, help="a CSV ts,user_or_session,item,event_type instead")
    parser.add_argument("--skus", type=int, default=5000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument(
        "--sessions",
        type=Path,
        nargs="?",
        const=DEFAULT_DIR,
        default=None,
        help=f"a folder with train.tsv and valid.tsv (SessionId ItemId Time); default {DEFAULT_DIR}",
    )
    parser.add_argument("--live", action="store_true", help="with --sessions: also the live mode (the truth)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    console = Console()
    if args.sessions is not None:
        sessions = evaluate_sessions(args.sessions)
        if args.live:
            add_live(sessions, live_sessions(args.sessions))
        out = args.out or SESSION_RESULTS
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(sessions, option=orjson.OPT_INDENT_2) + b"\n")
        for scoring in ("all", "next_different"):
            console.print(sessions_table(sessions, scoring))
        if "live" in sessions:
            console.print(f"live: {sessions['live']['freshness_ms']=}, backlog {sessions['live']['backlog_s']} s")
        console.print(f"acceptance: {sessions['acceptance']}  ({sessions['elapsed_s']} s, flow {sessions['flow_s']} s)")
        return 0 if sessions["acceptance"]["passed"] else 1
    args.out = args.out or RESULTS
    result = evaluate(args.events, args.seed, args.csv, args.skus, args.users)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(table(result))
    console.print(f"acceptance: {result['acceptance']}  ({result['elapsed_s']} s)")
    return 0 if result["acceptance"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
