"""Fault campaign: the inventory flow as a 2-process cluster under process kills, a Redis outage and a broker outage.

The workload is the end-to-end test's kind (`sim.workload`): duplicates, orders and
voids published before what they refer to on other topics, late cycle counts,
and malformed events. It is published at a steady rate through the whole
campaign while a driver:

- SIGKILLs a random process of the running cluster `--kills` times, at random
  moments; the rest of the cluster is stopped as an orchestrator would restart
  it (a Bytewax cluster does not go on without a member), and the cluster is
  started again on the same recovery partitions. Time to recover, per kill: from
  the kill until a receipt published right after it is readable in Redis;
- once, SIGKILLs Redis (append-only file, `appendfsync always`) and restarts it
  `--outage-s` later on the same files, while asking the API (`omnistream serve`)
  for a SKU every 100 ms: each answer must be a 503 within 100 ms, and the API must
  answer 200 again by itself once Redis is back;
- once, takes the broker down for `--outage-s` (connections cut and refused, via
  `benchmarks/tcp_proxy.py`; the broker keeps its log).

Then the flow drains what is left, and Redis is compared with an independent
oracle (`tests/e2e/expected_stock.py`, which shares no code with the flow): every
SKU x location's on-hand, reserved and available, and every malformed event
once in the dead-letter stream with a reason code.

Run: `python benchmarks/chaos.py` (20 kills, 10-s outages); results go to
`benchmarks/results/chaos.json` and a table is printed.
`tests/integration/test_chaos.py` runs a short form of the same campaign.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.tcp_proxy import TcpProxy
from events.reasons import Reason, reason_of
from events.topics import Topic
from flows.launcher import FlowRun, settings_env, start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import free_port, port_open, redis_reachable, redis_server_binary, tansu_binary
from sim.record import SimRecord
from sim.workload import Workload
from state import keys
from state.api_keys import KeyStore
from state.stream_writer import RECORD_FIELD
from tests.e2e.expected_stock import ExpectedStock

RESULTS = Path(__file__).resolve().parent / "results" / "chaos.json"
STOCK_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)
API_SKU = "SKU-00001"
PEER_EXIT_WAIT_S = 30.0
"""How long the rest of a cluster is given to exit by itself after a member died, before it is killed."""


@dataclass
class Campaign:
    """What to do: the faults and the workload."""

    kills: int = 20
    outage_s: float = 10.0
    records: int = 40_000
    rate: float = 400.0
    gap_s: tuple[float, float] = (1.0, 4.0)
    seed: int = 17


@dataclass
class Report:
    """What happened, and whether the state came out right."""

    campaign: dict[str, Any]
    recover_s: list[float] = field(default_factory=list)
    peers_exited_by_themselves: int = 0
    peer_exit_s: list[float] = field(default_factory=list)
    redis_outage: dict[str, Any] = field(default_factory=dict)
    broker_outage: dict[str, Any] = field(default_factory=dict)
    published: int = 0
    pairs_checked: int = 0
    diffs: list[str] = field(default_factory=list)
    lost: int = 0
    double_applied: int = 0
    malformed: int = 0
    dead_letters: int = 0
    dead_letters_without_reason: int = 0
    duplicate_dead_letters: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.diffs and self.malformed == self.dead_letters and not self.dead_letters_without_reason
                and not self.duplicate_dead_letters and self.redis_outage.get("ok", False))  # fmt: skip


class _Redis:
    """A redis-server whose acknowledged writes survive SIGKILL (append-only file, fsync always)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir, process_group=0,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not redis_reachable(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


class _Broker:
    """The local broker behind a proxy that can be taken down (clients only know the proxy's address)."""

    def __init__(self, workdir: Path) -> None:
        self.port, proxy_port = free_port(), free_port()
        url = f"tcp://127.0.0.1:{proxy_port}"
        self.proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}", "--advertised-listener-url",
             url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, process_group=0,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("the broker did not start")
            time.sleep(0.05)
        self.proxy = TcpProxy(proxy_port, self.port)
        self.address = f"127.0.0.1:{proxy_port}"


class _Publisher(threading.Thread):
    """Publishes the workload at a steady rate, and probes on demand; every message is delivered in the end."""

    def __init__(self, settings: Settings, records: list[SimRecord], rate: float) -> None:
        super().__init__(daemon=True)
        self.records, self.rate = records, rate
        self.topics = {t: settings.topic(t) for t in Topic}
        self.producer = Producer({"bootstrap.servers": settings.kafka.brokers, "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 600_000, "log_level": 2})  # fmt: skip
        self.lock = threading.Lock()
        self.sent = 0
        self.failed: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        for n, record in enumerate(self.records):
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.produce(self.topics[record.topic], record.key, record.value)
            self.sent = n + 1

    def produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        with self.lock:
            while True:
                try:
                    self.producer.produce(topic, value, key=key, on_delivery=self._delivered)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failed.append(str(error))

    def flush(self) -> None:
        with self.lock:
            self.producer.flush(600)


def _probe(n: int, at_ts: str) -> dict[str, Any]:
    return {"event_id": f"probe-{n}", "type": "receipt", "ts": at_ts, "schema_version": 1,
            "sku": f"PROBE-{n:03d}", "location_id": "WH-01", "qty": 1}  # fmt: skip


def _stock_records(campaign: Campaign) -> list[SimRecord]:
    # No checkout holds: they are decided in arrival order, which an oracle of the event set cannot know.
    workload = Workload(seed=campaign.seed, n_skus=300, n_stores=6, n_warehouses=3, n_users=2000, events_per_s=10.0,
                        hold_share=0.0,
                        duplicate_rate=0.02, malformed_rate=0.01, late_count_rate=0.5, early_order_rate=0.2,
                        void_rate=0.08, early_void_rate=0.5)  # fmt: skip
    return [r for r in workload.records(int(campaign.records * 1.03)) if r.topic in STOCK_TOPICS][: campaign.records]


def _wait(predicate: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - started


def _restart_cluster(settings: Settings, run: FlowRun, report: Report) -> FlowRun:
    """What an orchestrator does when a member dies: the others go too, and the cluster starts again."""
    survivors = [p for p in run.procs if p.poll() is None]
    started = time.monotonic()
    while any(p.poll() is None for p in survivors) and time.monotonic() - started < PEER_EXIT_WAIT_S:
        time.sleep(0.05)
    if survivors and all(p.poll() is not None for p in survivors):
        report.peers_exited_by_themselves += 1
        report.peer_exit_s.append(round(time.monotonic() - started, 2))
    run.kill()
    return start_flow("inventory", settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _redis_outage(store: _Redis, api_url: str, outage_s: float, headers: dict[str, str]) -> dict[str, Any]:
    answers: list[tuple[int, float]] = []
    store.kill()
    down_at = time.monotonic()
    with httpx.Client(base_url=api_url, timeout=5.0, headers=headers) as client:
        while time.monotonic() - down_at < outage_s:
            started = time.perf_counter()
            status = client.get(f"/v1/inventory/{API_SKU}").status_code
            answers.append((status, time.perf_counter() - started))
            time.sleep(0.1)
        store.start()
        up_at = time.monotonic()
        while client.get(f"/v1/inventory/{API_SKU}").status_code != 200:
            if time.monotonic() - up_at > 30:
                break
            time.sleep(0.05)
        back_s = time.monotonic() - up_at
    latencies = [latency for _, latency in answers]
    statuses = Counter(status for status, _ in answers)
    return {
        "down_s": outage_s,
        "answers_while_down": len(answers),
        "statuses": {str(status): n for status, n in statuses.items()},
        "slowest_ms": round(max(latencies) * 1000, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "api_back_after_s": round(back_s, 2),
        "ok": set(statuses) == {503} and max(latencies) < 0.100 and back_s < 30,
    }


def run_campaign(campaign: Campaign, workdir: Path) -> Report:
    """Run the whole campaign on private services in `workdir`; the report says what held."""
    report = Report(campaign=asdict(campaign))
    rng = random.Random(campaign.seed)
    started = time.monotonic()
    (workdir / "redis").mkdir()
    store = _Redis(workdir / "redis")
    broker = _Broker(workdir)
    api_port = free_port()
    settings = Settings(kafka_brokers=broker.address, redis_url=store.url, topic_prefix="chaos.", topic_partitions=4,
                        recovery_dir=workdir / "recovery", recovery_partitions=2, processes=2, workers=1,
                        snapshot_interval_s=1.0, flow_metrics_port=0, api_port=api_port,
                        api_redis_timeout_ms=80)  # fmt: skip
    create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
    records = _stock_records(campaign)
    oracle = ExpectedStock()
    for record in records:
        if not record.malformed:
            oracle.add(record.topic.value, orjson.loads(record.value))
    report.malformed = sum(1 for record in records if record.malformed)

    env = {**os.environ, **settings_env(settings)}
    api = subprocess.Popen([sys.executable, "-m", "omnistream.cli", "serve"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    publisher = _Publisher(settings, records, campaign.rate)
    run = start_flow("inventory", settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis.from_url(store.url, socket_timeout=2)
    # A storefront key, as a shop page sends it (AOF keeps it across the Redis restart).
    headers = {"Authorization": f"Bearer {KeyStore(client).create('storefront', 'chaos', None).key}"}
    try:
        _wait(lambda: port_open("127.0.0.1", api_port), 60, "the API start")
        publisher.start()
        redis_after, broker_after = rng.sample(range(1, campaign.kills + 1), 2)
        for kill in range(1, campaign.kills + 1):
            time.sleep(rng.uniform(*campaign.gap_s))
            victim = rng.choice([p for p in run.procs if p.poll() is None] or run.procs)
            victim.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            probe = _probe(kill, "2026-11-22T00:00:00.000Z")
            oracle.add(Topic.INVENTORY.value, probe)
            publisher.produce(settings.topic(Topic.INVENTORY), probe["sku"].encode(), orjson.dumps(probe))
            run = _restart_cluster(settings, run, report)
            probe_key = keys.stock(probe["sku"])

            def probe_written(key: str = probe_key) -> bool:
                try:
                    return bool(client.exists(key))
                except redis.RedisError:
                    return False

            _wait(probe_written, 300, f"recovery after kill {kill}")
            report.recover_s.append(round(time.monotonic() - killed_at, 3))
            if kill == redis_after:
                report.redis_outage = _redis_outage(store, f"http://127.0.0.1:{api_port}", campaign.outage_s, headers)
            if kill == broker_after:
                broker.proxy.down()
                time.sleep(campaign.outage_s)
                broker.proxy.up()
                report.broker_outage = {"down_s": campaign.outage_s, "after_kill": kill}
        publisher.join()
        publisher.flush()
        report.published = publisher.sent + campaign.kills
        # Drain: the tailing cluster stops, and one run reads to the end of every partition.
        run.stop()
        final = start_flow("inventory", settings.model_copy(update={"flow_stop_at_end": True}),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        if final.wait(600) != 0:
            raise RuntimeError("the final drain run failed")
        _compare(report, oracle, client)
    finally:
        run.kill()
        api.terminate()
        api.wait()
        if store.proc is not None:
            store.kill()
        broker.proxy.down()
        broker.proc.kill()
        broker.proc.wait()
    report.elapsed_s = round(time.monotonic() - started, 1)
    return report


def _compare(report: Report, oracle: ExpectedStock, client: redis.Redis) -> None:
    served: dict[tuple[str, str], tuple[int, int, int]] = {}
    for key in client.scan_iter(match=keys.stock("*"), count=1000):
        doc = orjson.loads(client.hget(key, keys.DOC_FIELD))  # type: ignore[arg-type]
        for loc in doc["locations"]:
            served[doc["sku"], loc["location_id"]] = (loc["on_hand"], loc["reserved"], loc["available"])
    expected = {pair: level.as_tuple() for pair, level in oracle.levels().items()}
    report.pairs_checked = len(expected)
    for pair in sorted(expected.keys() | served.keys()):
        want, got = expected.get(pair, (0, 0, 0)), served.get(pair, (0, 0, 0))
        if want != got:
            report.diffs.append(f"{pair}: expected {want}, stored {got}")
            report.lost += got[0] < want[0]
            report.double_applied += got[0] > want[0]
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(keys.dlq_stream())  # type: ignore[assignment]
    letters = [orjson.loads(fields[RECORD_FIELD.encode()]) for _, fields in entries]
    report.dead_letters = len(letters)
    report.duplicate_dead_letters = len(letters) - len({letter["dlq_id"] for letter in letters})
    report.dead_letters_without_reason = sum(1 for letter in letters if reason_of(letter["error"]) not in set(Reason))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--outage-s", type=float, default=10.0)
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--rate", type=float, default=300.0, help="workload events published per second")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    campaign = Campaign(kills=args.kills, outage_s=args.outage_s, records=args.records, rate=args.rate, seed=args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-chaos-"))
    try:
        report = run_campaign(campaign, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "chaos",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python benchmarks/chaos.py " + " ".join(sys.argv[1:]),
        "recover_p50_s": _quantile(report.recover_s, 0.5),
        "recover_p99_s": _quantile(report.recover_s, 0.99),
        "ok": report.ok,
        **asdict(report),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        f"kills {len(report.recover_s)}: time to recover p50 {result['recover_p50_s']} s, "
        f"p99 {result['recover_p99_s']} s; the rest of the cluster exited by itself after "
        f"{report.peers_exited_by_themselves} kills, in {report.peer_exit_s} s"
    )
    print(f"redis outage: {report.redis_outage}")
    print(f"broker outage: {report.broker_outage}")
    print(f"state vs oracle: {report.pairs_checked} SKU x location pairs, {len(report.diffs)} diffs "
          f"(lost {report.lost}, double-applied {report.double_applied}); dead letters {report.dead_letters} of "
          f"{report.malformed} malformed, {report.dead_letters_without_reason} without a reason, "
          f"{report.duplicate_dead_letters} twice")  # fmt: skip
    print(f"{'OK' if report.ok else 'FAILED'} in {report.elapsed_s} s; results: {args.out}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
