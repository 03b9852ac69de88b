"""Recommendation quality: prequential HitRate@20 and MRR@20 of the full blend against baselines.

For each interaction (view, cart, purchase) in stream order, every method is
FIRST asked for its top 20 given what was known just before: the shopper
(user and/or session), the SKU they are on (their previous SKU in the session),
their location (the store, for till baskets; none online, which means
"sellable anywhere"). THEN every model learns from the interaction. A hit is
the interaction's SKU among the 20; MRR adds 1/rank.

The task is "the next different SKU": an interaction on the SKU the shopper is
already on is learned from but not scored (the contract never recommends the
SKU being viewed, so no method could hit it).

Methods, all learning from the same stream, all filtered the same way (never
the current SKU, never a SKU without available stock where the shopper is):
- `omnistream_blend`: `operators.recs.blend.recommend` with the default variant,
  fed exactly the documents `material_plan` / `followup_plan` ask for;
- `popularity`: all-time interaction counts;
- `recent_popularity`: time-decayed counts (the blend's global trending list);
- `covisitation`: neighbours of the current SKU only.

Stock: the simulator's inventory, till and order events run through the real
`TxnJournal` and `StockLedger`, so "sellable" means exactly what the API will
read from Redis. `oos_share` re-checks every returned SKU against that view.

Input: the simulator (default) or a CSV `ts,user_or_session,item,event_type`
(`benchmarks/interactions_csv.py` converts public logs); a CSV has no stock,
so every SKU seen counts as sellable.

Run: `python benchmarks/recs_quality.py [--events N] [--seed S] [--csv PATH]`;
results go to `benchmarks/results/recs_quality.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import platform
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Count, ProductUpsert, Purchase, Return, Sale, Void
from events.topics import Topic
from operators.movements import StockMovement, inventory_movement, purchase_movements
from operators.recs.blend import (
    NEIGHBOURS_SERVED,
    TRENDING_SERVED,
    RecMaterial,
    RecRequest,
    Scored,
    followup_plan,
    material_plan,
    recommend,
)
from operators.recs.catalog import CatalogItem
from operators.recs.covisitation import DEFAULT_KIND_WEIGHTS, ItemNeighbours, SessionTrail
from operators.recs.experiments import Variant
from operators.recs.interactions import Interaction, InteractionKind, interactions_of
from operators.recs.profile import ProfileDoc, ShopperProfile
from operators.recs.ranker import RankerWeights
from operators.recs.trending import GLOBAL, Trending, scopes_of
from operators.stock_ledger import StockLedger
from operators.txn_journal import TxnJournal
from sim.workload import Workload

K = 20
RESULTS = Path(__file__).resolve().parent / "results" / "recs_quality.json"
METHODS = ("omnistream_blend", "popularity", "recent_popularity", "covisitation")
BASELINES = METHODS[1:]
SESSION_GAP_S = 1_800.0
"""A shopper's previous SKU is "the SKU they are on" only within this gap (and for CSV input, it splits sessions)."""
TRENDING_REFRESH_S = 60.0
"""Event-time seconds a trending list is reused: the flow rewrites trending documents per batch, not per event."""


class StockView:
    """Available stock per (sku, location) from the real ledgers; answers "sellable here?"."""

    def __init__(self) -> None:
        self.ledgers: dict[str, StockLedger] = {}
        self.journals: dict[str, TxnJournal] = {}
        self.available: dict[tuple[str, str], int] = {}
        self.locations_with_stock: dict[str, int] = {}
        self.inactive: set[str] = set()

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
        if sku in self.inactive:
            return False
        if location_id is None:
            return self.locations_with_stock.get(sku, 0) > 0
        return self.available.get((sku, location_id), 0) > 0


class Sellable:
    """The `sellable` container `recommend` takes, answered by the stock view at one location."""

    def __init__(self, stock: StockView | None, location_id: str | None, known: set[str]) -> None:
        self.stock, self.location_id, self.known = stock, location_id, known

    def __contains__(self, sku: object) -> bool:
        if not isinstance(sku, str):
            return False
        if self.stock is None:
            return sku in self.known
        return self.stock.sellable(sku, self.location_id)


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


class Harness:
    """Every model's state, learned in one pass, asked before it learns each interaction."""

    def __init__(self, stock: StockView | None, variant: Variant | None = None) -> None:
        self.stock = stock
        self.variant = variant or Variant("blend")
        self.catalog: dict[str, CatalogItem] = {}
        self.trails: dict[str, SessionTrail] = {}
        self.profiles: dict[str, ShopperProfile] = {}
        self.neighbours: dict[str, ItemNeighbours] = {}
        self.trending: dict[str, Trending] = {}
        self.popularity: dict[str, float] = {}
        self.last: dict[str, tuple[str, float, str]] = {}  # actor -> (sku, ts, session) of the previous interaction
        self.known: set[str] = set()
        self.metrics = {name: Metrics() for name in METHODS}
        self.now = float("-inf")
        self._trending_cache: dict[str, tuple[float, list[Scored]]] = {}
        self._popular_cache: tuple[int, list[Scored]] = (-1, [])
        self.interactions = 0
        self.evaluated = 0
        self.ranker: RankerWeights | None = None

    # --- learning -------------------------------------------------------------

    def upsert(self, event: ProductUpsert) -> None:
        item = self.catalog.get(event.sku)
        if item is None:
            item = self.catalog[event.sku] = CatalogItem(event.sku)
        item.apply(event)
        if self.stock is not None:
            if item.active:
                self.stock.inactive.discard(event.sku)
            else:
                self.stock.inactive.add(event.sku)

    def learn(self, interaction: Interaction) -> None:
        actor = interaction.actor
        profile = self.profiles.get(actor)
        if profile is None:
            profile = self.profiles[actor] = ShopperProfile(actor)
        profile.learn_one(interaction)
        trail = self.trails.get(actor)
        if trail is None:
            trail = self.trails[actor] = SessionTrail()
        for covisit in trail.learn_one(interaction):
            neighbours = self.neighbours.get(covisit.item)
            if neighbours is None:
                neighbours = self.neighbours[covisit.item] = ItemNeighbours()
            neighbours.learn_one(covisit)
        weight = DEFAULT_KIND_WEIGHTS[interaction.kind - 1]
        for scope in scopes_of(interaction):
            trending = self.trending.get(scope)
            if trending is None:
                trending = self.trending[scope] = Trending()
            trending.learn_one(interaction.sku, weight, interaction.ts, interaction.category)
        self.popularity[interaction.sku] = self.popularity.get(interaction.sku, 0.0) + weight
        self.known.add(interaction.sku)
        self.last[actor] = (interaction.sku, interaction.ts, interaction.session)

    # --- asking ---------------------------------------------------------------

    def _trending_top(self, scope: str) -> list[Scored]:
        cached = self._trending_cache.get(scope)
        if cached is not None and self.now - cached[0] < TRENDING_REFRESH_S:
            return cached[1]
        trending = self.trending.get(scope)
        top = trending.top(TRENDING_SERVED, self.now) if trending is not None else []
        self._trending_cache[scope] = (self.now, top)
        return top

    def _fetch(
        self, request: RecRequest, plan_profiles: list[str], plan_neighbours: list[str], plan_trending: list[str],
        material: RecMaterial,
    ) -> RecMaterial:  # fmt: skip
        profiles: dict[str, ProfileDoc] = dict(material.profiles)
        for actor in plan_profiles:
            profile = self.profiles.get(actor)
            if profile is not None:
                profiles[actor] = profile.get()
        neighbours = dict(material.neighbours)
        for sku in plan_neighbours:
            state = self.neighbours.get(sku)
            if state is not None:
                neighbours[sku] = state.top(NEIGHBOURS_SERVED, self.now)
        trending = dict(material.trending)
        for scope in plan_trending:
            trending[scope] = self._trending_top(scope)
        return material._replace(profiles=profiles, neighbours=neighbours, trending=trending)

    def blend(self, request: RecRequest, sellable: Sellable) -> list[str]:
        empty = RecMaterial({}, {}, {}, self.ranker, sellable)
        material = self._fetch(request, *material_plan(request), empty)
        material = self._fetch(request, *followup_plan(request, material), material)
        return [item.sku for item in recommend(request, material, self.variant, K)]

    def popular(self, request: RecRequest, sellable: Sellable) -> list[str]:
        if self._popular_cache[0] != self.interactions // 200:  # refreshed every 200 interactions
            top = heapq.nlargest(TRENDING_SERVED, self.popularity.items(), key=lambda kv: kv[1])
            self._popular_cache = (self.interactions // 200, [(sku, score, "") for sku, score in top])
        return _filtered(self._popular_cache[1], request.sku, sellable)

    def recent_popular(self, request: RecRequest, sellable: Sellable) -> list[str]:
        return _filtered(self._trending_top(GLOBAL), request.sku, sellable)

    def covisitation(self, request: RecRequest, sellable: Sellable) -> list[str]:
        state = self.neighbours.get(request.sku or "")
        return _filtered(state.top(NEIGHBOURS_SERVED, self.now) if state else [], request.sku, sellable)

    def step(self, interaction: Interaction) -> None:
        """Ask every method, score them, then learn from `interaction`."""
        item = self.catalog.get(interaction.sku)
        if item is not None:
            enriched = item.enrich(interaction)
            if enriched is None:
                return  # a withdrawn product: neither scored nor learned
            interaction = enriched
        if interaction.ts > self.now:
            self.now = interaction.ts
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
            sellable = Sellable(self.stock, location_id, self.known)
            answers = {
                "omnistream_blend": self.blend(request, sellable),
                "popularity": self.popular(request, sellable),
                "recent_popularity": self.recent_popular(request, sellable),
                "covisitation": self.covisitation(request, sellable),
            }
            for name, returned in answers.items():
                oos = sum(1 for sku in returned if not self._in_stock(sku, location_id))
                self.metrics[name].score(returned, interaction.sku, oos)
            self.evaluated += 1
        self.learn(interaction)
        self.interactions += 1

    def _in_stock(self, sku: str, location_id: str | None) -> bool:
        # Checked against the stock view directly, not through `Sellable`: an independent re-check.
        if self.stock is None:
            return sku in self.known
        return self.stock.sellable(sku, location_id)


def _filtered(scored: Sequence[Scored], exclude: str | None, sellable: Sellable) -> list[str]:
    out: list[str] = []
    for sku, _, _ in scored:
        if sku != exclude and sku in sellable:
            out.append(sku)
            if len(out) == K:
                break
    return out


# --- inputs -------------------------------------------------------------------


def run_simulator(harness: Harness, stock: StockView, events: int, seed: int, n_skus: int, n_users: int) -> int:
    """Feed `events` simulator records (after the opening catalog and stock) through stock and harness."""
    workload = Workload(seed=seed, n_skus=n_skus, n_users=n_users)
    seen: set[str] = set()
    opening = n_skus * (1 + workload.n_warehouses) + workload.n_stores * min(n_skus, 1000)
    total = 0
    for offset, record in enumerate(workload.records(opening + events)):
        event = decode(record.topic, record.value, source_topic=record.topic.value, partition=0, offset=offset)
        total += 1
        if isinstance(event, DeadLetter):
            continue
        kind = type(event)
        if kind is ProductUpsert:
            harness.upsert(event)  # type: ignore[arg-type]
        elif record.topic is Topic.INVENTORY:
            source = (record.topic.value, 0, offset, record.value) if kind is Count else None
            stock.apply([inventory_movement(event, source)])  # type: ignore[arg-type]
        interactions = interactions_of(event)
        if interactions and event.event_id not in seen:  # type: ignore[union-attr]
            seen.add(event.event_id)  # type: ignore[union-attr]
            for interaction in interactions:
                harness.step(interaction)
        # Stock effects after the answers: the shopper was recommended to before their order reserved anything.
        if kind is Purchase:
            stock.apply(purchase_movements(event))  # type: ignore[arg-type]
        elif kind in (Sale, Return, Void):
            stock.apply_till(event)  # type: ignore[arg-type]
    return total


_KINDS = {"view": InteractionKind.VIEW, "cart": InteractionKind.CART, "purchase": InteractionKind.PURCHASE}


def csv_interactions(path: Path) -> Iterator[Interaction]:
    """Interactions from a CSV `ts,user_or_session,item,event_type`; bad rows are skipped, never fatal.

    `ts` is epoch seconds or RFC 3339. Sessions are split at SESSION_GAP_S of inactivity.
    """
    last_seen: dict[str, tuple[float, int]] = {}
    with path.open(newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle)):
            try:
                ts = _parse_ts(row["ts"])
                who, sku, kind = row["user_or_session"].strip(), row["item"].strip(), _KINDS[row["event_type"].strip()]
            except (KeyError, ValueError, AttributeError):
                continue
            if not who or not sku:
                continue
            previous = last_seen.get(who)
            session = 0
            if previous is not None:
                session = previous[1] + (ts - previous[0] > SESSION_GAP_S)
            last_seen[who] = (ts, session)
            yield Interaction(f"csv-{row_number}", ts, "u:" + who, f"s:{who}#{session}", sku, kind, "web")


def _parse_ts(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- the run ------------------------------------------------------------------


def evaluate(
    events: int = 200_000, seed: int = 7, csv_path: Path | None = None, n_skus: int = 5000, n_users: int = 10_000
) -> dict[str, Any]:
    """One prequential run; returns the result document (also what the JSON file holds)."""
    started = time.perf_counter()
    stock = StockView() if csv_path is None else None
    harness = Harness(stock)
    if csv_path is None:
        assert stock is not None
        records = run_simulator(harness, stock, events, seed, n_skus, n_users)
        catalog_size = n_skus
        source: dict[str, Any] = {"kind": "simulator", "seed": seed, "events": events, "records": records,
                                  "n_skus": n_skus, "n_users": n_users}  # fmt: skip
    else:
        for interaction in csv_interactions(csv_path):
            harness.step(interaction)
        catalog_size = len(harness.known)
        source = {"kind": "csv", "path": str(csv_path)}
    methods = {name: metrics.get(catalog_size) for name, metrics in harness.metrics.items()}
    blend = methods["omnistream_blend"]
    hit, mrr = f"hit_rate_at_{K}", f"mrr_at_{K}"
    acceptance = {
        "beats_every_baseline_on_hit_rate": all(blend[hit] > methods[b][hit] for b in BASELINES),
        "beats_every_baseline_on_mrr": all(blend[mrr] > methods[b][mrr] for b in BASELINES),
        "no_out_of_stock": all(m["oos_share"] == 0.0 for m in methods.values()),
    }
    acceptance["passed"] = all(acceptance.values())
    return {
        "benchmark": "recs_quality",
        "k": K,
        "protocol": "prequential: ask every method, then learn; target = the next different SKU of the actor",
        "source": source,
        "interactions": harness.interactions,
        "evaluated": harness.evaluated,
        "methods": methods,
        "acceptance": acceptance,
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
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = evaluate(args.events, args.seed, args.csv, args.skus, args.users)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    console = Console()
    console.print(table(result))
    console.print(f"acceptance: {result['acceptance']}  ({result['elapsed_s']} s)")
    return 0 if result["acceptance"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
