"""Closed-loop evaluation of the merchandising suggestions: a season with and without acting on them.

Run: `nice -n 19 .venv/bin/python benchmarks/merchandising.py [--seed 7] [--days 60] [--skus 40] [--stores 6]`.
Writes `benchmarks/results/merchandising.json` and prints a table.

One run, one seed, three arms over the same season (`sim.season`: demand that
shifts between stores at set days, a seasonal buy with no replenishment, the
same shoppers in every arm):

- `baseline`: nobody acts on the suggestions;
- `transfers`: a planner ships every open transfer suggestion at once (what the
  donor really has), arriving after the configured lead time;
- `transfers+markdowns`: the same, and it applies every markdown suggestion.

Each arm runs the production dataflow (`flows.merchandising.build_flow`) in
process, fed hour by hour; after each simulated hour the planner reads what the
flow has output so far, so its decisions lag the events by whatever the flow
took (usually less than the hour). The figures are the world's ground truth:
stockout hours (open SKU-store hours with an empty shelf where the SKU has
demand), lost sales units (and those of the shoppers who would have come at
list price, which leaves out the extra shoppers a markdown brings), units
transferred, end-of-season leftover stock.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.suggestions import SUGGESTION_TYPES
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.merchandising import build_flow
from omnistream.settings import Settings
from sim.season import DAY_S, Planner, SeasonPlan, SeasonWorld

RESULTS = Path(__file__).resolve().parent / "results" / "merchandising.json"
# A Tuesday well in the past: the flow refuses events dated ahead of the wall clock (`OMNISTREAM_MAX_FUTURE_S`),
# so every day of a season of `--days` must be before today.
START = datetime(2025, 9, 2, tzinfo=UTC).timestamp()
BATCH = 20  # events per flow batch: about an hour of the season (the flow reviews at steps of event time)
ARMS = {"baseline": (False, False), "transfers": (True, False), "transfers+markdowns": (True, True)}


def settings_for(plan: SeasonPlan) -> Settings:
    """The flow's settings: defaults, plus the season's end (markdowns need it). Nothing connects anywhere."""
    season_end = datetime.fromtimestamp(START + plan.days * DAY_S, UTC)
    return Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", merch_season_end=season_end)


class _Feed:
    """The flow's input, hour by hour; before each hour the planner reads the flow's output so far."""

    def __init__(self, world: SeasonWorld, planner: Planner, out: list[Any], settings: Settings) -> None:
        self.world, self.planner, self.out, self.settings = world, planner, out, settings
        self.offsets: dict[Topic, int] = {}
        self.read = 0
        self.suggestions = 0
        self.seen_after_h: list[float] = []  # per suggestion: hours from its event time to the planner reading it

    def _record(self, topic: Topic, event: dict[str, Any]) -> KafkaRecord:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return KafkaRecord(self.settings.topic(topic), 0, offset, orjson.dumps(event), None)

    def __iter__(self) -> Iterator[KafkaRecord]:
        world = self.world
        for event in world.opening():
            yield self._record(Topic.CATALOG if event["type"] == "product_upsert" else Topic.INVENTORY, event)
        for h in range(world.plan.days * 24):
            new = [r for r in self.out[self.read :] if type(r) in SUGGESTION_TYPES]
            self.read = len(self.out)
            self.suggestions += len(new)
            ts = world.start_ts + h * 3600.0
            self.seen_after_h += [(ts - datetime.fromisoformat(r.ts).timestamp()) / 3600.0 for r in new]
            records = [msgspec.to_builtins(r) for r in new]
            for record, suggestion in zip(records, new, strict=True):
                record["kind"] = suggestion.kind
            for topic, event in self.planner.act(ts, records):
                yield self._record(topic, event)
            for topic, event in world.hour(h):
                yield self._record(topic, event)


def run_arm(plan: SeasonPlan, seed: int, transfers: bool, markdowns: bool) -> dict[str, Any]:
    settings = settings_for(plan)
    world = SeasonWorld(plan, seed, START)
    planner = Planner(world, settings.merch.lead_time_days * DAY_S, transfers, markdowns)
    out: list[Any] = []
    feed = _Feed(world, planner, out, settings)
    started = time.perf_counter()
    run_main(build_flow(settings, "bench", source=TestingSource(feed, batch_size=BATCH), sink=TestingSink(out)))
    elapsed = time.perf_counter() - started
    stats = world.close().as_dict()
    events = sum(feed.offsets.values())
    lags = sorted(feed.seen_after_h)
    seen = {"p50": lags[len(lags) // 2], "max": lags[-1]} if lags else {}
    return stats | {"suggestion_records": feed.suggestions, "events": events, "flow_s": round(elapsed, 2),
                    "planner_saw_suggestions_after_h": {k: round(v, 2) for k, v in seen.items()}}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    arms = result["arms"]
    rows = [
        ("stockout hours (SKU × store, open hours)", "stockout_hours"),
        ("lost sales, units", "lost_units"),
        ("lost sales of list-price demand, units", "lost_base_units"),
        ("sold, units", "sold_units"),
        ("units transferred (transfers)", "units_transferred"),
        ("markdowns applied", "markdowns"),
        ("end-of-season leftover, units", "leftover_units"),
        ("revenue", "revenue"),
    ]
    lines = ["| | " + " | ".join(arms) + " |", "|---|" + "---:|" * len(arms)]
    for label, key in rows:
        cells = []
        for arm in arms.values():
            value = arm[key]
            cells.append(f"{value:,.0f}" if key != "units_transferred" else f"{value:,} ({arm['transfers']})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--skus", type=int, default=40)
    parser.add_argument("--stores", type=int, default=6)
    args = parser.parse_args()
    shifts = tuple(args.days * k // 4 for k in (1, 2, 3))
    plan = SeasonPlan(n_skus=args.skus, n_stores=args.stores, days=args.days, shift_days=shifts)
    arms = {name: run_arm(plan, args.seed, *flags) for name, flags in ARMS.items()}
    settings = settings_for(plan)
    result = {
        "command": "python benchmarks/merchandising.py "
        f"--seed {args.seed} --days {args.days} --skus {args.skus} --stores {args.stores}",
        "seed": args.seed,
        "plan": dataclasses.asdict(plan),
        "merch_settings": settings.merch.model_dump(mode="json"),
        "arms": arms,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(table(result))


if __name__ == "__main__":
    main()
