"""Fraud flow benchmark: throughput per worker, alert latency at a fixed rate, memory over a 5-million-event soak.

Everything runs on private services (a fresh in-memory Tansu broker and a diskless
redis-server on free ports):

(a) throughput: N synthetic card payments (till sales and online orders, a card-testing
    burst every 200 payments, labels for the bursts) published first, then the fraud flow
    with 1 process x 1 worker (recovery on) consumes them to the end. Payments/s is
    N / (run time - start-up time), start-up measured by a run over empty topics.
(b) alert latency: the flow tails the topics while payments are published at a fixed rate
    with event time = wall time; a card-testing burst every second. Latency = the moment
    the alert is readable in the Redis stream (seen by a blocking XREAD here) minus the
    moment its triggering payment was handed to the producer; p50/p99.
(c) soak: the same flow code fed 5 million generated payments in-process (a generating
    source in place of Kafka: the in-memory broker would hold gigabytes), scores with a
    short time to live (Redis would otherwise hold every one), recovery on as deployed (each epoch
    pickles the changed shards), VmRSS of the flow process sampled every second against
    `OMNISTREAM_FRAUD_MEMORY_BUDGET_MB`, and the size of its recovery directory (the snapshots on
    disk) every 5 s. Before 2026-12-07 it ran without recovery, which pickles nothing.
(d) score latency in a paused stream: the flow tails the topics; one till sale at a time,
    `--lone-gap` seconds apart (nothing else is published), its score polled in Redis every
    5 ms. Latency = score readable minus the sale handed to the producer (flushed at once).

Run: `python benchmarks/fraud.py [--payments 300000] [--soak-events 5000000]`; results go to
`benchmarks/results/fraud.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.flow_runs import run_to_end
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.launcher import settings_env, start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import LocalService, start_broker, start_redis
from sim.publish import KafkaPublisher
from sim.record import SimRecord
from state import keys
from state.stream_writer import RECORD_FIELD

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "fraud.json"
RULES = ROOT / "deploy" / "fraud" / "rules.toml"
console = Console()
T0 = 1795305600.0


class PaymentStream:
    """Synthetic card payments: 60% till sales in 20 stores, 40% online orders; a card-testing burst on demand.

    Normal payments use a new card token each (guest checkouts and one-off shoppers): the
    hardest case for bounded state, since every payment brings an entity.
    """

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n:09d}"

    def normal(self, ts: float) -> tuple[Topic, bytes, bytes, str]:
        rng = self.rng
        token = f"tok_{rng.getrandbits(64):016x}"
        amount = round(rng.uniform(5.0, 180.0), 2)
        if rng.random() < 0.6:
            store = f"STORE-{rng.randrange(1, 21):02d}"
            return self._sale(ts, store, token, amount)
        return self._purchase(ts, self._id("S"), token, amount)

    def burst(self, ts: float, n: int = 5, gap_s: float = 0.2) -> list[tuple[float, tuple[Topic, bytes, bytes, str]]]:
        """`n` small guest orders on one fresh card from one session, `gap_s` apart in event time."""
        token = f"tok_{self.rng.getrandbits(64):016x}"
        session = self._id("SB")
        return [(ts + i * gap_s, self._purchase(ts + i * gap_s, session, token, 1.0 + i)) for i in range(n)]

    def _sale(self, ts: float, store: str, token: str, amount: float) -> tuple[Topic, bytes, bytes, str]:
        event_id = self._id("E")
        register = f"{store}-R{self.rng.randrange(1, 5)}"
        event = {"event_id": event_id, "type": "sale", "ts": rfc3339_ms(ts), "schema_version": 1, "store_id": store,
                 "register_id": register, "cashier_id": f"{store}-C1", "txn_id": self._id("T"), "currency": "USD",
                 "items": [{"sku": "SKU-00001", "qty": 1, "unit_price": amount}], "total": amount,
                 "payment": {"method": "card", "card_token": token, "card_bin": "411111",
                             "entry_mode": "chip"}}  # fmt: skip
        return Topic.POS, store.encode(), orjson.dumps(event), event_id

    def _purchase(self, ts: float, session: str, token: str, amount: float) -> tuple[Topic, bytes, bytes, str]:
        event_id = self._id("E")
        event = {"event_id": event_id, "type": "purchase", "ts": rfc3339_ms(ts), "schema_version": 1,
                 "session_id": session, "channel": "web", "ip_country": "US", "order_id": self._id("O"),
                 "items": [{"sku": "SKU-00001", "qty": 1, "unit_price": amount}], "total": amount, "currency": "USD",
                 "fulfilment_location_id": "WH-01",
                 "payment": {"method": "card", "card_token": token, "card_bin": "411111", "billing_country": "US"},
                 "shipping_country": "US"}  # fmt: skip
        return Topic.CLICKSTREAM, session.encode(), orjson.dumps(event), event_id

    def records(self, n_payments: int, start_ts: float = T0, per_s: float = 1000.0) -> Iterator[SimRecord]:
        """`n_payments` payments (a burst of 5 every 200), event time advancing `per_s` payments per second."""
        made = 0
        ts = start_ts
        while made < n_payments:
            if made % 200 == 199:
                for _, (topic, key, value, _) in self.burst(ts):
                    yield SimRecord(topic, key, value)
                made += 5
            else:
                topic, key, value, _ = self.normal(ts)
                yield SimRecord(topic, key, value)
                made += 1
            ts += 1.0 / per_s


def _names(settings: Settings) -> dict[Topic, str]:
    return {t: settings.topic(t) for t in Topic}


def _settings(base: Settings, prefix: str, workdir: Path) -> Settings:
    settings = base.model_copy(update={"topic_prefix": prefix, "recovery_dir": workdir / prefix})
    create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
    return settings


def throughput(base: Settings, workdir: Path, n_payments: int) -> dict[str, Any]:
    empty = _settings(base, "empty.", workdir)
    startup_s, startup_cpu_s = min(run_to_end("fraud", empty, workdir / "empty.log") for _ in range(2))
    settings = _settings(base, "tput.", workdir)
    published = KafkaPublisher(settings.kafka.brokers).publish(PaymentStream(7).records(n_payments), _names(settings))
    total_s, cpu_s = run_to_end("fraud", settings, workdir / "tput.log")
    scored = _count_scores(settings.redis.url)
    return {
        "payments": n_payments,
        "published": {t.value: n for t, n in published.items()},
        "startup_s": round(startup_s, 3),
        "run_s": round(total_s, 3),
        "flow_cpu_s": round(cpu_s, 3),
        "payments_per_flow_cpu_s": round(n_payments / max(1e-9, cpu_s - startup_cpu_s)),
        "payments_per_s_per_worker": round(n_payments / max(1e-9, total_s - startup_s)),
        "payments_per_s_incl_startup": round(n_payments / total_s),
        "scores_in_redis": scored,
    }


def _count_scores(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    return sum(1 for _ in client.scan_iter(match=keys.score("*"), count=5000))


def alert_latency(base: Settings, workdir: Path, rate: float, duration_s: float) -> dict[str, Any]:
    settings = _settings(base, "live.", workdir)
    client = redis.Redis.from_url(settings.redis.url)
    client.delete(keys.alerts_stream())
    arrivals: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        last = "0-0"
        reader = redis.Redis.from_url(settings.redis.url, socket_timeout=5)
        while not stop.is_set():
            replies: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]
            replies = reader.xread({keys.alerts_stream(): last}, block=200) or []  # type: ignore[assignment]
            for _, entries in replies:
                now = time.time()
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    alert = orjson.loads(fields[RECORD_FIELD.encode()])
                    # The opening alert of each burst (escalations carry a suffix and later events).
                    if alert["kind"] == "fraud" and alert.get("status") == "open" and alert["alert_id"].count(":") == 3:
                        for event_id in alert["source_event_ids"]:
                            arrivals.setdefault(event_id, now)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    log = (workdir / "live.log").open("wb")
    run = start_flow("fraud", settings, stdout=log, stderr=log)
    published_at: dict[str, float] = {}
    stream = PaymentStream(11)
    producer = KafkaPublisher(settings.kafka.brokers)._producer
    names = _names(settings)
    try:
        time.sleep(3.0)  # the flow's start-up
        started = time.time()
        sent = bursts = 0
        next_burst = started + 1.0
        while (now := time.time()) < started + duration_s:
            due = int((now - started) * rate) - sent
            for _ in range(max(0, due)):
                topic, key, value, event_id = stream.normal(time.time())
                producer.produce(names[topic], value, key=key)
                sent += 1
            if now >= next_burst:
                next_burst += 1.0
                bursts += 1
                for _, (topic, key, value, event_id) in stream.burst(now, gap_s=0.05):
                    producer.produce(names[topic], value, key=key)
                    published_at[event_id] = time.time()
                sent += 5
            producer.poll(0)
            time.sleep(0.002)
        producer.flush(30)
        time.sleep(3.0)
    finally:
        stop.set()
        watcher.join(5)
        run.stop()
        log.close()
    latencies = sorted(arrivals[e] - published_at[e] for e in arrivals if e in published_at)

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 4) if latencies else None

    return {"rate_payments_per_s": rate, "duration_s": duration_s, "bursts": bursts,
            "alerts_measured": len(latencies), "p50_s": pct(0.50), "p99_s": pct(0.99),
            "max_s": round(latencies[-1], 4) if latencies else None,
            "latencies_s": [round(x, 3) for x in latencies]}  # fmt: skip


def lone_latency(base: Settings, workdir: Path, n: int, gap_s: float) -> dict[str, Any]:
    """Each payment alone in a paused stream: how long until its score is readable (`GET /v1/scores/{id}`)."""
    settings = _settings(base, "lone.", workdir)
    client = redis.Redis.from_url(settings.redis.url)
    log = (workdir / "lone.log").open("wb")
    run = start_flow("fraud", settings, stdout=log, stderr=log)
    producer = KafkaPublisher(settings.kafka.brokers)._producer
    topic = _names(settings)[Topic.POS]
    latencies: list[float] = []
    try:
        time.sleep(3.0)  # the flow's start-up
        for i in range(n):
            txn, now = f"LONE-{i:04d}", time.time()
            event = {"event_id": f"E-{txn}", "type": "sale", "ts": rfc3339_ms(now), "schema_version": 1,
                     "store_id": "STORE-01", "register_id": "STORE-01-R1", "cashier_id": "STORE-01-C1",
                     "txn_id": txn, "currency": "USD", "items": [{"sku": "SKU-00001", "qty": 1, "unit_price": 20.0}],
                     "total": 20.0, "payment": {"method": "card", "card_token": f"tok_lone_{i}", "card_bin": "411111",
                                                "entry_mode": "chip"}}  # fmt: skip
            producer.produce(topic, orjson.dumps(event), key=f"STORE-{i % 20:02d}".encode())
            producer.flush(5)
            sent = time.time()
            while time.time() - sent < 15.0 and not client.exists(keys.score(txn)):
                time.sleep(0.005)
            if client.exists(keys.score(txn)):
                latencies.append(time.time() - sent)
            time.sleep(max(0.0, gap_s - (time.time() - now)))
    finally:
        run.stop()
        log.close()
    latencies.sort()
    return {"payments": n, "gap_s": gap_s, "scored": len(latencies),
            "p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
            "max_s": round(latencies[-1], 3) if latencies else None,
            "latencies_s": [round(x, 3) for x in latencies]}  # fmt: skip


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _dir_mb(directory: Path) -> float:
    """Bytes of the files under `directory`, in MB (0 if it is not there yet)."""
    total = 0
    for path in directory.rglob("*") if directory.exists() else ():
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size if path.is_file() else 0
    return round(total / 1e6, 1)


def soak(base: Settings, workdir: Path, n_events: int) -> dict[str, Any]:
    settings = base.model_copy(update={"topic_prefix": "soak.", "recovery_dir": workdir / "soak",
                                       "fraud_score_ttl_s": 30.0})  # fmt: skip
    env = {**os.environ, **settings_env(settings)}
    log = (workdir / "soak.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--soak-child", str(n_events)],
                            env=env, stdout=log, stderr=log)  # fmt: skip
    samples: list[tuple[float, float]] = []
    disk: list[float] = []  # MB of the recovery directory, every 5 s (the snapshots on disk)
    recovery = settings.recovery.dir or workdir / "soak"
    started = time.perf_counter()
    while proc.poll() is None:
        try:
            samples.append((round(time.perf_counter() - started, 1), round(_rss_mb(proc.pid), 1)))
        except (FileNotFoundError, ProcessLookupError):
            break
        if len(samples) % 5 == 0:
            disk.append(_dir_mb(recovery))
        time.sleep(1.0)
    log.close()
    if proc.returncode != 0:
        raise RuntimeError(f"soak exited with {proc.returncode}; see {workdir / 'soak.log'}")
    elapsed = time.perf_counter() - started
    rss = [mb for _, mb in samples]
    quarter = max(1, len(rss) // 4)
    return {
        "events": n_events,
        "run_s": round(elapsed, 1),
        "payments_per_s": round(n_events / elapsed),
        "rss_mb_max": max(rss, default=0.0),
        "rss_mb_first_quarter_max": max(rss[:quarter], default=0.0),
        "rss_mb_last_quarter_max": max(rss[-quarter:], default=0.0),
        "recovery_dir_mb_max": max(disk, default=0.0),
        "recovery_dir_mb_end": _dir_mb(recovery),
        "budget_mb": settings.fraud.memory_budget_mb,
        "within_budget": max(rss, default=0.0) <= settings.fraud.memory_budget_mb,
        "samples": samples[:: max(1, len(samples) // 40)],
    }


def soak_child(n_events: int) -> None:
    """The fraud flow with a generating source instead of Kafka (same steps, same sink)."""
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
    from bytewax.run import cli_main

    import flows.fraud as fraud
    from flows.kafka_source import KafkaRecord
    from omnistream.settings import settings_or_exit

    settings = settings_or_exit()
    names = _names(settings)

    class _Generated(StatefulSourcePartition[KafkaRecord, int]):
        def __init__(self, offset: int) -> None:
            self._records = PaymentStream(3).records(n_events)
            for _ in range(offset):
                next(self._records)
            self._offset = offset

        def next_batch(self) -> list[KafkaRecord]:
            batch = []
            for record in self._records:
                batch.append(KafkaRecord(names[record.topic], 0, self._offset, record.value))
                self._offset += 1
                if len(batch) == 2000:
                    break
            if not batch:
                raise StopIteration()
            return batch

        def snapshot(self) -> int:
            return self._offset

    class _Source(FixedPartitionedSource[KafkaRecord, int]):
        def list_parts(self) -> list[str]:
            return ["0"]

        def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Generated:
            return _Generated(resume_state or 0)

    from datetime import timedelta

    from bytewax.recovery import RecoveryConfig

    from flows.launcher import ensure_recovery
    from flows.registry import STATE_FORMATS

    # Recovery on, as deployed: without it Bytewax asks each shard for its snapshot but pickles nothing,
    # and the copy each epoch's snapshot makes of the state (the late-label store's included) is not measured.
    recovery = None
    if settings.recovery.dir is not None:
        ensure_recovery(settings.recovery.dir, settings.recovery.partitions, STATE_FORMATS["fraud"])
        recovery = RecoveryConfig(str(settings.recovery.dir), timedelta(seconds=settings.backup_interval_s))
    cli_main(fraud.build_flow(settings, "soak", source=_Source()), workers_per_process=1,
             epoch_interval=timedelta(seconds=settings.snapshot_interval_s), recovery_config=recovery)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=300_000)
    parser.add_argument("--latency-rate", type=float, default=5000.0, help="payments/s offered in the latency test")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--soak-events", type=int, default=5_000_000)
    parser.add_argument("--lone-payments", type=int, default=12, help="payments in the paused-stream test")
    parser.add_argument("--lone-gap", type=float, default=2.0, help="seconds between them")
    parser.add_argument("--skip", nargs="*", default=[], choices=["throughput", "latency", "lone", "soak"])
    parser.add_argument("--soak-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.soak_child is not None:
        soak_child(args.soak_child)
        return

    broker: LocalService = start_broker()
    store: LocalService = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-fraud-bench-"))
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    try:
        base = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_partitions=4,
                        recovery_dir=workdir, flow_metrics_port=0, fraud_rules_path=RULES,
                        snapshot_interval_s=30.0)  # fmt: skip
        if "throughput" not in args.skip:
            console.print(f"(a) throughput over {args.payments:,} payments ...")
            results["throughput"] = throughput(base, workdir, args.payments)
        if "latency" not in args.skip:
            console.print(f"(b) alert latency at {args.latency_rate:,.0f} payments/s ...")
            results["alert_latency"] = alert_latency(base, workdir, args.latency_rate, args.latency_seconds)
        if "lone" not in args.skip:
            console.print(f"(d) score latency, paused stream: {args.lone_payments} payments {args.lone_gap} s apart")
            results["lone_latency"] = lone_latency(base, workdir, args.lone_payments, args.lone_gap)
        if "soak" not in args.skip:
            console.print(f"(c) soak over {args.soak_events:,} payments ...")
            results["soak"] = soak(base, workdir, args.soak_events)
    except Exception:
        for log in workdir.glob("*.log"):
            console.print(f"[red]{log.name}[/red]: {log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        broker.stop()
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the soak's recovery store alone is gigabytes
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = Table(title="fraud flow")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for section, figures in results.items():
        if isinstance(figures, dict) and section != "machine":
            for name, value in figures.items():
                if name not in ("samples", "latencies_s"):
                    table.add_row(f"{section}.{name}", str(value))
    console.print(table)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
