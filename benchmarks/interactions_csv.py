"""Converts a public interaction log into the quality harness's CSV: `ts,user_or_session,item,event_type`.

Layouts:
- `retailrocket`: RetailRocket's `events.csv`
  (`timestamp,visitorid,event,itemid,transactionid`; ms timestamps; events
  `view`, `addtocart`, `transaction`);
- `generic`: any CSV with a header, columns named with `--ts-col`, `--user-col`,
  `--item-col`, `--event-col`, event names mapped with `--event-map`
  (`view=view,addtocart=cart,transaction=purchase`) and the timestamp unit
  given by `--ts-unit` (`s`, `ms` or `iso`).

Rows that do not parse, or whose event is not mapped, are skipped and counted;
output is sorted by time (stable), since the harness is prequential.

Run: `python benchmarks/interactions_csv.py events.csv interactions.csv --layout retailrocket`
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

OUTPUT_COLUMNS = ("ts", "user_or_session", "item", "event_type")
EVENT_TYPES = ("view", "cart", "purchase")


@dataclass(frozen=True)
class Layout:
    """Where the harness's four fields live in a source CSV."""

    ts_col: str
    user_col: str
    item_col: str
    event_col: str
    event_map: Mapping[str, str]
    ts_unit: str = "s"


RETAILROCKET = Layout("timestamp", "visitorid", "itemid", "event",
                      {"view": "view", "addtocart": "cart", "transaction": "purchase"}, "ms")  # fmt: skip


def parse_event_map(text: str) -> dict[str, str]:
    """`a=view,b=cart` to a mapping; raises ValueError on a target outside view|cart|purchase."""
    mapping: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        source, sep, target = pair.partition("=")
        if not sep or target.strip() not in EVENT_TYPES:
            raise ValueError(f"bad event mapping {pair!r}: expected source=view|cart|purchase")
        mapping[source.strip()] = target.strip()
    return mapping


def to_epoch_s(text: str, unit: str) -> float:
    text = text.strip()
    if unit == "ms":
        return float(text) / 1000.0
    if unit == "s":
        return float(text)
    if unit == "iso":
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    raise ValueError(f"unknown timestamp unit {unit!r}")


def convert(source: Path, target: Path, layout: Layout) -> dict[str, int]:
    """Write `target` from `source`; returns counts of rows written and skipped."""
    rows: list[tuple[float, str, str, str]] = []
    skipped = 0
    with source.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                event_type = layout.event_map.get(row[layout.event_col].strip())
                user, item = row[layout.user_col].strip(), row[layout.item_col].strip()
                ts = to_epoch_s(row[layout.ts_col], layout.ts_unit)
            except (KeyError, ValueError, AttributeError):
                skipped += 1
                continue
            if event_type is None or not user or not item:
                skipped += 1
                continue
            rows.append((ts, user, item, event_type))
    rows.sort(key=lambda r: r[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        for ts, user, item, event_type in rows:
            writer.writerow((f"{ts:.3f}", user, item, event_type))
    return {"written": len(rows), "skipped": skipped}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert an interaction log to ts,user_or_session,item,event_type")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--layout", choices=("retailrocket", "generic"), default="retailrocket")
    parser.add_argument("--ts-col", default="ts")
    parser.add_argument("--user-col", default="user_id")
    parser.add_argument("--item-col", default="item_id")
    parser.add_argument("--event-col", default="event_type")
    parser.add_argument("--event-map", default="view=view,cart=cart,purchase=purchase")
    parser.add_argument("--ts-unit", choices=("s", "ms", "iso"), default="s")
    args = parser.parse_args(argv)
    if args.layout == "retailrocket":
        layout = RETAILROCKET
    else:
        try:
            event_map = parse_event_map(args.event_map)
        except ValueError as ex:
            parser.error(str(ex))
        layout = Layout(args.ts_col, args.user_col, args.item_col, args.event_col, event_map, args.ts_unit)
    counts = convert(args.source, args.target, layout)
    print(f"{counts['written']} interactions written to {args.target}, {counts['skipped']} rows skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
