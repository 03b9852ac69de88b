"""Loyalty and attribution: events/s per worker, redemption decision latency, and the endpoints' p99 at half load.

(a) Throughput of each flow's logic: the deployed `build_flow` (flows/loyalty.py, flows/attribution.py)
    driven in process by Bytewax's testing source over the simulator's traffic (its input topics only),
    one worker, records collected by the testing sink: events/s = records / wall seconds (median of runs).
(b) The same flows live: the simulator's traffic in the broker, each flow run to the end of it as its own
    process with the real Redis/Kafka sink; events/s over the run less an empty run's start-up.
(c) Redemption decision latency: a live loyalty flow and API; members with spendable points;
    `POST /v1/loyalty/{id}/redemptions` one after another (a few in flight), each timed from sending the
    request to its answer, which the API gives once the flow's decision is readable in Redis (201/409).
(d) `GET /v1/loyalty/{id}` and `GET /v1/attribution` (last non-direct and Markov, by campaign): the most
    the API answers (closed loop), then p50/p99 at half that rate (open loop), `benchmarks/http_load.py`.

Run: `python benchmarks/loyalty.py` (about 3 minutes); writes benchmarks/results/loyalty.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from bytewax.testing import TestingSink, TestingSource, run_main
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.flow_runs import run_to_end
from benchmarks.inventory import api_figures, api_headers, start_api
from benchmarks.run_files import logs_shown_on_failure, write_results
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.launcher import start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import LocalService, start_broker, start_redis
from sim.publish import KafkaPublisher
from sim.record import SimRecord
from sim.workload import Workload
from state import keys

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "loyalty.json"
console = Console()
DAY = 86_400.0


def sim_records(n: int, seed: int = 5) -> list[SimRecord]:
    workload = Workload(seed=seed, n_skus=2000, n_stores=10, n_warehouses=2, n_users=5000, events_per_s=20.0)
    return list(workload.records(n))


def in_process(flow: str, records: list[SimRecord], runs: int) -> dict[str, Any]:
    """(a) events/s of one worker running the flow's dataflow in process (median of `runs`)."""
    module = import_module(f"flows.{flow}")
    settings = Settings()
    offsets: dict[Topic, int] = {}
    batch = []
    for r in records:
        if r.topic in module.INPUT_TOPICS:
            offsets[r.topic] = offsets.get(r.topic, -1) + 1
            batch.append(KafkaRecord(settings.topic(r.topic), 0, offsets[r.topic], r.value))
    rates = []
    for _ in range(runs):
        out: list[Any] = []
        started = time.perf_counter()
        run_main(module.build_flow(settings, source=TestingSource(batch, batch_size=5000), sink=TestingSink(out)))
        rates.append(len(batch) / (time.perf_counter() - started))
    return {"events": len(batch), "events_per_s_per_worker": round(statistics.median(rates)),
            "runs": [round(r) for r in rates]}  # fmt: skip


def _topics(base: Settings, prefix: str, workdir: Path) -> Settings:
    settings = base.model_copy(update={"topic_prefix": prefix, "recovery_dir": workdir / prefix})
    create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
    return settings


def live(flow: str, base: Settings, workdir: Path, records: list[SimRecord]) -> dict[str, Any]:
    """(b) the flow as deployed, run to the end of the published traffic; start-up measured apart."""
    module = import_module(f"flows.{flow}")
    empty = _topics(base, f"{flow}-empty.", workdir)
    startup_s = min(run_to_end(flow, empty, workdir / f"{flow}-empty.log").wall_s for _ in range(2))
    settings = _topics(base, f"{flow}-live.", workdir)
    mine = [r for r in records if r.topic in module.INPUT_TOPICS]
    KafkaPublisher(settings.kafka.brokers).publish(iter(mine), {t: settings.topic(t) for t in Topic})
    total_s = run_to_end(flow, settings, workdir / f"{flow}-live.log").wall_s
    return {"events": len(mine), "startup_s": round(startup_s, 2), "run_s": round(total_s, 2),
            "events_per_s_per_worker": round(len(mine) / max(1e-9, total_s - startup_s))}  # fmt: skip


def _sale(n: int, customer: str, ts: float) -> SimRecord:
    body = {"event_id": f"bench-sale-{n}", "type": "sale", "ts": rfc3339_ms(ts), "schema_version": 1,
            "store_id": "STORE-01", "register_id": "R1", "cashier_id": "K1", "txn_id": f"BENCH-{n}",
            "currency": "USD", "customer_id": customer, "items": [{"sku": "SKU-1", "qty": 1, "unit_price": 500.0}],
            "total": 500.0, "payment": {"method": "cash"}}  # fmt: skip
    return SimRecord(Topic.POS, b"STORE-01", orjson.dumps(body))


def redemptions(base: Settings, workdir: Path, members: int, requests: int, in_flight: int,
                duration_s: float) -> dict[str, Any]:  # fmt: skip
    """(c) and (d): a live loyalty flow and API, members with points; decision latency, then endpoint load."""
    settings = _topics(base, "redeem.", workdir)
    now = time.time()
    # Every member earns 500 points 60 days ago (spendable now); a last sale today moves event time on.
    sales = [_sale(i, f"M-{i:05d}", now - 60 * DAY) for i in range(members)] + [_sale(members, "M-CLOCK", now)]
    KafkaPublisher(settings.kafka.brokers).publish(iter(sales), {t: settings.topic(t) for t in Topic})
    log = (workdir / "loyalty-live.log").open("wb")
    run = start_flow("loyalty", settings, stdout=log, stderr=log)
    client = redis.Redis.from_url(settings.redis.url)
    deadline = time.monotonic() + 120
    while client.hget(keys.loyalty_member(f"M-{members - 1:05d}"), keys.DOC_FIELD) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the loyalty flow did not write its members in 120 s")
        time.sleep(0.1)
    time.sleep(1.0)
    proc, port = start_api("serving.app:create_app", settings)
    base_url = f"http://127.0.0.1:{port}"
    auth = api_headers(settings)
    try:

        def post(i: int) -> tuple[float, int]:
            with httpx.Client(timeout=10.0) as http:
                started = time.perf_counter()
                answer = http.post(f"{base_url}/v1/loyalty/M-{i % members:05d}/redemptions",
                                   headers={"Idempotency-Key": f"bench-{i}", **auth}, json={"points": 1})  # fmt: skip
                return time.perf_counter() - started, answer.status_code

        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(post, range(requests, requests + 20)))  # warm-up: connections, first batches
            timed = list(pool.map(post, range(requests)))
        latencies = sorted(t for t, _ in timed)
        statuses: dict[int, int] = {}
        for _, status in timed:
            statuses[status] = statuses.get(status, 0) + 1
        decision = {
            "requests": requests,
            "in_flight": in_flight,
            "statuses": statuses,
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
            "max_ms": round(latencies[-1] * 1000, 2),
        }
        # Attribution days to read: the flow's documents for the simulated days (written by `attribution_days`).
        member_paths = [f"/v1/loyalty/M-{i:05d}" for i in range(members)]
        endpoints = {"GET /v1/loyalty/{id}": api_figures(port, member_paths, duration_s, 16, auth)}
        for model in ("last_non_direct", "markov"):
            path = f"/v1/attribution?model={model}&by=campaign&from=2026-11-20&to=2026-11-30"
            endpoints[f"GET /v1/attribution {model}"] = api_figures(port, [path], duration_s, 16, auth)
        return {"decision": decision, "endpoints": endpoints}
    finally:
        proc.terminate()
        proc.wait(10)
        run.stop()
        log.close()


def attribution_days(settings: Settings, workdir: Path, records: list[SimRecord]) -> None:
    """Fill Redis with the attribution flow's day documents of the simulated traffic, for (d)."""
    module = import_module("flows.attribution")
    target = _topics(settings, "redeem.", workdir)
    mine = [r for r in records if r.topic in module.INPUT_TOPICS]
    KafkaPublisher(target.kafka.brokers).publish(iter(mine), {t: target.topic(t) for t in Topic})
    run_to_end("attribution", target, workdir / "attribution-days.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="simulated records for (a) and (b)")
    parser.add_argument("--runs", type=int, default=3, help="in-process runs per flow (median)")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--requests", type=int, default=400, help="timed redemptions")
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each endpoint load phase")
    parser.add_argument("--skip", nargs="*", default=[], choices=["in_process", "live", "api"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    records = sim_records(args.events)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python benchmarks/loyalty.py " + " ".join(sys.argv[1:]),
    }
    if "in_process" not in args.skip:
        for flow in ("loyalty", "attribution"):
            console.print(f"(a) {flow}: in process over {args.events:,} simulated records ...")
            results[f"{flow}_in_process"] = in_process(flow, records, args.runs)
    broker: LocalService = start_broker()
    store: LocalService = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-loyalty-bench-"))
    try:
        with logs_shown_on_failure(workdir, console):
            base = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_partitions=4,
                            recovery_dir=workdir, flow_metrics_port=0, snapshot_interval_s=30.0)  # fmt: skip
            if "live" not in args.skip:
                for flow in ("loyalty", "attribution"):
                    console.print(f"(b) {flow}: live, run to the end of the traffic ...")
                    results[f"{flow}_live"] = live(flow, base, workdir, records)
            if "api" not in args.skip:
                console.print("(c, d) redemption decisions and endpoints ...")
                attribution_days(base, workdir, records)
                results.update(redemptions(base, workdir, args.members, args.requests, args.in_flight, args.seconds))
    finally:
        broker.stop()
        store.stop()
    write_results(args.out, results)
    table = Table(title="loyalty and attribution")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for flow in ("loyalty", "attribution"):
        for mode in ("in_process", "live"):
            if f"{flow}_{mode}" in results:
                table.add_row(f"{flow} {mode.replace('_', ' ')}: events/s per worker",
                              f"{results[f'{flow}_{mode}']['events_per_s_per_worker']:,}")  # fmt: skip
    if "decision" in results:
        d = results["decision"]
        table.add_row("redemption POST -> decided: p50 / p99", f"{d['p50_ms']} / {d['p99_ms']} ms")
        for name, figures in results["endpoints"].items():
            half = figures["half_load"]
            table.add_row(f"{name}: max req/s", f"{figures['max']['rate']:,.0f}")
            table.add_row(f"{name}: p50 / p99 at {half['offered_rate']:,.0f} req/s",
                          f"{half['p50_ms']} / {half['p99_ms']} ms")  # fmt: skip
    console.print(table)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
