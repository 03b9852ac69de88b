"""Scaling benchmark: the inventory flow on 1, 2 and 4 processes, and the API on 1, 2 and 4 workers.

(a) Flow: one workload (`sim.workload`, the stock topics) is published once to 4
    partitions; the flow then reads it to the end on 1, 2 and 4 processes of one
    worker each (`flows.launcher`, a Bytewax cluster over loopback), each run into
    its own Redis database from fresh recovery partitions. Reported: events/s over
    the run's working time (first Redis write to exit: start-up is not
    throughput), the CPU seconds per event of the flow processes (and how much of
    it is start-up and shutdown, measured by a run with nothing to read), of Redis
    and of the broker, and whether the three runs left identical stock (key by key,
    lineage aside). The CPU figures give the model the README projects from:
    with a core per flow process, n processes sustain about n / (flow work CPU per
    event at n, start-up taken out), until Redis (one core) or the broker saturates.
(b) API: `omnistream serve --workers n` (uvicorn worker processes on one port) and
    the bare FastAPI + Redis route (`benchmarks/bare_app.py`) with the same workers:
    the most requests/s on `GET /v1/inventory/{sku}` (closed loop), p99 at half of
    that (open loop), and the route's fraction of the bare one.

The load generator, Redis, the broker and the measured processes share this
machine's cores: the table says how many there were.

Run: `python benchmarks/scaling.py` (`--skip-api`, `--skip-flow`); results go to
`benchmarks/results/scaling.json` and tables are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.inventory import api_figures, api_headers
from events.stock import LocationStock, SkuStock
from events.topics import Topic
from flows.launcher import settings_env, start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import free_port, start_broker, start_redis
from sim.publish import KafkaPublisher
from sim.workload import Workload
from state import keys
from state.stock_writer import StockWriter

RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"
STOCK_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)
ROOT = Path(__file__).resolve().parent.parent


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_cpu_s(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def stock_hashes(url: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every stock hash, lineage (`generation`) aside: what two runs of the same log must agree on."""
    client = redis.Redis.from_url(url)
    found: dict[bytes, dict[bytes, bytes]] = {}
    for key in client.scan_iter(match=keys.stock("*"), count=1000):
        fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
        fields.pop(keys.GENERATION_FIELD.encode(), None)
        found[key] = fields
    return found


def idle_cpu_s(settings: Settings, processes: int) -> float:
    """CPU seconds `processes` flow processes spend starting and stopping with nothing to read."""
    idle = settings.model_copy(update={
        "topic_prefix": f"idle{processes}.", "processes": processes, "workers": 1, "flow_stop_at_end": True,
        "recovery_dir": Path(tempfile.mkdtemp(prefix=f"omnistream-idle-{processes}-")),
        "recovery_partitions": processes,
    })  # fmt: skip
    create_topics(idle.kafka.brokers, idle.topic.prefix, idle.topic.partitions)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if start_flow("inventory", idle, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait(600) != 0:
        raise RuntimeError("the idle flow run failed")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def flow_run(settings: Settings, processes: int, db: int, broker_pid: int, events: int) -> dict[str, Any]:
    url = settings.redis.url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    run_settings = settings.model_copy(update={
        "redis_url": url, "processes": processes, "workers": 1, "flow_stop_at_end": True,
        "recovery_dir": Path(tempfile.mkdtemp(prefix=f"omnistream-scale-{processes}-")),
        "recovery_partitions": max(processes, 1),
    })  # fmt: skip
    first_write: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if client.dbsize() > 0:
                first_write.append(time.monotonic())
                return
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    redis_before, broker_before = _redis_cpu_s(client), _proc_cpu_s(broker_pid)
    started = time.monotonic()
    run = start_flow("inventory", run_settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    code = run.wait(1800)
    ended = time.monotonic()
    done.set()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise RuntimeError(f"the flow on {processes} processes exited with {code}")
    work_s = ended - (first_write[0] if first_write else started)
    flow_cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    return {
        "processes": processes,
        "wall_s": round(ended - started, 2),
        "work_s": round(work_s, 2),
        "events_per_s": round(events / work_s),
        "flow_cpu_us_per_event": round(1e6 * flow_cpu / events, 1),
        # Start-up and shutdown (imports, Bytewax, clients) are not per-event work: measured apart and taken out.
        "flow_startup_cpu_s": round(idle_s := idle_cpu_s(settings, processes), 2),
        "flow_work_cpu_us_per_event": round(1e6 * max(flow_cpu - idle_s, 0.0) / events, 1),
        "redis_cpu_us_per_event": round(1e6 * (_redis_cpu_s(client) - redis_before) / events, 1),
        "broker_cpu_us_per_event": round(1e6 * (_proc_cpu_s(broker_pid) - broker_before) / events, 1),
        "state": stock_hashes(url),
    }


def flow_scaling(events: int, counts: list[int]) -> dict[str, Any]:
    redis_svc, broker = start_redis(), start_broker()
    try:
        settings = Settings(kafka_brokers=broker.address, redis_url=redis_svc.address, topic_prefix="scale.",
                            topic_partitions=4, flow_metrics_port=0, snapshot_interval_s=30.0)  # fmt: skip
        create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
        workload = Workload(seed=3, n_skus=2000, n_stores=20, n_warehouses=3, n_users=5000, hold_share=0.0)
        records = [r for r in workload.records(int(events * 1.03)) if r.topic in STOCK_TOPICS][:events]
        KafkaPublisher(settings.kafka.brokers).publish(records, {t: settings.topic(t) for t in Topic})
        assert broker.proc is not None
        runs = [flow_run(settings, n, db, broker.proc.pid, len(records)) for db, n in enumerate(counts, start=1)]
    finally:
        broker.stop()
        redis_svc.stop()
    reference = runs[0].pop("state")
    for run in runs[1:]:
        state = run.pop("state")
        run["identical_state"] = state == reference
        run["differing_keys"] = sum(1 for k in reference.keys() | state.keys() if reference.get(k) != state.get(k))
    runs[0]["identical_state"], runs[0]["differing_keys"] = True, 0
    base = runs[0]["events_per_s"]
    for run in runs:
        run["speedup"] = round(run["events_per_s"] / base, 2)
        # The model: a core per process, each costing its measured CPU per event; Redis (one thread) and the
        # broker cap it. n / flow CPU is what n processes could sustain if nothing else competed for cores.
        flow_limit = 1e6 * run["processes"] / run["flow_work_cpu_us_per_event"]
        redis_limit = 1e6 / max(run["redis_cpu_us_per_event"], 1e-3)
        run["projected_events_per_s"] = round(min(flow_limit, redis_limit))
    for run in runs:
        run["projected_speedup"] = round(run["projected_events_per_s"] / runs[0]["projected_events_per_s"], 2)
    return {"events": len(records), "keys": len(reference), "runs": runs}


def start_server(command: list[str], settings: Settings, probe: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, **settings_env(settings), "OMNISTREAM_API_PORT": str(port), "OMNISTREAM_API_HOST": "127.0.0.1"}
    proc = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{command} did not start")


def api_scaling(counts: list[int], duration_s: float, connections: int) -> list[dict[str, Any]]:
    redis_svc = start_redis()
    try:
        settings = Settings(redis_url=redis_svc.address, kafka_brokers=f"127.0.0.1:{free_port()}",
                            flow_metrics_port=0, api_redis_timeout_ms=200)  # fmt: skip
        skus = [f"SKU-{n:05d}" for n in range(2000)]
        StockWriter(redis.Redis.from_url(redis_svc.address), "bench").write_batch(
            SkuStock(sku, 1, 1.0, tuple(LocationStock(f"S{loc}", 10, 2, 1.0) for loc in range(8))) for sku in skus
        )
        headers = api_headers(settings, "storefront")
        rows = []
        for workers in counts:
            row: dict[str, Any] = {"workers": workers}
            servers = {
                "inventory_route": ([sys.executable, "-m", "omnistream.cli", "serve", "--workers", str(workers)],
                                    "/v1/inventory/", "/healthz"),
                "bare_route": ([sys.executable, "-m", "uvicorn", "--factory", "benchmarks.bare_app:create_app",
                                "--workers", str(workers), "--no-access-log", "--log-level", "warning",
                                "--host", "127.0.0.1"], "/bare/", "/docs"),
            }  # fmt: skip
            for name, (command, prefix, probe) in servers.items():
                proc, port = start_server(command, settings, probe)
                try:
                    figures = api_figures(port, [prefix + sku for sku in skus], duration_s, connections, headers)
                finally:
                    proc.terminate()
                    proc.wait(20)
                peak, half = figures["max"], figures["half_load"]
                row[name] = {"max_rps": round(peak["rate"]), "p99_ms_at_half": half["p99_ms"],
                             "errors": peak["errors"] + half["errors"]}  # fmt: skip
            row["fraction_of_bare"] = round(row["inventory_route"]["max_rps"] / row["bare_route"]["max_rps"], 2)
            rows.append(row)
        return rows
    finally:
        redis_svc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--api-seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-flow", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    console = Console(width=170)
    result: dict[str, Any] = {
        "benchmark": "scaling",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]),
    }
    if not args.skip_flow:
        flow = result["flow"] = flow_scaling(args.events, args.processes)
        table = Table(title=f"Inventory flow, {flow['events']:,} events, {os.cpu_count()} cores")
        for column in ("processes", "events/s", "speedup", "flow CPU µs/event", "of which start-up",
                       "Redis CPU µs/event", "broker CPU µs/event", "same state", "projected events/s",
                       "projected speedup"):  # fmt: skip
            table.add_column(column, justify="right")
        for run in flow["runs"]:
            startup_us = run["flow_cpu_us_per_event"] - run["flow_work_cpu_us_per_event"]
            table.add_row(str(run["processes"]), f"{run['events_per_s']:,}", f"{run['speedup']:.2f}x",
                          f"{run['flow_cpu_us_per_event']}", f"{startup_us:.1f}", f"{run['redis_cpu_us_per_event']}",
                          f"{run['broker_cpu_us_per_event']}", "yes" if run["identical_state"] else "NO",
                          f"{run['projected_events_per_s']:,}", f"{run['projected_speedup']:.2f}x")  # fmt: skip
        console.print(table)
    if not args.skip_api:
        rows = result["api"] = api_scaling(args.workers, args.api_seconds, args.connections)
        table = Table(title=f"GET /v1/inventory/{{sku}} by uvicorn workers, {os.cpu_count()} cores")
        for column in ("workers", "route max req/s", "route p99 ms at half", "bare max req/s", "bare p99 ms at half",
                       "fraction of bare"):  # fmt: skip
            table.add_column(column, justify="right")
        for row in rows:
            route, bare = row["inventory_route"], row["bare_route"]
            table.add_row(str(row["workers"]), f"{route['max_rps']:,}", f"{route['p99_ms_at_half']}",
                          f"{bare['max_rps']:,}", f"{bare['p99_ms_at_half']}",
                          f"{row['fraction_of_bare']:.2f}")  # fmt: skip
        console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
