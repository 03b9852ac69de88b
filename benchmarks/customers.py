"""Customers flow benchmarks: throughput, trigger latency, memory per customer, snapshot cost, API latency.

(a) throughput: the real flow (`omnistream flow customers`, one worker) over a mixed stream in
    Kafka (the simulator's till, web and stock traffic with customer journeys and consent
    changes switched on), read to the end; start-up (an empty run) is subtracted.
(b) trigger latency: the flow running live; paced traffic stamped with the wall clock, and a
    cart left alone every few milliseconds. A cart's trigger is due at `add + cart_window_s`;
    the watermark can pass that `lateness_s` later at the earliest. Latency runs from that
    moment to the trigger's arrival at a consumer of `omni.triggers` (p50/p99), and also
    from the due time itself.
(c) memory: `CustomerShard`s (the flow's customers stage state) filled with 1M customers through
    their `apply`, as the flow feeds them; resident bytes per customer held, and what a
    snapshot of the shards costs in an epoch that touched no customer, at 1%, 10% and 100% of them.
(d) API: `GET /v1/customers/{id}` on one uvicorn worker over a Redis holding the documents:
    the most it sustains (closed loop), then p99 at half that rate (open loop).
(e) snapshots per epoch, on the production path: the flow itself (`flows.customers.build_flow`, Bytewax
    recovery on a local SQLite partition) in this process, fed till sales of `--customers` customers
    (one each, a month of event time), then epochs in which `--touched` of them buy again; per
    epoch, the keys and bytes Bytewax wrote to the recovery store for each step (`snaps` rows) and
    the CPU time of the steps' `snapshot` calls. The sink drops what the flow writes.

    python benchmarks/customers.py [--events 300000] [--customers 1000000] [--touched 1000] [--skip ...]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis
from bytewax.operators import StatefulBatchLogic
from bytewax.recovery import RecoveryConfig
from bytewax.testing import run_main
from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/customers.py` from anywhere

from benchmarks.auth import cpu_s as process_cpu_s
from benchmarks.epoch_feed import DropSink, EpochFeed, OneFeed
from benchmarks.flow_runs import run_to_end
from benchmarks.inventory import api_figures, api_headers, start_api
from benchmarks.run_files import logs_shown_on_failure, write_results
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows import customers_stages
from flows.collector import tune_for_tailing_flow
from flows.customers import build_flow
from flows.customers_stages import config_of
from flows.launcher import start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import LocalService, start_broker, start_redis
from operators.customers.clock import EventClock
from operators.customers.doc import customer_doc, segments_of
from operators.customers.lifecycle import SEGMENTS
from operators.customers.population import Population, RfmKeys
from operators.customers.records import Bought, Clicked, Due, Tick
from operators.customers.shard import CustomerShard
from operators.customers.timers import DueTimes, HourTimers, TimerClock
from sim.publish import KafkaPublisher
from sim.workload import Workload
from state import keys as state_keys
from state.customer_writer import CustomerDoc, CustomerWriter
from state.doc_writer import DocWriter, FencedDoc
from state.pipeline_scripts import run_counting

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "customers.json"
console = Console()


def _settings(base: Settings, prefix: str, workdir: Path, **customers: Any) -> Settings:
    settings = base.model_copy(update={"topic_prefix": prefix, "recovery_dir": workdir / prefix,
                                       **({"customers": customers} if customers else {})})  # fmt: skip
    create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
    return settings


def throughput(base: Settings, workdir: Path, n_events: int) -> dict[str, Any]:
    empty = _settings(base, "empty.", workdir)
    startup_s, startup_cpu_s = min(run_to_end("customers", empty, workdir / "empty.log") for _ in range(2))
    settings = _settings(base, "tput.", workdir)
    workload = Workload(seed=7, n_users=50_000, customer_journey_rate=0.05, consent_rate=0.005)
    names = {t: settings.topic(t) for t in Topic}
    published = KafkaPublisher(settings.kafka.brokers).publish(workload.records(n_events), names)
    total_s, cpu_s = run_to_end("customers", settings, workdir / "tput.log")
    read = sum(n for t, n in published.items() if t in (Topic.POS, Topic.CLICKSTREAM, Topic.CUSTOMERS))
    return {
        "records_published": {t.value: n for t, n in published.items()},
        "records_read_by_the_flow": read,
        "startup_s": round(startup_s, 3),
        "run_s": round(total_s, 3),
        "events_per_s_per_worker": round(read / max(1e-9, total_s - startup_s)),
        "events_per_s_incl_startup": round(read / total_s),
        # The machine is shared: CPU time says what the flow costs whatever else runs beside it.
        "cpu_s": round(cpu_s, 3),
        "startup_cpu_s": round(startup_cpu_s, 3),
        "events_per_cpu_s": round(read / max(1e-9, cpu_s - startup_cpu_s)),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


def trigger_latency(base: Settings, workdir: Path, rate: float, duration_s: float, lateness_s: float) -> dict[str, Any]:
    window_s = 5.0
    settings = _settings(base, f"live{round(rate)}.", workdir, cart_window_s=window_s, lateness_s=lateness_s,
                         idle_partition_s=3.0, cooldown_s=0.0)  # fmt: skip
    topic = settings.topic(Topic.TRIGGERS)
    arrivals: dict[str, float] = {}
    produced_at: dict[str, float] = {}  # the trigger message's timestamp: when the flow's sink produced it
    stop = threading.Event()

    def watch() -> None:
        consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "bench",
                             "fetch.wait.max.ms": 5})  # fmt: skip
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        while not stop.is_set():
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error():
                trigger = orjson.loads(msg.value() or b"{}")
                arrivals.setdefault(trigger["trigger_id"], time.time())
                produced_at.setdefault(trigger["trigger_id"], msg.timestamp()[1] / 1000.0)
        consumer.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    log = (workdir / f"live{round(rate)}.log").open("wb")
    run = start_flow("customers", settings, stdout=log, stderr=log)
    # librdkafka's default linger (5 ms). At 1 ms the local broker took one produce request per event or
    # two and fell behind at 2,000 events/s (2.3 s of backlog flushed after a 20-s run): the events'
    # delay on the way in, which read as the flow's trigger latency (docs/customers.md, Performance).
    producer = Producer({"bootstrap.servers": settings.kafka.brokers, "linger.ms": 5})
    clicks, pos = settings.topic(Topic.CLICKSTREAM), settings.topic(Topic.POS)
    due: dict[str, float] = {}
    rng = random.Random(3)
    n = 0
    flow_pid = run.procs[0].pid
    try:
        time.sleep(4.0)  # the flow's start-up
        idle_cpu = process_cpu_s(flow_pid)
        time.sleep(2.0)  # the flow idle: what it costs with no events
        cpu_at_start = process_cpu_s(flow_pid)
        idle_cpu_per_s = (cpu_at_start - idle_cpu) / 2.0
        started = time.time()
        while (now := time.time()) < started + duration_s:
            for _ in range(max(0, int((now - started) * rate) - n)):
                n += 1
                user = f"U{n}"
                ts = time.time()
                if n % 10 == 0:  # a cart left alone: a trigger `window_s` later
                    event = {"type": "add_to_cart", "sku": f"SKU-{rng.randrange(500)}", "qty": 1}
                    due[f"cart_abandoned:{user}:{event['sku']}:e{n}"] = ts + window_s
                elif n % 2:
                    event = {"type": "page_view", "path": "/"}
                else:
                    sale = {"event_id": f"e{n}", "type": "sale", "ts": rfc3339_ms(ts), "schema_version": 1,
                            "store_id": f"S{n % 8}", "register_id": "R", "cashier_id": "K", "txn_id": f"T{n}",
                            "currency": "EUR", "customer_id": user, "items": [{"sku": "SKU-1", "qty": 1,
                            "unit_price": 5.0}], "total": 5.0, "payment": {"method": "cash"}}  # fmt: skip
                    producer.produce(pos, orjson.dumps(sale), key=f"S{n % 8}")
                    continue
                event |= {"event_id": f"e{n}", "ts": rfc3339_ms(ts), "schema_version": 1, "session_id": f"s{n}",
                          "user_id": user, "channel": "web"}  # fmt: skip
                producer.produce(clicks, orjson.dumps(event), key=user)
            producer.poll(0)
            time.sleep(0.001)
        producer.flush(30)
        paced_s = time.time() - started
        time.sleep(window_s + 5.0)  # the last triggers, and whatever backlog the flow has left
        flow_cpu_s = process_cpu_s(flow_pid) - cpu_at_start
        flow_s = time.time() - started
    finally:
        stop.set()
        watcher.join(5)
        run.stop()
        log.close()
    measured = [(arrivals[t] - (d + lateness_s), arrivals[t] - d) for t, d in due.items() if t in arrivals
                and d < started + duration_s - 1.0]  # fmt: skip
    after_ready = sorted(m[0] for m in measured)
    after_due = sorted(m[1] for m in measured)
    # Due to produced by the flow (the message's timestamp), apart from the broker and this process's consumer.
    produced = sorted(produced_at[t] - d for t, d in due.items() if t in produced_at and d < started + duration_s - 1.0)

    def pct(values: list[float], p: float) -> float | None:
        return round(values[min(len(values) - 1, int(p * len(values)))], 4) if values else None

    expected = sum(1 for d in due.values() if d < started + duration_s - 1.0)
    # The flow process's CPU (all its threads) from the first event to the end of the tail, less what it
    # spends idle over the same time: the cost of the events themselves, per event.
    events_cpu_s = flow_cpu_s - idle_cpu_per_s * flow_s
    return {"events_per_s": rate, "duration_s": duration_s, "cart_window_s": window_s, "lateness_s": lateness_s,
            "events_sent": n, "events_per_s_sent": round(n / paced_s, 1),
            "flow_cpu_s": round(flow_cpu_s, 3), "flow_idle_cpu_s_per_s": round(idle_cpu_per_s, 4),
            "flow_cpu_ms_per_event": round(1000 * flow_cpu_s / max(1, n), 4),
            "flow_cpu_ms_per_event_less_idle": round(1000 * events_cpu_s / max(1, n), 4),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "triggers_expected": expected, "triggers_measured": len(measured),
            "after_due_plus_lateness_p50_s": pct(after_ready, 0.5),
            "after_due_plus_lateness_p99_s": pct(after_ready, 0.99),
            "after_due_p50_s": pct(after_due, 0.5), "after_due_p99_s": pct(after_due, 0.99),
            "produced_after_due_p50_s": pct(produced, 0.5),
            "produced_after_due_p99_s": pct(produced, 0.99)}  # fmt: skip


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def memory(n_customers: int, buckets: int) -> dict[str, Any]:
    """Resident bytes per customer held: customers in `buckets` `CustomerShard`s, and the timers stage's hour keys
    (`HourTimers`) holding their `Due`s, both fed through their `apply` as the flow feeds them (a bucket hears
    the watermark when it is woken: here, with each batch of its own)."""
    config = config_of(Settings(customers_lateness_s=30.0, topic_partitions=1))
    due_times = DueTimes(config)
    gc.collect()
    before = _rss_bytes()
    parts = [CustomerShard(config) for _ in range(buckets)]
    hours: dict[int, HourTimers] = {}
    t0 = 1795305600.0
    batch = 5000
    started = time.perf_counter()
    for start in range(0, n_customers, batch):
        groups: dict[int, list[Any]] = {}
        dues: list[Due] = []
        for i in range(start, min(n_customers, start + batch)):
            customer = f"U-{i:08d}"
            ts = t0 + i * 2.6  # a million customers over a month: the dedup window holds ~1400 ids
            index = zlib.crc32(customer.encode()) % buckets
            group = groups.setdefault(index, [])
            bought = Bought(customer, f"b{i}", ts, 42.5, "store", f"S{i % 40}", "DE", (f"SKU-{i % 900}",))
            viewed = Clicked(customer, f"c{i}", ts + 0.001, "view", f"SKU-{i % 700}", "web", "DE")
            group += (bought, viewed)
            dues += [Due(math.ceil(t * 1000), index) for item in (bought, viewed) for t in due_times.of(item)]
        now = t0 + min(n_customers, start + batch) * 2.6 - 30.0
        wake = Tick((), (), now)
        for hour, filed in TimerClock(EventClock(0.0, 1e12)).apply(dues):
            hours.setdefault(hour, HourTimers()).apply([*filed[:-1], wake])
        for index, items in groups.items():
            parts[index].apply([*items, wake])
    fill_s = time.perf_counter() - started
    gc.collect()
    held = sum(len(s) for s in parts)
    rss = _rss_bytes() - before
    packed = sum(len(b) for s in parts for b in s.records.values())
    started = time.perf_counter()
    snapshot = sum(len(s.to_bytes()) for s in parts)
    snapshot_s = time.perf_counter() - started
    # 1000 customers touched: the bytes of the buckets holding them (what an epoch's snapshot writes for them).
    touched = {zlib.crc32(f"U-{i:08d}".encode()) % buckets for i in random.Random(5).sample(range(n_customers), 1000)}
    touched_bytes = sum(len(parts[i].to_bytes()) for i in touched)
    return {"customers_held": held, "buckets": buckets, "rss_bytes_per_customer": round(rss / held, 1),
            "packed_state_bytes_per_customer": round(packed / held, 1), "fill_s": round(fill_s, 2),
            "hour_keys": len(hours), "timer_entries": sum(len(h) for h in hours.values()),
            "snapshot_bytes_all_buckets": snapshot, "snapshot_s_all_buckets": round(snapshot_s, 3),
            "buckets_holding_1000_random_customers": len(touched),
            "their_snapshot_bytes": touched_bytes}  # fmt: skip


SNAP_EPOCH_S = 1.0


def _sale(n: int, customer: int, ts: float) -> bytes:
    return orjson.dumps({"event_id": f"s{n}", "type": "sale", "ts": rfc3339_ms(ts), "schema_version": 1,
                         "store_id": f"S{customer % 40}", "register_id": "R1", "cashier_id": "K1", "txn_id": f"T{n}",
                         "currency": "EUR", "customer_id": f"U-{customer:08d}",
                         "items": [{"sku": f"SKU-{customer % 900}", "qty": 1, "unit_price": 42.5}], "total": 42.5,
                         "payment": {"method": "cash"}})  # fmt: skip


def _sales(customers: int, touched: int, t0: float) -> tuple[Iterator[list[bytes]], Callable[[int], list[bytes]]]:
    """Every customer buys once (chunks of 20k, a month of event time); then per epoch `touched` customers
    drawn from all held buy again, 30 s of event time apart."""
    rng = random.Random(11)

    def ts(customer: int) -> float:
        return t0 + customer * (30 * 86_400.0 / customers)

    def fill() -> Iterator[list[bytes]]:
        for first in range(0, customers, 20_000):
            yield [_sale(c, c, ts(c)) for c in range(first, min(first + 20_000, customers))]

    def again(n: int) -> list[bytes]:
        at = ts(customers) + 30.0 * n
        return [_sale(customers * (n + 1) + i, c, at) for i, c in enumerate(rng.sample(range(customers), touched))]

    return fill(), again


def flow_snapshots(n_customers: int, touched: int, epochs: int, buckets: int) -> dict[str, Any]:
    """What Bytewax writes to the recovery store per epoch, by step, with `n_customers` held and `touched` buying."""
    settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", topic_partitions=1,
                        flow_metrics_port=0, customers_buckets=buckets)  # fmt: skip
    cpu: dict[int, float] = {}
    current = [0]

    def on_epoch(index: int) -> None:
        current[0] = index
        cpu[index] = 0.0

    steps = [c for c in vars(customers_stages).values() if isinstance(c, type) and issubclass(c, StatefulBatchLogic)]
    originals = {cls: cls.snapshot for cls in steps if "snapshot" in vars(cls)}

    def timed(original: Any) -> Any:
        def snapshot(step: Any) -> Any:
            started = time.thread_time()
            data = original(step)
            if current[0] in cpu:
                cpu[current[0]] += time.thread_time() - started
            return data

        return snapshot

    for cls, original in originals.items():
        cls.snapshot = timed(original)  # type: ignore[method-assign]
    t0 = time.time() - 60 * 86_400.0  # in the past: the flow refuses events from the future
    try:
        with tempfile.TemporaryDirectory(prefix="omnistream-custsnap-") as scratch:
            subprocess.run([sys.executable, "-m", "bytewax.recovery", scratch, "1"], check=True)
            fill, again = _sales(n_customers, touched, t0)
            feed = EpochFeed(settings.topic(Topic.POS), fill, again, epochs, on_epoch,
                             settle_s=3 * SNAP_EPOCH_S, gap_s=1.5 * SNAP_EPOCH_S)  # fmt: skip
            flow = build_flow(settings, "bench", source=OneFeed(feed), sink=DropSink())
            started = time.perf_counter()
            recovery = RecoveryConfig(Path(scratch), backup_interval=timedelta(hours=1))  # keep every epoch's rows
            run_main(flow, epoch_interval=timedelta(seconds=SNAP_EPOCH_S), recovery_config=recovery)
            run_s = time.perf_counter() - started
            db = sqlite3.connect(Path(scratch) / "part-0.sqlite3")
            rows = db.execute("SELECT snap_epoch, step_id, COUNT(*), SUM(LENGTH(ser_change)) FROM snaps "
                              "GROUP BY snap_epoch, step_id ORDER BY snap_epoch").fetchall()  # fmt: skip
            db.close()
    finally:
        for cls, original in originals.items():
            cls.snapshot = original  # type: ignore[method-assign]
    by_epoch: dict[int, dict[str, tuple[int, int]]] = {}
    for epoch, step, keys, size in rows:
        if not step.endswith("customers_in"):  # the source's offsets
            by_epoch.setdefault(epoch, {})[step.rsplit(".", 1)[-1]] = (int(keys), int(size or 0))
    # The store's last epoch is the end of the input (every key); the `epochs` before it that wrote anything
    # are the touch epochs (an epoch with no input snapshots nothing).
    ordered = sorted(by_epoch)
    change = ordered[-(epochs + 1) : -1]
    per_epoch = [{"keys": sum(k for k, _ in by_epoch[e].values()), "bytes": sum(b for _, b in by_epoch[e].values()),
                  "by_step": {s: {"keys": k, "bytes": b} for s, (k, b) in sorted(by_epoch[e].items())}}
                 for e in change]  # fmt: skip
    closing = by_epoch[ordered[-1]]
    return {"customers_held": n_customers, "customers_touched_per_epoch": touched,
            "buckets": buckets,
            "run_s": round(run_s, 1), "snapshot_bytes_per_epoch": [e["bytes"] for e in per_epoch],
            "keys_snapshotted_per_epoch": [e["keys"] for e in per_epoch],
            "snapshot_cpu_s_per_epoch": [round(cpu[i], 4) for i in sorted(cpu) if i <= epochs],
            "epochs": per_epoch,
            "end_of_input": {"keys": sum(k for k, _ in closing.values()), "bytes": sum(b for _, b in closing.values()),
                             "snapshot_cpu_s": round(cpu.get(epochs + 1, 0.0), 3)}}  # fmt: skip


def _customer_docs(n_customers: int) -> tuple[list[CustomerDoc], dict[str, bytes]]:
    """`n_customers` documents as the flow shapes them (`customer_doc`, RFM buckets and all), each customer with
    one to four purchases over a year, and the population documents (`global`, `country:DE`) they count in."""
    config = config_of(Settings())
    shard = CustomerShard(config)
    rng = random.Random(2)
    t0 = time.time() - 400 * 86_400.0
    now = t0 + 366 * 86_400.0
    ids = [f"U-{i:06d}" for i in range(n_customers)]
    for start in range(0, n_customers, 5000):
        items: list[Any] = []
        for i, customer in enumerate(ids[start : start + 5000], start):
            country = "DE" if i % 3 == 0 else "FR"
            for k in range(1 + i % 4):
                ts = t0 + rng.uniform(0, 365 * 86_400.0)
                items.append(Bought(customer, f"b{i}-{k}", ts, round(rng.uniform(5, 300), 2), "web", None, country,
                                    (f"SKU-{i % 900}",)))  # fmt: skip
        shard.apply(sorted(items, key=lambda item: item.ts))
    shard.apply([Tick((), (), now)])
    populations: dict[str, Population] = {}
    docs = []
    for customer in ids:
        state = shard.state_of(customer)
        assert state is not None and state.buckets is not None
        for scope in ("global", f"country:{state.country}"):
            populations.setdefault(scope, Population()).move(None, RfmKeys(*state.buckets))
        body = orjson.dumps(customer_doc(customer, state, config, now))
        docs.append(CustomerDoc(customer, state.version, body, segments_of(state)))
    stored = {scope: orjson.dumps({"scope": scope, **pop.to_doc(), "as_of": rfc3339_ms(now)})
              for scope, pop in populations.items()}  # fmt: skip
    return docs, stored


def api(base: Settings, n_customers: int, duration_s: float, connections: int) -> dict[str, Any]:
    """`GET /v1/customers/{id}` over documents and populations shaped as the flow writes them, and `/v1/segments`;
    the API process's CPU per request (both loads), which a shared machine moves far less than its latency."""
    client = redis.Redis.from_url(base.redis.url)
    writer = CustomerWriter(client, SEGMENTS, "bench")
    docs, populations = _customer_docs(n_customers)
    for start in range(0, n_customers, 1000):
        chunk = docs[start : start + 1000]
        run_counting(client, lambda pipe, chunk=chunk: writer.queue(pipe, chunk), writer.scripts)  # type: ignore[misc]
    DocWriter(client, "bench").write_batch([FencedDoc(state_keys.customer_population(scope), 1, body)
                                            for scope, body in populations.items()])  # fmt: skip
    proc, port = start_api("serving.app:create_app", base)
    try:
        rng = random.Random(1)
        paths = [f"/v1/customers/{doc.customer_id}" for doc in rng.sample(docs, 2000)]
        headers = api_headers(base, "console")
        out: dict[str, Any] = {"population_doc_bytes": {scope: len(body) for scope, body in populations.items()}}
        for name, route_paths in (("customer", paths), ("customer_country", [f"{p}?country=DE" for p in paths]),
                                  ("segments", ["/v1/segments"])):  # fmt: skip
            cpu = process_cpu_s(proc.pid)
            figures = api_figures(port, route_paths, duration_s, connections, headers)
            answered = figures["max"]["requests"] + figures["half_load"]["requests"]
            figures["api_cpu_us_per_request"] = round((process_cpu_s(proc.pid) - cpu) / max(1, answered) * 1e6, 1)
            out[name] = figures
        out["load_average_1m"] = round(os.getloadavg()[0], 1)
    finally:
        proc.terminate()
        proc.wait(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument(
        "--latency-rate",
        type=float,
        nargs="+",
        default=[2000.0],
        help="events/s offered in the latency run; several: one run each, in turn",
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--lateness", type=float, default=Settings().customers.lateness_s, help="in the latency run")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--api-seconds", type=float, default=8.0)
    parser.add_argument("--touched", type=int, default=1000, help="customers buying per epoch in the snapshots run")
    parser.add_argument("--buckets", type=int, default=Settings().customers.buckets, help="customer buckets (c), (e)")
    parser.add_argument("--snapshot-epochs", type=int, default=4)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["throughput", "latency", "memory", "api", "snapshots"])  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": "python benchmarks/customers.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    if "memory" not in args.skip:  # first, in a fresh process: nothing else inflates the resident set
        console.print(f"(c) memory with {args.customers:,} customers ...")
        results["memory"] = memory(args.customers, buckets=args.buckets)
    if "snapshots" not in args.skip:
        console.print(f"(e) snapshots per epoch, the flow holding {args.customers:,} customers ...")
        tune_for_tailing_flow()  # as every flow process does (flows/run.py)
        results["flow_snapshots"] = flow_snapshots(args.customers, args.touched, args.snapshot_epochs, args.buckets)
    broker: LocalService = start_broker()
    store: LocalService = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-customers-bench-"))
    try:
        with logs_shown_on_failure(workdir, console):
            base = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_partitions=4,
                            recovery_dir=workdir, flow_metrics_port=0, snapshot_interval_s=30.0)  # fmt: skip
            if "throughput" not in args.skip:
                console.print(f"(a) throughput over {args.events:,} records ...")
                results["throughput"] = throughput(base, workdir, args.events)
            for rate in args.latency_rate if "latency" not in args.skip else []:
                console.print(f"(b) trigger latency at {rate:,.0f} events/s ...")
                name = "trigger_latency" if len(args.latency_rate) == 1 else f"trigger_latency_{round(rate)}"
                results[name] = trigger_latency(base, workdir, rate, args.latency_seconds, args.lateness)
            if "api" not in args.skip:
                console.print("(d) API ...")
                results["api"] = api(base, 100_000, args.api_seconds, 32)
    finally:
        broker.stop()
        store.stop()
    write_results(args.out, results)
    table = Table(title="customers flow")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for section, figures in results.items():
        if isinstance(figures, dict) and section != "machine":
            for name, value in figures.items():
                table.add_row(f"{section}.{name}", str(value) if not isinstance(value, dict) else _brief(value))
    console.print(table)
    console.print(f"written to {args.out}")


def _brief(figures: dict[str, Any]) -> str:
    half = figures.get("half_load", {})
    peak = figures.get("max", {})
    if half:
        cpu = figures.get("api_cpu_us_per_request")
        at_half = f"at half: p50 {half.get('p50_ms')} ms, p99 {half.get('p99_ms')} ms"
        return f"max {peak.get('rate', 0):.0f} req/s; {at_half}" + (
            f"; {cpu} us CPU/request" if cpu is not None else ""
        )
    return str(figures)


if __name__ == "__main__":
    main()
