"""Recommendation benchmark: flow throughput, view-to-recommendation freshness, API against a bare route, soak.

Everything runs in one go on private services (a fresh in-memory Tansu broker
and a diskless redis-server on free ports); comparisons are against baselines
measured in the same run (docs/performance.md):

(a) flow throughput: the recommend flow over a clickstream backlog, 1
    process x 1 worker, events/s from its first Redis write to its exit;
(b) freshness: with the flow tailing and clickstream offered at a fixed
    rate, a probe view of a fresh session is published and timed until
    that session's profile (what its next recommendation reads, with no
    cache between) is written in Redis; p50/p99;
(c) `GET /v1/recommendations` on one API worker: maximum requests/s (closed
    loop) and p50/p99 at half that rate (open loop), beside the bare FastAPI
    route doing one HGETALL (benchmarks/bare_app.py), alternating rounds;
(d) soak: N million clickstream events over a catalog that keeps growing
    (new SKUs appear and are upserted throughout), the flow's resident memory
    (VmRSS of /proc/PID/status) sampled against `rec_soak_rss_budget_mb`;
(e) `--only cpu`: the flow's CPU per clickstream event in process (no broker,
    no Redis: Bytewax's testing source and sink, the `benchmarks/cpu_ab.py`
    child), with the session-kNN lists off and on, and on in the checkout of
    `--other DIR` (the code before a change), alternating round by round: on
    a shared machine the only figure two variants compare by.

The clickstream comes from a small generator here (sessions of a few views,
some carts and orders, skewed popularity, a growing catalog) rather than the
simulator, whose catalog is fixed.

Run: `python benchmarks/recommend.py` (`--soak-events 5000000` for the full
soak); results go to `benchmarks/results/recommend.json`.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import redis
from confluent_kafka import Producer
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cpu_ab import CHILD_IMPORTS, CHILD_RECORDS, CHILD_RUN, run_child
from benchmarks.inventory import api_figures, api_headers, median_run, start_api
from benchmarks.keyspace import KeyWrites
from events.stock import LocationStock, SkuStock
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.launcher import FlowRun, start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import LocalService, start_broker, start_redis
from sim.publish import KafkaPublisher
from sim.record import SimRecord
from sim.workload import Workload
from state import keys
from state.stock_writer import StockWriter

RESULTS = Path(__file__).resolve().parent / "results" / "recommend.json"
LOCATIONS = [f"STORE-{n:02d}" for n in range(1, 11)] + ["WH-01", "WH-02"]
console = Console()
Record = tuple[Topic, bytes | None, bytes]


class Clickstream:
    """A deterministic clickstream over a catalog that grows, with its catalog upserts interleaved.

    `concurrent` sessions are open at a time; each lasts a geometric number of
    events (mean `session_events`); half belong to known users. Popularity is
    skewed (a cube of a uniform draw), and each SKU's category is fixed.
    Event time advances `1 / events_per_s` per event.

    Parameters
    ----------
    n_skus
        SKUs at the start.
    growth
        New SKUs per event (0.02: a new SKU every 50 events).
    """

    def __init__(self, seed: int = 7, n_skus: int = 5_000, growth: float = 0.0, concurrent: int = 2_000,
                 session_events: float = 8.0, events_per_s: float = 1_000.0, start_ts: float | None = None,
                 n_categories: int = 200) -> None:  # fmt: skip
        self.seed = seed
        self.n_skus = n_skus
        self.growth = growth
        self.concurrent = concurrent
        self.session_events = session_events
        self.events_per_s = events_per_s
        self.start_ts = time.time() - 86_400.0 if start_ts is None else start_ts
        self.n_categories = n_categories

    def catalog(self, first: int, last: int, ts: float) -> Iterator[Record]:
        for n in range(first, last):
            sku = f"SKU-{n:07d}"
            body = {"event_id": f"p-{n}", "type": "product_upsert", "ts": rfc3339_ms(ts), "schema_version": 1,
                    "sku": sku, "name": sku, "category": f"cat-{n % self.n_categories}", "price": 9.5}  # fmt: skip
            yield Topic.CATALOG, sku.encode(), orjson.dumps(body)

    def records(self, n_events: int) -> Iterator[Record]:
        rng = random.Random(self.seed)
        sessions = [self._new_session(rng, i) for i in range(self.concurrent)]
        next_session = self.concurrent
        universe = self.n_skus
        yield from self.catalog(0, universe, self.start_ts)
        end_probability = 1.0 / self.session_events
        for i in range(n_events):
            ts = self.start_ts + i / self.events_per_s
            grown = self.n_skus + int(i * self.growth)
            if grown > universe:
                yield from self.catalog(universe, grown, ts)
                universe = grown
            slot = rng.randrange(self.concurrent)
            session_id, user_id = sessions[slot]
            sku = f"SKU-{int(universe * rng.random() ** 3):07d}"
            roll = rng.random()
            base = {"event_id": f"c-{self.seed}-{i}", "ts": rfc3339_ms(ts), "schema_version": 1,
                    "session_id": session_id, "user_id": user_id, "channel": "web" if slot % 3 else "app"}  # fmt: skip
            if roll < 0.85:
                body = {**base, "type": "product_view", "sku": sku}
            elif roll < 0.95:
                body = {**base, "type": "add_to_cart", "sku": sku, "qty": 1}
            elif roll < 0.98:
                body = {**base, "type": "page_view", "path": "/"}
            else:
                body = {**base, "type": "purchase", "order_id": f"o-{i}", "total": 9.5, "currency": "EUR",
                        "items": [{"sku": sku, "qty": 1, "unit_price": 9.5}],
                        "fulfilment_location_id": LOCATIONS[i % len(LOCATIONS)],
                        "payment": {"method": "wallet"}}  # fmt: skip
            yield Topic.CLICKSTREAM, (user_id or session_id).encode(), orjson.dumps(body)
            if rng.random() < end_probability:
                sessions[slot] = self._new_session(rng, next_session)
                next_session += 1

    @staticmethod
    def _new_session(rng: random.Random, n: int) -> tuple[str, str | None]:
        return f"sess-{n}", (f"user-{rng.randrange(1_000_000)}" if rng.random() < 0.5 else None)


def simulated_clickstream(n_events: int, seed: int, n_skus: int) -> list[Record]:
    """The simulator's clickstream (its realistic mix: ~60% product views, ~11% carts, ~2% orders, page views,
    searches, checkouts) with the catalog upserts it interleaves; `n_events` clickstream events."""
    workload = Workload(seed=seed, n_skus=n_skus, n_stores=10, n_warehouses=2)
    out: list[Record] = []
    clicks = 0
    for record in workload.records():
        if record.topic is Topic.CLICKSTREAM:
            clicks += 1
        elif record.topic is not Topic.CATALOG:
            continue
        out.append((record.topic, record.key, record.value))
        if clicks == n_events:
            break
    return out


def publish(settings: Settings, records: Iterator[Record] | list[Record], rate: float | None = None) -> int:
    publisher = KafkaPublisher(settings.kafka.brokers, {"linger.ms": 20})
    counts = publisher.publish((SimRecord(t, k, v) for t, k, v in records),
                               {t: settings.topic(t) for t in Topic}, rate=rate)  # fmt: skip
    return sum(counts.values())


def vm_rss_mb(pid: int) -> float | None:
    """Resident memory of `pid` in MiB (psutil is not installed: /proc is enough on Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children_cpu_s() -> float:
    """User + system seconds of every child process waited for so far (a finished flow run adds its own)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def flow_run(settings: Settings, n_events: int, sample_rss: bool = False) -> dict[str, Any]:
    """Run the recommend flow over the published backlog; rate from its first Redis write to its exit."""
    client = redis.Redis.from_url(settings.redis.url)
    client.flushdb()
    shutil.rmtree(settings.recovery.dir, ignore_errors=True)  # type: ignore[arg-type]
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    run = start_flow("recommend", settings.model_copy(update={"flow_stop_at_end": True}),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first_write = None
    samples: list[tuple[float, float]] = []
    last_sample = 0.0
    while run.alive():
        now = time.perf_counter()
        if first_write is None and client.dbsize() > 0:
            first_write = now
        if sample_rss and now - last_sample >= 1.0:
            rss = sum(filter(None, (vm_rss_mb(p.pid) for p in run.procs)))
            samples.append((now - started, rss))
            last_sample = now
        time.sleep(0.01)
    ended = time.perf_counter()
    code = run.wait()
    assert code == 0, f"flow exited with {code}"
    assert first_write is not None
    # CPU seconds of the flow process, start-up included: on a shared machine the wall-clock rate moves with
    # the neighbours' load, the CPU the flow spent per event much less, so two versions compare by it too.
    cpu_s = _children_cpu_s() - cpu_before
    out: dict[str, Any] = {"events_per_s": n_events / (ended - first_write), "wall_s": ended - started,
                           "startup_s": first_write - started, "cpu_s": cpu_s,
                           "events_per_cpu_s": n_events / cpu_s if cpu_s > 0 else 0.0}  # fmt: skip
    if sample_rss:
        out["rss_samples_mb"] = [(round(t, 1), round(r, 1)) for t, r in samples]
        out["rss_max_mb"] = max((r for _, r in samples), default=0.0)
    return out


CPU_CHILD = (
    CHILD_IMPORTS
    + """
from events.topics import Topic
from flows.recommend import build_flow

settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", flow_metrics_port=0,
                    rec={"knn_sessions": int(sys.argv[3])})
"""
    + CHILD_RECORDS
    + CHILD_RUN
)
"""(e)'s child: `sys.argv[3]` is `rec_knn_sessions` (0: no session-kNN lists)."""

KNN_ON = 100_000
"""`rec_knn_sessions` of the 'on' variants of (e)."""


def flow_cpu(n_events: int, n_skus: int, rounds: int, batch_size: int, other: Path | None) -> dict[str, Any]:
    """(e): clickstream events per CPU second of the flow in process, session-kNN lists off and on, alternating."""
    repo = Path(__file__).resolve().parent.parent
    variants: dict[str, tuple[Path, int]] = {"knn_off": (repo, 0), "knn_on": (repo, KNN_ON)}
    if other is not None:
        variants["other_knn_on"] = (other.resolve(), KNN_ON)
    records = simulated_clickstream(n_events, seed=7, n_skus=n_skus)
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.msgpack"
        stream.write_bytes(msgspec.msgpack.encode([(topic.value, value) for topic, _, value in records]))
        for round_ in range(rounds):
            for name, (code, knn) in variants.items():
                cpu[name].append(run_child(code, CPU_CHILD, [str(stream), str(batch_size), str(knn)]))
                console.print(f"    round {round_ + 1} {name}: {n_events / cpu[name][-1]:,.0f} events per CPU-second")
    rates = {name: [n_events / s for s in seconds] for name, seconds in cpu.items()}
    return {
        "clickstream_events": n_events,
        "records": len(records),
        "batch_size": batch_size,
        "knn_sessions_on": KNN_ON,
        "other": str(other) if other else None,
        "cpu_s": cpu,
        "events_per_cpu_s": rates,
        "median_events_per_cpu_s": {name: statistics.median(r) for name, r in rates.items()},
    }


class ProfileProbe:
    """Views of fresh sessions, timed from publication until the session's profile is written."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer({"bootstrap.servers": settings.kafka.brokers, "linger.ms": 0})
        self._topic = settings.topic(Topic.CLICKSTREAM)
        self._count = 0
        self._writes = KeyWrites(settings.redis.url, keys.rec_profile("s:PROBE-*"))

    def round_trip(self, ts: float, timeout_s: float = 60.0) -> float:
        self._count += 1
        session = f"PROBE-{self._count:06d}"
        body = orjson.dumps({"event_id": f"probe-{self._count}", "type": "product_view", "ts": rfc3339_ms(ts),
                             "schema_version": 1, "session_id": session, "channel": "web",
                             "sku": "SKU-0000001"})  # fmt: skip
        self._producer.produce(self._topic, body, key=session.encode())
        self._producer.flush(5)
        return self._writes.wait(keys.rec_profile("s:" + session), time.perf_counter(), timeout_s)


def freshness(settings: Settings, rate: float, duration_s: float, seed: int) -> dict[str, Any]:
    """(b): probes while the clickstream is offered at `rate` to a tailing flow."""
    redis.Redis.from_url(settings.redis.url).flushdb()
    shutil.rmtree(settings.recovery.dir, ignore_errors=True)  # type: ignore[arg-type]
    log_path = Path(str(settings.recovery.dir) + ".log")
    with open(log_path, "wb") as log:
        run: FlowRun = start_flow("recommend", settings, stdout=log, stderr=log)
    try:
        # Event time of the background load and of the probes: now, so both are "live".
        stream = Clickstream(seed=seed, start_ts=time.time(), events_per_s=rate)
        records = list(stream.records(int(rate * duration_s)))
        probe = ProfileProbe(settings)
        probe.round_trip(time.time(), timeout_s=120)  # start-up is not freshness
        loader = threading.Thread(target=publish, args=(settings, records, rate), daemon=True)
        loader.start()
        time.sleep(1.0)
        lags: list[float] = []
        while True:
            lags.append(probe.round_trip(time.time()))
            if not loader.is_alive():
                break
            time.sleep(0.05)
    finally:
        run.stop()
    lags.sort()
    return {"offered_rate": rate, "probes": len(lags), "p50_ms": 1000 * lags[len(lags) // 2],
            "p99_ms": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))], "max_ms": 1000 * lags[-1]}  # fmt: skip


def seed_stock(settings: Settings, n_skus: int) -> None:
    """Stock for every SKU at every location (sellable sets included), written as the inventory flow writes it."""
    writer = StockWriter(redis.Redis.from_url(settings.redis.url), generation="bench")
    batch = []
    for n in range(n_skus):
        locations = tuple(LocationStock(loc, 0 if (n + i) % 7 == 0 else 20, 0, 0.0) for i, loc in enumerate(LOCATIONS))
        batch.append(SkuStock(f"SKU-{n:07d}", 1, 0.0, locations))
        if len(batch) == 1000:
            writer.write_batch(batch)
            batch = []
    writer.write_batch(batch)


def api_comparison(settings: Settings, n_skus: int, duration_s: float, connections: int,
                   rounds: int) -> dict[str, Any]:  # fmt: skip
    """(c): the recommendations route and the bare route on one worker each, alternating rounds."""
    rng = random.Random(3)
    rec_paths = []
    for i in range(2000):
        sku = f"SKU-{int(n_skus * rng.random() ** 3):07d}"
        who = f"user_id=user-{rng.randrange(1_000_000)}" if i % 2 else f"session_id=sess-{rng.randrange(20_000)}"
        rec_paths.append(f"/v1/recommendations?{who}&sku={sku}&location_id={LOCATIONS[i % len(LOCATIONS)]}&k=10")
    bare_paths = [f"/bare/SKU-{int(n_skus * rng.random() ** 3):07d}" for _ in range(2000)]
    apps = {"recommendations_route": ("serving.app:create_app", rec_paths),
            "bare_route": ("benchmarks.bare_app:create_app", bare_paths)}  # fmt: skip
    servers = {name: start_api(app, settings) for name, (app, _) in apps.items()}
    headers = api_headers(settings, "storefront")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
    try:
        for _ in range(rounds):
            for name, (_, paths) in apps.items():
                runs[name].append(api_figures(servers[name][1], paths, duration_s, connections, headers))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)

    def median_of(name: str, phase: str, field: str) -> float:
        return float(statistics.median(run[phase][field] for run in runs[name]))

    return {
        name: {
            phase: {field: median_of(name, phase, field) for field in ("rate", "p50_ms", "p99_ms", "max_ms", "errors")}
            for phase in ("max", "half_load")
        }
        | {"rounds": runs[name]}
        for name in apps
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000, help="clickstream events of the throughput runs")
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--flow-rounds", type=int, default=3)
    parser.add_argument("--fresh-rate", type=float, default=5_000.0, help="offered clickstream events/s in (b)")
    parser.add_argument("--fresh-seconds", type=float, default=20.0)
    parser.add_argument("--api-seconds", type=float, default=8.0)
    parser.add_argument("--api-rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--soak-events", type=int, default=0, help="0 skips the soak; the issue asks for 5,000,000")
    parser.add_argument("--soak-growth", type=float, default=0.05, help="new SKUs per soak event")
    parser.add_argument("--only", choices=["flow", "fresh", "api", "soak", "cpu"], action="append")
    parser.add_argument("--cpu-events", type=int, default=100_000, help="clickstream events of (e)")
    parser.add_argument("--cpu-rounds", type=int, default=3)
    parser.add_argument("--cpu-batch", type=int, default=1_000, help="records per batch in (e)")
    parser.add_argument("--other", type=Path, default=None, help="(e): also this checkout, kNN lists on")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    parts = set(args.only or ["flow", "fresh", "api", "soak"])
    # Keyed by the parts run, so partial reruns merged into one results file keep each part's own arguments.
    run_name = "+".join(sorted(parts))
    given = {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()}
    result: dict[str, Any] = {f"run:{run_name}": {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                                                 "args": given}}  # fmt: skip
    if "cpu" in parts:
        console.print(f"(e) the flow in process, {args.cpu_events:,} clickstream events, kNN lists off / on ...")
        result["flow_cpu"] = flow_cpu(args.cpu_events, args.skus, args.cpu_rounds, args.cpu_batch, args.other)
        console.print(f"    median events per CPU-second: {result['flow_cpu']['median_events_per_cpu_s']}")
        parts.discard("cpu")
    if parts:
        _with_services(args, parts, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = orjson.loads(args.out.read_bytes()) if args.out.exists() else {}
    args.out.write_bytes(orjson.dumps(previous | result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    console.print(f"results in {args.out}")


def _with_services(args: argparse.Namespace, parts: set[str], result: dict[str, Any]) -> None:
    """(a) to (d), on a private broker and Redis."""
    broker: LocalService = start_broker()
    store: LocalService = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-recbench-"))
    try:
        base = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_prefix="rb.",
                        topic_partitions=4, recovery_dir=workdir / "recovery", flow_metrics_port=0)  # fmt: skip
        result["settings"] = {k: v for k, v in base.flat_values().items() if k.startswith("rec_")} | {
            "snapshot_interval_s": base.snapshot_interval_s,
            "kafka_batch_size": base.kafka.batch_size,
        }
        create_topics(base.kafka.brokers, base.topic.prefix, base.topic.partitions)
        if "flow" in parts:
            console.print(f"(a) publishing {args.events:,} simulated clickstream events over {args.skus:,} SKUs ...")
            records = simulated_clickstream(args.events, seed=7, n_skus=args.skus)
            n = publish(base, records)
            # The rate counts clickstream events only; the catalog upserts ride along.
            runs = [flow_run(base, args.events) for _ in range(args.flow_rounds)]
            result["flow_1x1"] = median_run(runs) | {
                "clickstream_events": args.events,
                "records": n,
                "rounds_events_per_cpu_s": [r["events_per_cpu_s"] for r in runs],
            }
            cpu_rates = sorted(r["events_per_cpu_s"] for r in runs)
            console.print(
                f"    {result['flow_1x1']['events_per_s']:,.0f} events/s per worker"
                f" ({cpu_rates[len(cpu_rates) // 2]:,.0f} events per CPU-second, median)"
            )
        if "fresh" in parts:
            console.print(f"(b) freshness at {args.fresh_rate:,.0f} events/s offered ...")
            fresh = base.model_copy(update={"topic_prefix": "rbf.", "recovery_dir": workdir / "recovery-f"})
            create_topics(fresh.kafka.brokers, fresh.topic.prefix, fresh.topic.partitions)
            result["freshness"] = freshness(fresh, args.fresh_rate, args.fresh_seconds, seed=11)
            console.print(f"    {result['freshness']}")
        if "api" in parts:
            console.print("(c) API: state from a flow run, then the route against the bare one ...")
            api = base.model_copy(update={"topic_prefix": "rba.", "recovery_dir": workdir / "recovery-a"})
            create_topics(api.kafka.brokers, api.topic.prefix, api.topic.partitions)
            publish(api, Clickstream(n_skus=args.skus, seed=5).records(min(args.events, 200_000)))
            flow_run(api, 1)
            seed_stock(api, args.skus)
            result["api"] = api_comparison(api, args.skus, args.api_seconds, args.connections, args.api_rounds)
            rec, bare = result["api"]["recommendations_route"], result["api"]["bare_route"]
            result["api"]["ratio_max_rate"] = rec["max"]["rate"] / bare["max"]["rate"]
            ratio = result["api"]["ratio_max_rate"]
            console.print(f"    rec {rec['max']['rate']:,.0f} req/s (p99 at half {rec['half_load']['p99_ms']:.1f} ms)"
                          f" vs bare {bare['max']['rate']:,.0f} req/s: {ratio:.2f}")  # fmt: skip
        if "soak" in parts and args.soak_events:
            console.print(f"(d) soak: {args.soak_events:,} events, catalog growing {args.soak_growth} SKU/event ...")
            soak = base.model_copy(update={"topic_prefix": "rbs.", "recovery_dir": workdir / "recovery-s",
                                           "topic_partitions": 4})  # fmt: skip
            create_topics(soak.kafka.brokers, soak.topic.prefix, soak.topic.partitions)
            stream = Clickstream(seed=9, n_skus=args.skus, growth=args.soak_growth)
            n = publish(soak, stream.records(args.soak_events))
            run = flow_run(soak, n, sample_rss=True)
            result["soak"] = {"events": args.soak_events, "records": n, "final_skus": args.skus + int(
                args.soak_events * args.soak_growth), "budget_mb": soak.rec.soak_rss_budget_mb,
                "within_budget": run["rss_max_mb"] < soak.rec.soak_rss_budget_mb} | run  # fmt: skip
            console.print(f"    max RSS {run['rss_max_mb']:,.0f} MiB of {soak.rec.soak_rss_budget_mb:,.0f};"
                          f" {run['events_per_s']:,.0f} events/s")  # fmt: skip
    finally:
        broker.stop()
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
