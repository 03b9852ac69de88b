"""Prints the inventory benchmark's table (markdown, as in docs/benchmark-history.md) from its results JSON.

Run: `python benchmarks/report.py [RESULTS_JSON]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

RESULTS = Path(__file__).resolve().parent / "results" / "inventory.json"


def _window(lag: dict) -> str:  # type: ignore[type-arg]
    return f" for {lag['offered_s']:.0f} s" if "offered_s" in lag else ""


def inventory_table(result: dict) -> str:  # type: ignore[type-arg]
    raw = result["raw_ceiling_events_per_s"]
    one, two = result["flow_1_process"]["events_per_s"], result["flow_2_processes"]["events_per_s"]
    live, lag, low = result["live_sustained_events_per_s"], result["lag"], result["lag_low_rate"]
    alone = result.get("lag_broker_alone")
    inv, bare = result["api"]["inventory_route"], result["api"]["bare_route"]
    rows = [
        ("(a) raw ceiling: confluent-kafka consume + orjson, same events", f"{raw:,.0f} ev/s", "1.00"),
        ("(b) inventory flow, Kafka → Redis, 1 process", f"{one:,.0f} ev/s", f"{one / raw:.2f}"),
        ("(b) inventory flow, 2 processes × 1 worker", f"{two:,.0f} ev/s",
         f"{two / raw:.2f} ({two / 2 / raw:.2f} per worker)"),
        ("(c) flow while the producer publishes flat out beside it (same 2 cores)", f"{live:,.0f} ev/s",
         f"{live / raw:.2f}"),
        (f"(c) end-to-end lag at {lag['offered_rate']:,.0f} ev/s (half of the above){_window(lag)}, p50 / p99",
         f"{lag['p50_ms']:.1f} / {lag['p99_ms']:.1f} ms", ""),
        *([("(c) the same load and probes through the broker alone, no flow (published → consumed), p50 / p99",
            f"{alone['p50_ms']:.1f} / {alone['p99_ms']:.1f} ms", "")] if alone else []),
        (f"(c) end-to-end lag at {low['offered_rate']:,.0f} ev/s{_window(low)}, p50 / p99",
         f"{low['p50_ms']:.1f} / {low['p99_ms']:.1f} ms", ""),
        ("(d) `GET /v1/inventory/{sku}`, 1 worker: max", f"{inv['max']['rate']:,.0f} req/s",
         f"{inv['max']['rate'] / bare['max']['rate']:.2f} of bare"),
        ("(d) bare FastAPI route returning the Redis hash (HGETALL): max", f"{bare['max']['rate']:,.0f} req/s", "1.00"),
        (f"(d) `GET /v1/inventory/{{sku}}` at {inv['half_load']['offered_rate']:,.0f} req/s, p50 / p99",
         f"{inv['half_load']['p50_ms']:.2f} / {inv['half_load']['p99_ms']:.2f} ms", ""),
        (f"(d) bare route at {bare['half_load']['offered_rate']:,.0f} req/s, p50 / p99",
         f"{bare['half_load']['p50_ms']:.2f} / {bare['half_load']['p99_ms']:.2f} ms", ""),
    ]  # fmt: skip
    lines = ["| measure | result | ratio |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    machine = result["machine"]
    lines.append("")
    batching = f"; load offered in batches of up to {result['load_linger_ms']} ms" if "load_linger_ms" in result else ""
    lines.append(f"{result['events']:,} simulated events; {machine['cpus']} cores, Python {machine['python']}"
                 f"{batching}; run {result['when']} with `{result['command'].strip()}`.")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(inventory_table(orjson.loads(path.read_bytes())))
