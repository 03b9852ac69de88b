"""Inventory benchmark: ingest ceiling, flow throughput, end-to-end lag, API against a bare route.

Everything runs in one go on private services (a fresh in-memory Tansu broker
and a diskless redis-server on free ports), and every comparison is made
against a baseline measured in the same run (docs/performance.md: absolute numbers
drift between machines, ratios carry over):

(a) raw ceiling: confluent-kafka consume (explicit assignment, batches of 10k)
    plus `orjson.loads` of the same events, events/s;
(b) the inventory flow end to end (Kafka -> Redis), events/s with 1 process
    and with 2 processes x 1 worker, and each one's ratio to (a);
(c) the sustained live throughput (the flow tailing while the producer
    publishes as fast as it can and the broker serves both, all on this
    machine), then end-to-end lag, event published -> its effect readable in
    Redis, p50/p99, while the workload is offered at half that rate (and,
    for context, at a modest fixed rate), each for 45 s: long enough to hold
    a recovery snapshot (every 30 s by default), whose pause is part of the
    lag a tailing flow shows;
(d) `GET /v1/inventory/{sku}` on one API worker: maximum requests/s (closed
    loop) and p50/p99 at half that rate (open loop), beside a bare FastAPI
    route returning one Redis hash with HGETALL, measured the same way.

Run: `python benchmarks/inventory.py` (or `make bench`); results go to
`benchmarks/results/inventory.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import http_load
from benchmarks.keyspace import KeyWrites
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.kafka_source import fetch_config
from flows.launcher import FlowRun, settings_env, start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import LocalService, free_port, start_broker, start_redis
from sim.publish import DEFAULT_LINGER_MS, KafkaPublisher
from sim.record import SimRecord
from sim.workload import Workload
from state import keys
from state.api_keys import KeyStore

RESULTS = Path(__file__).resolve().parent / "results" / "inventory.json"
FLOW_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)
console = Console()


def workload_records(n_events: int, seed: int) -> list[tuple[Topic, bytes | None, bytes]]:
    """The simulator's stream restricted to the topics the inventory flow reads."""
    workload = Workload(seed=seed, n_skus=5000, n_stores=20, n_warehouses=3)
    out = []
    for record in workload.records():
        if record.topic in FLOW_TOPICS:
            out.append((record.topic, record.key, record.value))
            if len(out) == n_events:
                return out
    return out


def freeze_gc() -> None:
    """Keep this process's collector off the workload held in memory.

    The lag probes are timed from here: a full collection walking a million
    records paused this process for up to half a second and was counted as
    flow lag; the load generator is forked from here too, and a collector
    walking the records in it would copy every page it shares with this one.
    """
    gc.collect()
    gc.freeze()


def raw_ceiling(settings: Settings, expected: int) -> float:
    """(a): consume every partition of the flow's topics and parse each value, events/s."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "bench-raw",
                         "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    parts = [TopicPartition(settings.topic(t), p, 0) for t in FLOW_TOPICS for p in range(settings.topic.partitions)]
    consumer.assign(parts)
    started = time.perf_counter()
    seen = eofs = 0
    while eofs < len(parts):
        for message in consumer.consume(10_000, 1.0):
            if message.error() is not None:
                eofs += 1
                continue
            with contextlib.suppress(orjson.JSONDecodeError):  # malformed events cost a parse too
                orjson.loads(message.value() or b"")  # a value-less record is malformed too
            seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    assert seen == expected, f"consumed {seen} of {expected} events"
    return seen / elapsed


def median_run(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The run with the median rate, plus every round's rate."""
    ordered = sorted(runs, key=lambda r: r["events_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_events_per_s": [r["events_per_s"] for r in runs]}


def flow_throughput(settings: Settings, n_events: int, code: Path | None = None) -> dict[str, float]:
    """(b): run the flow over the published backlog; rate from its first Redis write to its exit."""
    client = redis.Redis.from_url(settings.redis.url)
    client.flushdb()
    if settings.recovery.dir is not None:
        shutil.rmtree(settings.recovery.dir, ignore_errors=True)
    started = time.perf_counter()
    run = start_flow("inventory", settings.model_copy(update={"flow_stop_at_end": True}),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, extra_env=_flow_env(None, code))  # fmt: skip
    first_write = None
    while run.alive():
        if first_write is None and client.dbsize() > 0:
            first_write = time.perf_counter()
        time.sleep(0.005)
    ended = time.perf_counter()
    exit_code = run.wait()
    assert exit_code == 0, f"flow exited with {exit_code}"
    assert first_write is not None
    return {"events_per_s": n_events / (ended - first_write), "wall_s": ended - started,
            "startup_s": first_write - started}  # fmt: skip


class Probe:
    """Receipts for fresh SKUs, timed from publication until their stock is readable in Redis."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer({"bootstrap.servers": settings.kafka.brokers, "linger.ms": 0})
        self._topic = settings.topic(Topic.INVENTORY)
        self._count = 0
        self._writes = KeyWrites(settings.redis.url, keys.stock("PROBE-*"))
        self.timed: list[tuple[str, float, float]] = []  # (sku, sent, readable) in wall-clock seconds

    def send(self) -> tuple[str, float]:
        self._count += 1
        sku = f"PROBE-{self._count:06d}"
        ts = rfc3339_ms(time.time())
        body = orjson.dumps({"event_id": f"probe-{self._count}", "type": "receipt", "ts": ts, "schema_version": 1,
                             "sku": sku, "location_id": "WH-01", "qty": 1})  # fmt: skip
        self._producer.produce(self._topic, body, key=sku.encode())
        self._producer.flush(5)
        return sku, time.perf_counter()

    def wait(self, sku: str, sent: float, timeout_s: float = 60.0) -> float:
        """Seconds from `sent` until `sku` is readable."""
        return self._writes.wait(keys.stock(sku), sent, timeout_s)

    def round_trip(self, timeout_s: float = 60.0) -> float:
        sku, sent = self.send()
        sent_wall = time.time() - (time.perf_counter() - sent)
        lag = self.wait(sku, sent, timeout_s)
        self.timed.append((sku, sent_wall, sent_wall + lag))
        return lag


class BrokerProbe(Probe):
    """The same receipts timed to the broker alone: published -> consumed, with no flow at all.

    Its consumer reads every partition the flow reads, with the flow's fetch
    settings, so the difference to `Probe` is what the flow adds.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "omnistream-bench",
                                   "enable.auto.commit": False, **fetch_config(settings)})  # fmt: skip
        topics = [settings.topic(t) for t in FLOW_TOPICS]
        metadata = self._consumer.list_topics(timeout=30).topics
        # From each partition's current end, as an offset: OFFSET_END is resolved only at the first
        # fetch, which could come after the first probe and skip it.
        parts = [TopicPartition(t, p) for t in topics for p in metadata[t].partitions]
        self._consumer.assign([TopicPartition(tp.topic, tp.partition, self._consumer.get_watermark_offsets(tp, 30)[1])
                               for tp in parts])  # fmt: skip

    def wait(self, sku: str, sent: float, timeout_s: float = 60.0) -> float:
        key, deadline = sku.encode(), sent + timeout_s
        while time.perf_counter() < deadline:
            first = self._consumer.poll(0.1)  # returns as soon as one message is there
            # ... then whatever else is already fetched, without waiting (`consume` waits for all it asks).
            for message in [first, *self._consumer.consume(10_000, 0)] if first is not None else []:
                if message.key() == key:
                    return time.perf_counter() - sent
        raise TimeoutError(f"probe {sku} not consumed within {timeout_s} s")

    def close(self) -> None:
        self._consumer.close()


def _tailing_flow(settings: Settings, trace: Path | None = None, code: Path | None = None) -> tuple[FlowRun, Probe]:
    redis.Redis.from_url(settings.redis.url).flushdb()
    shutil.rmtree(settings.recovery.dir, ignore_errors=True)  # type: ignore[arg-type]
    with open(settings.recovery.dir.with_suffix(".log"), "wb") as log:  # type: ignore[union-attr]
        # the child keeps its own descriptor
        run = start_flow("inventory", settings, stdout=log, stderr=log, extra_env=_flow_env(trace, code))
    probe = Probe(settings)
    probe.round_trip()  # start-up is not lag
    probe.timed.clear()
    return run, probe


def _offer(settings: Settings, records: list[tuple[Topic, bytes | None, bytes]], rate: float | None,
           linger_ms: int | None = None) -> None:  # fmt: skip
    """Publish `records` with the simulator's publisher: its defaults, unless `linger_ms` overrides its batching."""
    publisher = KafkaPublisher(settings.kafka.brokers, None if linger_ms is None else {"linger.ms": linger_ms})
    publisher.publish((SimRecord(t, k, v) for t, k, v in records), {t: settings.topic(t) for t in FLOW_TOPICS},
                      rate=rate)  # fmt: skip


def _events_processed(metrics_port: int) -> float:
    """The flow's own count of decoded input events (its Prometheus counter)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("omnistream_flow_events_total{"))  # fmt: skip


def live_throughput(settings: Settings, records: list[tuple[Topic, bytes | None, bytes]]) -> float:
    """(c) first half: events/s the flow processes while the producer publishes beside it, flat out.

    The producer, the broker and the flow share this machine, as in the local
    stack; the rate counts only the window in which the producer is running,
    from the flow's own event counter, so the flow draining a backlog alone
    afterwards does not flatter it.
    """
    port = free_port()
    settings = settings.model_copy(update={"flow_metrics_port": port})
    run, _probe = _tailing_flow(settings)
    try:
        before, started = _events_processed(port), time.perf_counter()
        _offer(settings, records, None)
        return (_events_processed(port) - before) / (time.perf_counter() - started)
    finally:
        run.stop()


def _time_probes(probe: Probe, settings: Settings, records: list[tuple[Topic, bytes | None, bytes]], rate: float,
                 duration_s: float, linger_ms: int | None) -> dict[str, float]:  # fmt: skip
    """Offer `rate` events/s for `duration_s` from another process; time one probe after another meanwhile."""
    # The load comes from its own process: a publishing thread here would hold the GIL
    # and delay the probes' own timing, which is what is measured.
    loader = multiprocessing.get_context("fork").Process(
        target=_offer, args=(settings, records[: int(rate * duration_s)], rate, linger_ms)
    )
    loader.start()
    time.sleep(1.0)  # let the offered load reach its steady rate
    lags: list[float] = []
    # No collections here while probes are timed: even with the workload frozen, full ones of
    # what the probes allocate paused this process for 15-35 ms, several times per window.
    gc.disable()
    try:
        while True:  # at least one probe, even when a short load is already over
            lags.append(probe.round_trip())
            if not loader.is_alive():
                break
            time.sleep(0.02)
    finally:
        gc.enable()
    loader.join()
    lags.sort()
    return {"offered_rate": rate, "offered_s": duration_s, "probes": len(lags),
            "p50_ms": 1000 * lags[len(lags) // 2], "p90_ms": 1000 * lags[int(len(lags) * 0.9)],
            "p99_ms": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            "max_ms": 1000 * lags[-1]}  # fmt: skip


def end_to_end_lag(settings: Settings, records: list[tuple[Topic, bytes | None, bytes]], rate: float,
                   duration_s: float, linger_ms: int | None = None,
                   trace: Path | None = None, code: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """(c): offer the workload at `rate` to a tailing flow; time probe receipts until Redis shows them.

    With `trace`, the flow notes when each of its stages ran (`install_trace`) and
    the figures include where the probes' time went (`trace_breakdown`). With
    `code`, the flow runs the code of that checkout (run the benchmark from a
    directory without a `flows` package, so that the path decides).
    """
    run, probe = _tailing_flow(settings, trace, code)
    try:
        figures: dict[str, Any] = _time_probes(probe, settings, records, rate, duration_s, linger_ms)
    finally:
        run.stop()
    figures |= {"snapshot_interval_s": settings.snapshot_interval_s}
    if trace is not None:
        figures["breakdown"] = trace_breakdown(trace, probe.timed)
    return figures


def broker_lag(settings: Settings, records: list[tuple[Topic, bytes | None, bytes]], rate: float,
               duration_s: float, linger_ms: int | None = None) -> dict[str, float]:  # fmt: skip
    """(c) baseline: the same load and probes with no flow, each probe timed until it is consumed."""
    probe = BrokerProbe(settings)
    try:
        probe.round_trip()  # connection and assignment are not lag
        return _time_probes(probe, settings, records, rate, duration_s, linger_ms)
    finally:
        probe.close()


# --- where a probe's time goes -----------------------------------------------------------------------------
TRACE_ENV = "OMNISTREAM_BENCH_TRACE"
_REPO = Path(__file__).resolve().parent.parent


def _flow_env(trace: Path | None, code: Path | None) -> dict[str, str]:
    """Environment of a flow process: the code of this checkout or of `code` (another one), traced if `trace` is.

    A `sitecustomize` module on the child's path calls `install_trace` at
    start-up, so the flow runs exactly as `flows.run` starts it, only with
    timing notes around its stages.
    """
    env: dict[str, str] = {}
    paths = [str(code or _REPO)]
    if trace is not None:
        hook = trace.parent / f"trace-hook-{trace.stem}"
        hook.mkdir(parents=True, exist_ok=True)
        (hook / "sitecustomize.py").write_text(
            f"import sys\nsys.path.insert(0, {paths[0]!r})\n"
            "from benchmarks.inventory import install_trace\ninstall_trace()\n"
        )
        paths.insert(0, str(hook))
        env[TRACE_ENV] = str(trace)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, os.environ.get("PYTHONPATH", "")]))
    return env


def install_trace() -> None:
    """Wrap the inventory flow's stages with wall-clock notes, written to `$OMNISTREAM_BENCH_TRACE`.

    Notes are `(stage, start, end, items, probes)`; kept in memory and written
    after each sink write (one write per Bytewax cycle), since the flow exits
    abruptly when stopped. Costs per batch, plus a prefix test per polled
    message to find the probes; the traced flow is a little slower than the
    untraced one, so its lag figures come from untraced runs.
    """
    import threading

    from events.stock import SkuStock
    from flows import decoding, inventory, kafka_source, sinks

    fd = os.open(os.environ[TRACE_ENV], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    notes: list[tuple[Any, ...]] = []
    lock = threading.Lock()
    now = time.time

    def flush() -> None:
        with lock:
            lines, notes[:] = b"".join(orjson.dumps(n) + b"\n" for n in notes), []
        os.write(fd, lines)

    def timed(cls: Any, name: str, stage: str, probes_of: Any = None, then: Any = None) -> None:
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = now()
            result = original(self, *args, **kwargs)
            items = args[0] if args and isinstance(args[0], list) else ()
            notes.append((stage, started, now(), len(items), probes_of(self, items, result) if probes_of else []))
            if then is not None:
                then()
            return result

        setattr(cls, name, wrapper)

    def polled_probes(consumer: Any, _items: Any, _result: Any) -> list[str]:
        found = []
        for buffer in consumer._buffers.values():
            for record in buffer:
                if record.value is not None and record.value.startswith(b'{"event_id":"probe-'):
                    found.append(orjson.loads(record.value)["sku"])
        return found

    def written_probes(_sink: Any, items: list[Any], _result: Any) -> list[str]:
        return [i.sku for i in items if type(i) is SkuStock and i.sku.startswith("PROBE-")]

    timed(kafka_source._SharedConsumer, "_poll", "poll", polled_probes)
    timed(decoding.BatchDecoder, "decode_batch", "decode")
    timed(inventory.SkuRouter, "group", "route")
    timed(inventory._JournalStep, "on_batch", "journal")
    timed(inventory._LedgerStep, "on_batch", "ledger")
    timed(inventory._JournalStep, "snapshot", "snapshot")
    timed(inventory._LedgerStep, "snapshot", "snapshot")
    timed(sinks._RecordSinkPartition, "_write_redis", "redis")
    timed(sinks._RecordSinkPartition, "_flush_kafka", "kafka_flush")
    timed(sinks._RecordSinkPartition, "write_batch", "sink", written_probes, flush)

    collecting: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[:] = [now()]
        elif collecting:
            notes.append(("gc", collecting[0], now(), info.get("generation", -1), []))

    gc.callbacks.append(on_gc)


_STAGES = ("decode", "route", "journal", "ledger", "snapshot", "gc", "sink")


def trace_breakdown(trace: Path, timed: list[tuple[str, float, float]]) -> dict[str, Any]:
    """Where each probe's time went, from the flow's notes: median probe and the slowest 2 %, in ms.

    Per probe: `to_poll` (published -> in the flow's poll: producer, broker,
    fetch, and the flow finishing the cycle it was in), `in_flow` (poll -> its
    cycle's sink write starts), `redis` (its sink's Redis pipeline),
    `notify` (written -> the benchmark sees the keyspace notification), and
    `kafka_flush_after` (alerts/dead letters acknowledged after the Redis write:
    not in the probe's lag, but in the next cycle's); and how
    much of the probe's whole window each stage of the flow was busy
    (`busy_<stage>`, summed over every batch in the window).
    """
    notes = [orjson.loads(line) for line in trace.read_bytes().splitlines() if line.strip()]
    polled = {sku: start for stage, start, _, _, probes in notes if stage == "poll" for sku in probes}
    sinks = {sku: (start, end) for stage, start, end, _, probes in notes if stage == "sink" for sku in probes}
    writes = sorted((start, end) for stage, start, end, *_ in notes if stage == "redis")
    flushes = sorted((start, end) for stage, start, end, *_ in notes if stage == "kafka_flush")
    by_stage: dict[str, list[tuple[float, float]]] = {}
    for stage, start, end, *_ in notes:
        by_stage.setdefault(stage, []).append((start, end))

    def within(stage: str, low: float, high: float, spans: list[tuple[float, float]] | None = None) -> float:
        return sum(max(0.0, min(end, high) - max(start, low)) for start, end in (spans or by_stage.get(stage, [])))

    rows = []
    for sku, sent, seen in timed:
        if sku not in polled or sku not in sinks:
            continue
        sink_start, sink_end = sinks[sku]
        written = max((end for start, end in writes if sink_start <= start <= sink_end), default=sink_end)
        row = {"total": seen - sent, "to_poll": polled[sku] - sent, "in_flow": sink_start - polled[sku],
               "redis": within("", sink_start, sink_end, writes),
               "kafka_flush_after": within("", sink_start, sink_end, flushes),
               "notify": seen - written}  # fmt: skip
        row |= {f"busy_{stage}": within(stage, sent, sink_start) for stage in _STAGES}
        rows.append(row)
    rows.sort(key=lambda row: row["total"])
    if not rows:
        return {}

    def mean_ms(part: list[dict[str, float]]) -> dict[str, float]:
        return {key: round(1000 * statistics.fmean(row[key] for row in part), 2) for key in part[0]}

    middle = rows[len(rows) * 45 // 100 : len(rows) * 55 // 100 + 1]
    events = sum(items for stage, _, _, items, _ in notes if stage == "decode") or 1
    per_event_us = {stage: round(1e6 * sum(end - start for start, end in by_stage.get(stage, [])) / events, 2)
                    for stage in (*_STAGES, "redis", "kafka_flush")}  # fmt: skip
    return {"probes_traced": len(rows), "median_probe": mean_ms(middle),
            "slowest_2pct": mean_ms(rows[len(rows) * 98 // 100 :]), "events": events, "per_event_us": per_event_us,
            "batches": {stage: len(spans) for stage, spans in by_stage.items()}}  # fmt: skip


_SERVER_PIDS: dict[int, int] = {}
"""Port -> pid of each API server `start_api` started, for `separate_cores`."""
_SERVER_REDIS: dict[int, str] = {}
"""Port -> the Redis URL of each API server `start_api` started, for `redis_stalls`."""


def start_api(app: str, settings: Settings) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, **settings_env(settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import urllib.request

            urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=1).read()
            _SERVER_PIDS[port] = proc.pid
            _SERVER_REDIS[port] = settings.redis.url
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def api_headers(settings: Settings, role: str = "admin") -> dict[str, str]:
    """A bearer key for `role`, issued in the benchmark's Redis and not rate limited.

    The benchmarks drive the API as it is deployed, with auth on: a request without a key
    would be answered 401 at a fraction of the real cost and measure nothing.
    """
    client = redis.Redis.from_url(settings.redis.url)
    try:
        issued = KeyStore(client).create(role, "benchmark", rate_per_s=1e9)
    finally:
        client.close()
    return {"Authorization": f"Bearer {issued.key}"}


def api_figures(port: int, paths: list[str], duration_s: float, connections: int,
                headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Most requests/s (closed loop), then p50/p99 at half that rate (open loop); non-2xx answers count as errors.

    `gc_at_half_load`: the API process's garbage collections during the half-load run, by generation
    (count, total and pauses over 5 ms), from its `omnistream_api_gc_pause_seconds` histogram: a
    collection pauses every request in flight, so it is the first thing to rule out in a p99.
    """
    with separate_cores(_SERVER_PIDS.get(port)) as cores:
        peak = http_load.run(http_load.closed_loop("127.0.0.1", port, paths, connections, duration_s, headers))
        before = gc_pauses(port)
        with redis_stalls(_SERVER_REDIS.get(port)) as stalls:
            half = http_load.run(
                http_load.open_loop("127.0.0.1", port, paths, peak.rate / 2, duration_s, connections, headers)
            )
        after = gc_pauses(port)
    collections = {
        generation: {name: round(after[generation][name] - figures[name], 6) for name in figures}
        for generation, figures in before.items()
    }
    return {"max": peak.as_dict(), "half_load": half.as_dict(), "gc_at_half_load": collections,
            "redis_stalls_at_half_load": stalls, "cores": cores}  # fmt: skip


@contextlib.contextmanager
def redis_stalls(url: str | None, threshold_ms: int = 2) -> Any:
    """Redis's own pauses of `threshold_ms` or more while the block runs, from its latency monitor.

    Yields a dict filled on exit: per event (`command`, `expire-cycle`, `fast-command`, ...) the
    latest and the longest pause in ms. An endpoint's p99 at half load can be Redis's: a burst of
    keys expiring at once blocks every client for up to a quarter of each 100 ms cycle.
    """
    found: dict[str, dict[str, int]] = {}
    if url is None:
        yield found
        return
    client = redis.Redis.from_url(url)
    try:
        client.config_set("latency-monitor-threshold", threshold_ms)
        client.latency_reset()
        yield found
        for event, _, latest, longest in client.latency_latest():
            name = event.decode() if isinstance(event, bytes) else str(event)
            found[name] = {"latest_ms": int(latest), "max_ms": int(longest)}
        client.config_set("latency-monitor-threshold", 0)
    finally:
        client.close()


PIN_ENV = "OMNISTREAM_BENCH_PIN"


@contextlib.contextmanager
def separate_cores(server_pid: int | None) -> Any:
    """With `OMNISTREAM_BENCH_PIN=1`, for one endpoint measurement: the server on the last core, the load generator
    on the others (Redis where the scheduler puts it; both back on every core afterwards).

    Meant to keep the load generator's time slices out of the server's latency, as a client on
    another machine would. Off by default: in alternating rounds on the 2-core machine it made no
    consistent difference (docs/performance.md, "Measuring an endpoint on two cores"). Yields what
    was pinned, or `None`.
    """
    every = os.sched_getaffinity(0)
    if server_pid is None or len(every) < 2 or os.environ.get(PIN_ENV, "0") != "1":
        yield None
        return
    server_core = max(every)
    client_cores = every - {server_core}
    server_threads = [int(tid) for tid in os.listdir(f"/proc/{server_pid}/task")]
    for tid in server_threads:
        os.sched_setaffinity(tid, {server_core})
    os.sched_setaffinity(0, client_cores)  # this thread only: flows started later keep every core
    try:
        yield {"server": [server_core], "load_generator": sorted(client_cores)}
    finally:
        os.sched_setaffinity(0, every)
        for tid in server_threads:
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, every)


def gc_pauses(port: int) -> dict[str, dict[str, float]]:
    """Per generation: collections so far, their total seconds, and how many paused over 5 ms (from /metrics).

    Empty for a server without Omnistream's metrics (the bare baseline route, `benchmarks/bare_app.py`).
    """
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0)
    if answer.status_code != 200:
        return {}
    body = answer.text
    counts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    within_5ms: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        if family.name != "omnistream_api_gc_pause_seconds":
            continue
        for sample in family.samples:
            generation = sample.labels["generation"]
            if sample.name.endswith("_count"):
                counts[generation] = sample.value
            elif sample.name.endswith("_sum"):
                seconds[generation] = sample.value
            elif sample.name.endswith("_bucket") and sample.labels["le"] == "0.005":
                within_5ms[generation] = sample.value
    return {
        generation: {"count": n, "seconds": seconds.get(generation, 0.0), "over_5ms": n - within_5ms.get(generation, n)}
        for generation, n in counts.items()
    }


def api_comparison(settings: Settings, skus: list[str], duration_s: float, connections: int,
                   rounds: int) -> dict[str, Any]:  # fmt: skip
    """(d): one API worker on the route under test and on the bare baseline, in alternating rounds.

    Each figure is the median over the rounds (A B A B ...): the machine is shared
    and drifts, and alternating keeps the comparison pair by pair.
    """
    apps = {"inventory_route": ("serving.app:create_app", "/v1/inventory/"),
            "bare_route": ("benchmarks.bare_app:create_app", "/bare/")}  # fmt: skip
    servers = {name: start_api(app, settings) for name, (app, _) in apps.items()}
    headers = api_headers(settings, "storefront")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
    try:
        for _ in range(rounds):
            for name, (_, prefix) in apps.items():
                runs[name].append(api_figures(servers[name][1], [prefix + sku for sku in skus], duration_s,
                                              connections, headers))  # fmt: skip
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)

    def median_of(name: str, phase: str, field: str) -> float:
        return float(statistics.median(run[phase][field] for run in runs[name]))

    return {
        name: {
            phase: {field: median_of(name, phase, field) for field in ("rate", "p50_ms", "p99_ms", "max_ms", "errors")}
            | ({"offered_rate": median_of(name, phase, "offered_rate")} if phase == "half_load" else {})
            for phase in ("max", "half_load")
        }
        | {"rounds": runs[name]}
        for name in apps
    }


def _variant(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME[@DIR]:FIELD=VALUE,...` -> (NAME, settings update), values parsed as JSON when they parse.

    `@DIR` runs that variant's flow with the code of the checkout in DIR (kept under `_code`).
    """
    head, _, assignments = text.partition(":")
    name, _, code = head.partition("@")
    update: dict[str, Any] = {}
    for assignment in filter(None, assignments.split(",")):
        field_name, _, value = assignment.partition("=")
        try:
            update[field_name] = orjson.loads(value)
        except orjson.JSONDecodeError:
            update[field_name] = value
    if code:
        update["_code"] = Path(code).resolve()
    return name, update


def enough_records(records: list[tuple[Topic, bytes | None, bytes]], needed: float,
                   seed: int) -> list[tuple[Topic, bytes | None, bytes]]:  # fmt: skip
    """`records`, or a longer stream of the same workload when the lag tests need more than it holds."""
    if int(needed) + 1 <= len(records):
        return records
    console.print(f"generating {int(needed) + 1:,} events for the offered load ...")
    records = workload_records(int(needed) + 1, seed)
    freeze_gc()
    return records


def lag_experiment(args: argparse.Namespace, variants: dict[str, dict[str, Any]],
                   records: list[tuple[Topic, bytes | None, bytes]], fresh_topics: Any) -> None:  # fmt: skip
    """(c) alone: the live rate (unless `--lag-rate`), then the flow's lag at the lag rate, per variant, alternating.

    Alternating the variants round by round keeps each comparison within the
    same stretch of a shared machine's load (docs/performance.md).
    """
    live = None
    rate: float = args.lag_rate
    if args.lag_rate is None:
        console.print("(c) sustained live throughput ...")
        live = live_throughput(fresh_topics(), records)
        rate = live / 2
    records = enough_records(records, rate * args.lag_seconds, args.seed)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for round_ in range(args.lag_rounds):
        for name, update in variants.items():
            console.print(f"(c) round {round_ + 1}, {name}: lag at {rate:,.0f} ev/s for {args.lag_seconds:.0f} s ...")
            code = update.get("_code")
            settings = fresh_topics({k: v for k, v in update.items() if k != "_code"})
            trace = settings.recovery.dir.with_suffix(".trace.jsonl") if args.trace else None
            runs[name].append(end_to_end_lag(settings, records, rate, args.lag_seconds, args.load_linger_ms, trace,
                                             code))  # fmt: skip
    table = Table(title=f"Inventory end-to-end lag at {rate:,.0f} ev/s"
                        + (f" (half of the live {live:,.0f} ev/s)" if live else ""))  # fmt: skip
    for column in ("variant", "round", "probes", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, figures in runs.items():
        for index, run in enumerate(figures, 1):
            table.add_row(name, str(index), str(run["probes"]), f"{run['p50_ms']:.1f}", f"{run['p90_ms']:.1f}",
                          f"{run['p99_ms']:.1f}", f"{run['max_ms']:.1f}")  # fmt: skip
    console.print(table)
    if args.trace:
        print_breakdown(runs)
    if args.out is not None:
        result = {"benchmark": "inventory-lag", "command": "python benchmarks/inventory.py " + " ".join(sys.argv[1:]),
                  "when": datetime.now(UTC).isoformat(timespec="seconds"), "live_sustained_events_per_s": live,
                  "offered_rate": rate, "load_linger_ms": args.load_linger_ms,
                  "variants": {name: {"settings": {k: str(v) for k, v in variants[name].items()},
                                      "rounds": runs[name]}
                               for name in variants}}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


def throughput_experiment(args: argparse.Namespace, variants: dict[str, dict[str, Any]], settings: Settings,
                          n_events: int) -> None:  # fmt: skip
    """(a) and (b) with 1 process alone, per variant, alternating round by round; each round beside a raw ceiling."""
    rows = []
    for round_ in range(args.flow_rounds):
        raw = raw_ceiling(settings, n_events)
        for name, update in variants.items():
            console.print(f"(b) round {round_ + 1}, {name} ...")
            flow_settings = settings.model_copy(update={k: v for k, v in update.items() if k != "_code"})
            rate = flow_throughput(flow_settings, n_events, update.get("_code"))["events_per_s"]
            rows.append((name, round_ + 1, raw, rate))
    table = Table(title=f"Inventory flow over a backlog of {n_events:,} events, 1 process")
    for column in ("variant", "round", "raw ceiling ev/s", "flow ev/s", "ratio"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, index, raw, rate in rows:
        table.add_row(name, str(index), f"{raw:,.0f}", f"{rate:,.0f}", f"{rate / raw:.2f}")
    console.print(table)
    for name in variants:
        ratios = sorted(rate / raw for n, _, raw, rate in rows if n == name)
        console.print(f"{name}: median ratio to the raw ceiling {ratios[len(ratios) // 2]:.2f}")


def print_breakdown(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Per variant and round: the median probe's and the slowest 2 %'s time, part by part (`trace_breakdown`)."""
    traced = [(name, index, run["breakdown"]) for name, figures in runs.items()
              for index, run in enumerate(figures, 1) if run.get("breakdown")]  # fmt: skip
    if not traced:
        return
    parts = list(traced[0][2]["median_probe"])
    table = Table(title="Where a probe's time goes, ms (busy_*: a stage's work inside the probe's window)")
    table.add_column("run")
    for part in parts:
        table.add_column(part.replace("busy_", "b_"), justify="right")
    for name, index, breakdown in traced:
        for which, label in (("median_probe", "median"), ("slowest_2pct", "worst 2%")):
            table.add_row(f"{name} {index} {label}", *(f"{breakdown[which][part]:.1f}" for part in parts))
    console.print(table)
    for name, index, breakdown in traced:
        costs = ", ".join(f"{k} {v:.1f}" for k, v in breakdown["per_event_us"].items())
        console.print(f"{name} {index}: flow time per input event, us: {costs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lag-seconds", type=float, default=45.0,
                        help="offered load per lag test: long enough to hold a recovery snapshot (every 30 s by "
                             "default), whose pause is part of the lag")  # fmt: skip
    parser.add_argument("--low-rate", type=float, default=2000.0, help="the second, modest rate of the lag test")
    parser.add_argument("--load-linger-ms", type=int, default=DEFAULT_LINGER_MS,
                        help="offered load batching (librdkafka linger.ms); simulator default")  # fmt: skip
    parser.add_argument("--api-seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--api-rounds", type=int, default=5)
    parser.add_argument("--flow-rounds", type=int, default=3)
    parser.add_argument("--lag-only", action="store_true",
                        help="only (c): the live rate, then the lag at half of it (for lag experiments; the "
                             "results go to --out only when it is given)")  # fmt: skip
    parser.add_argument("--lag-rate", type=float, default=None,
                        help="offer this rate in the lag tests instead of half the measured live rate")  # fmt: skip
    parser.add_argument(
        "--lag-rounds",
        type=int,
        default=1,
        help="flow lag tests at the lag rate, each on fresh topics (the table shows each one)",
    )
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[@DIR]:FIELD=VALUE[,FIELD=VALUE]",
                        help="with --lag-only or --throughput-only: also run the flow with these settings changed, "
                             "alternating with the unchanged flow round by round (e.g. "
                             "'small:kafka_batch_size=500'); @DIR: with the code of the checkout in DIR")  # fmt: skip
    parser.add_argument(
        "--trace",
        action="store_true",
        help="with --lag-only: time each stage of the flow and show where the probes' time went",
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only (a) and (b) with 1 process, per --variant, alternating for --flow-rounds rounds",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None and not (args.lag_only or args.throughput_only):
        args.out = RESULTS
    variants: dict[str, dict[str, Any]] = {"base": {}} | dict(_variant(text) for text in args.variant)

    broker: LocalService = start_broker()
    store: LocalService = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-bench-"))
    try:
        base = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_prefix="bench.",
                        topic_partitions=4, recovery_dir=workdir / "recovery", flow_metrics_port=0)  # fmt: skip
        console.print(f"generating {args.events:,} events ...")
        records = workload_records(args.events, args.seed)
        freeze_gc()
        fresh = iter(range(1, 1000))

        def fresh_topics(update: dict[str, Any] | None = None) -> Settings:
            n = next(fresh)
            fresh_settings = base.model_copy(update={"topic_prefix": f"live{n}.", "redis_url": store.address[:-1] + "2",
                                                     "recovery_dir": workdir / f"recovery-live{n}",
                                                     **(update or {})})  # fmt: skip
            create_topics(fresh_settings.kafka.brokers, fresh_settings.topic.prefix, fresh_settings.topic.partitions)
            return fresh_settings

        if args.lag_only:
            lag_experiment(args, variants, records, fresh_topics)
            return
        create_topics(base.kafka.brokers, base.topic.prefix, base.topic.partitions)
        _offer(base, records, None)
        if args.throughput_only:
            throughput_experiment(args, variants, base, len(records))
            return

        console.print("(a) raw ceiling ...")
        raw = statistics.median(raw_ceiling(base, len(records)) for _ in range(3))
        console.print(f"(b) flow, 1 process, then 2 processes x 1 worker, alternating, {args.flow_rounds} rounds ...")
        two_settings = base.model_copy(update={"processes": 2, "workers": 1, "redis_url": store.address[:-1] + "1",
                                               "recovery_dir": workdir / "recovery-2"})  # fmt: skip
        one_runs, two_runs = [], []
        for _ in range(args.flow_rounds):
            one_runs.append(flow_throughput(base, len(records)))
            two_runs.append(flow_throughput(two_settings, len(records)))
        one, two = median_run(one_runs), median_run(two_runs)

        console.print("(d) API against the bare route ...")
        client = redis.Redis.from_url(base.redis.url)
        skus = sorted(k.decode().split("{", 1)[1].rstrip("}") for k in client.scan_iter(keys.stock("*"), count=1000))
        api = api_comparison(base, skus[:2000], args.api_seconds, args.connections, args.api_rounds)

        console.print("(c) sustained live throughput, then end-to-end lag at half of it ...")
        live = live_throughput(fresh_topics(), records)
        rate = args.lag_rate or live / 2
        records = enough_records(records, max(rate, args.low_rate) * args.lag_seconds, args.seed)
        console.print("(c) the same load and probes through the broker alone ...")
        broker_alone = broker_lag(fresh_topics(), records, rate, args.lag_seconds, args.load_linger_ms)
        console.print("(c) ... and through the flow")
        lag = end_to_end_lag(fresh_topics(), records, rate, args.lag_seconds, args.load_linger_ms)
        low_lag = end_to_end_lag(fresh_topics(), records, args.low_rate, args.lag_seconds, args.load_linger_ms)
    except Exception:
        for log in workdir.glob("*.log"):
            console.print(f"[red]{log.name}[/red]: {log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        broker.stop()
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    inv, bare = api["inventory_route"], api["bare_route"]
    result = {
        "benchmark": "inventory",
        "command": "python benchmarks/inventory.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "events": args.events,
        "raw_ceiling_events_per_s": raw,
        "flow_1_process": one,
        "flow_2_processes": two,
        "flow_1_process_ratio_to_raw": one["events_per_s"] / raw,
        "flow_2_processes_ratio_to_raw": two["events_per_s"] / raw,
        "flow_2_processes_per_worker_ratio_to_raw": two["events_per_s"] / 2 / raw,
        "live_sustained_events_per_s": live,
        "load_linger_ms": args.load_linger_ms,
        "lag": lag,
        "lag_broker_alone": broker_alone,
        "lag_low_rate": low_lag,
        "api": api,
        "api_max_ratio_to_bare": inv["max"]["rate"] / bare["max"]["rate"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))

    table = Table(title=f"Inventory benchmark ({args.events:,} events, {os.cpu_count()} cores)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("vs baseline", justify="right")
    table.add_row("(a) raw ceiling: consume + orjson", f"{raw:,.0f} ev/s", "1.00")
    table.add_row("(b) flow, 1 process", f"{one['events_per_s']:,.0f} ev/s", f"{one['events_per_s'] / raw:.2f}")
    table.add_row("(b) flow, 2 processes x 1 worker", f"{two['events_per_s']:,.0f} ev/s",
                  f"{two['events_per_s'] / raw:.2f}")  # fmt: skip
    table.add_row("(c) flow while producer + broker run beside it", f"{live:,.0f} ev/s",
                  f"{live / raw:.2f}")  # fmt: skip
    for name, figures in (("lag", lag), ("broker alone", broker_alone), ("lag", low_lag)):
        table.add_row(f"(c) {name} at {figures['offered_rate']:,.0f} ev/s for {figures['offered_s']:.0f} s, p50 / p99",
                      f"{figures['p50_ms']:.1f} / {figures['p99_ms']:.1f} ms", "")  # fmt: skip
    for name, figures in (("inventory route", inv), ("bare HGETALL route", bare)):
        table.add_row(f"(d) {name}: max", f"{figures['max']['rate']:,.0f} req/s",
                      f"{figures['max']['rate'] / bare['max']['rate']:.2f}")  # fmt: skip
        half = figures["half_load"]
        table.add_row(f"(d) {name}: at {half['offered_rate']:,.0f} req/s, p50 / p99",
                      f"{half['p50_ms']:.2f} / {half['p99_ms']:.2f} ms", "")  # fmt: skip
    console.print(table)
    console.print(f"results: {args.out}")


if __name__ == "__main__":
    main()
