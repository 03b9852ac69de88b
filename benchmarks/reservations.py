"""Reservations and fulfilment options benchmark: decision latency of a hold, endpoint latency at half its max rate.

Everything runs on private services (a fresh in-memory Tansu broker and a
diskless redis-server on free ports), with the deployed pieces: the inventory
flow (`flows.inventory.build_flow`, one process, recovery on, snapshots every
30 s as by default) tailing its topics, and the API (`serving.app`, one
uvicorn worker) in its own process.

(a) Reservation decision latency: `POST /v1/reservations` at a fixed rate
    while the simulator's inventory traffic flows beside it at a modest rate;
    for each reservation, the time from sending the POST to the first
    `GET /v1/reservations/{id}` that shows it held or rejected (polled every
    `--poll-ms`, or a tenth of the time waited so far when that is longer, so the
    figure carries up to one poll interval of overshoot: a few ms, at most a
    tenth of a slow decision; a fixed 2-ms poll of every pending reservation
    multiplied this client's requests at high rates),
    p50 / p99 / max, for `--hold-seconds` (longer than a snapshot interval:
    the flow pauses while it snapshots, and that pause is part of the latency).
(b) `GET /v1/fulfilment/options` on one API worker: the maximum requests/s
    (closed loop), then p50 / p99 at half that rate (open loop), single-line
    and three-line orders over many SKUs, with the flow stopped (the endpoint
    reads Redis only).

Run: `python benchmarks/reservations.py`; results go to
`benchmarks/results/reservations.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.inventory import FLOW_TOPICS, api_figures, api_headers, start_api, workload_records
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.launcher import start_flow
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import start_broker, start_redis
from sim.publish import KafkaPublisher
from sim.record import SimRecord
from state import keys

RESULTS = Path(__file__).resolve().parent / "results" / "reservations.json"
STORES = [f"STORE-{n:02d}" for n in range(1, 21)]
WAREHOUSES = ["WH-01", "WH-02", "WH-03"]
SHIP_COSTS = ",".join(
    [f"{store}:north={1.0 + n % 5}" for n, store in enumerate(STORES)]
    + [f"{wh}:north={4.0 + n}" for n, wh in enumerate(WAREHOUSES)]
)
console = Console()


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": ordered[-1]}


def seed_stock(settings: Settings, skus: list[str]) -> None:
    """Receipts of every SKU at every location, published and waited for until the flow has them all."""
    now = time.time() - 60
    records = []
    for n, sku in enumerate(skus):
        for location in (*STORES, *WAREHOUSES):
            event = {"event_id": f"seed-{sku}-{location}", "type": "receipt", "ts": rfc3339_ms(now),
                     "schema_version": 1, "sku": sku, "location_id": location, "qty": 5 + (n % 40)}  # fmt: skip
            records.append(SimRecord(Topic.INVENTORY, sku.encode(), orjson.dumps(event)))
    KafkaPublisher(settings.kafka.brokers).publish(records, {t: settings.topic(t) for t in Topic})
    client = redis.Redis.from_url(settings.redis.url)
    deadline = time.monotonic() + 120
    while client.hget(keys.stock(skus[-1]), keys.DOC_FIELD) is None or any(
        client.hget(keys.stock(sku), keys.DOC_FIELD) is None for sku in skus[:: max(1, len(skus) // 20)]
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the flow did not take the seed stock in 120 s")
        time.sleep(0.2)


def background_traffic(settings: Settings, rate: float, seconds: float, stop: threading.Event) -> threading.Thread:
    """The simulator's inventory-flow traffic at `rate` events/s, in a thread, beside the reservations."""
    records = workload_records(int(rate * seconds) + 1, seed=11)

    def offer() -> None:
        publisher = KafkaPublisher(settings.kafka.brokers)
        publisher.publish((SimRecord(t, k, v) for t, k, v in records if not stop.is_set()),
                          {t: settings.topic(t) for t in FLOW_TOPICS}, rate=rate)  # fmt: skip

    thread = threading.Thread(target=offer, daemon=True)
    thread.start()
    return thread


BACKOFF_SHARE = 0.1
"""A pending reservation is polled again after this share of the time waited so far (at least `--poll-ms`)."""

Decisions = tuple[list[float], list[float], dict[str, int], list[dict[str, Any]]]
"""Decision latencies (ms), POST latencies (ms), outcomes counted, the reservations undecided after 30 s."""


async def decision_latencies(url: str, headers: dict[str, str], skus: list[str], rate: float, seconds: float,
                             poll_s: float) -> Decisions:  # fmt: skip
    """POST at `rate`/s for `seconds`; per reservation, ms from sending the POST to a GET showing the decision.

    Also each POST's own time (sent -> 202, which waits for the broker's acknowledgement): the
    part of a decision's latency spent before the flow can see the event at all; and the
    reservations still undecided after 30 s, for `trace_undecided`.
    """
    latencies: list[float] = []
    posts: list[float] = []
    outcomes: dict[str, int] = {}
    undecided: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=30.0, headers=headers,
                                 limits=httpx.Limits(max_connections=64)) as client:  # fmt: skip

        async def one(n: int) -> None:
            sku, store = skus[n % len(skus)], STORES[n % len(STORES)]
            body = orjson.dumps({"sku": sku, "location_id": store, "qty": 1, "hold_s": 600})
            sent = time.perf_counter()
            response = await client.post("/v1/reservations", content=body,
                                          headers={"Idempotency-Key": f"bench-{n}",
                                                   "content-type": "application/json"})  # fmt: skip
            posts.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 202:
                outcomes[f"http_{response.status_code}"] = outcomes.get(f"http_{response.status_code}", 0) + 1
                return
            path = f"/v1/reservations/{response.json()['reservation_id']}"
            while True:
                status = (await client.get(path)).json()["status"]
                if status != "pending":
                    latencies.append((time.perf_counter() - sent) * 1000)
                    outcomes[status] = outcomes.get(status, 0) + 1
                    return
                if time.perf_counter() - sent > 30:
                    outcomes["undecided_30s"] = outcomes.get("undecided_30s", 0) + 1
                    undecided.append({"n": n, "reservation_id": path.rsplit("/", 1)[1], "sku": sku,
                                      "location_id": store, "posted_s": round(sent - start, 3)})  # fmt: skip
                    return
                await asyncio.sleep(max(poll_s, BACKOFF_SHARE * (time.perf_counter() - sent)))

        tasks = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return latencies, posts, outcomes, undecided


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def trace_undecided(settings: Settings, undecided: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where each undecided reservation got to: its Redis hash, its event in the topic, the flow's health.

    A reservation the API answered 202 for was published (the broker acknowledged it); one the flow
    never decided is either not in the topic, or in it and not applied, or applied and not written.
    """
    client = redis.Redis.from_url(settings.redis.url)
    topic = settings.topic(Topic.INVENTORY)
    wanted = {item["reservation_id"].encode(): item for item in undecided}
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "bench-trace",
                         "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    try:
        for item in undecided:
            stored = client.hgetall(keys.reservation(item["reservation_id"]))
            item["redis"] = {_text(k): _text(v) for k, v in stored.items()}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.topic.partitions)])
        at_end: set[int] = set()
        while len(at_end) < settings.topic.partitions:
            msg = consumer.poll(5.0)
            if msg is None:
                break
            if msg.error() is not None:
                at_end.add(msg.partition() or 0)
                continue
            value = msg.value() or b""
            for rid, item in wanted.items():
                if rid in value:
                    item.setdefault("in_topic", []).append({"partition": msg.partition(), "offset": msg.offset()})
        health = client.hgetall(keys.flow_health())
        beats = {_text(k): orjson.loads(v) for k, v in health.items()}
        for item in undecided:
            item["flow_health"] = {name: {f: beat.get(f) for f in ("consumer_lag", "consumer_lag_by_topic", "records")}
                                   for name, beat in beats.items()}  # fmt: skip
    finally:
        consumer.close()
        client.close()
    return undecided


def fulfilment_figures(port: int, headers: dict[str, str], skus: list[str], seconds: float,
                       connections: int) -> dict[str, Any]:  # fmt: skip
    single = [f"/v1/fulfilment/options?sku={sku}&qty=2&ship_to=north" for sku in skus]
    multi = [f"/v1/fulfilment/options?lines={a}:1,{b}:2,{c}:1&ship_to=north"
             for a, b, c in zip(skus, skus[1:], skus[2:], strict=False)]  # fmt: skip
    return {name: api_figures(port, paths, seconds, connections, headers)
            for name, paths in (("single_line", single), ("three_lines", multi))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="reservations per second")
    parser.add_argument("--hold-seconds", type=float, default=45.0, help="how long reservations are offered")
    parser.add_argument("--background-rate", type=float, default=2000.0, help="simulator events/s beside them")
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument("--api-seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    broker, store = start_broker(), start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-bench-rsv-"))
    try:
        settings = Settings(kafka_brokers=broker.address, redis_url=store.address, topic_prefix="bench.",
                            topic_partitions=4, recovery_dir=workdir / "recovery", flow_metrics_port=0,
                            fulfilment_ship_costs=SHIP_COSTS)  # fmt: skip
        create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
        skus = [f"SKU-{n:05d}" for n in range(args.skus)]
        run = start_flow("inventory", settings, stdout=sys.stderr, stderr=sys.stderr)
        api, port = start_api("serving.app:create_app", settings)
        headers = api_headers(settings, "storefront")
        try:
            console.print(f"seeding {len(skus)} SKUs x {len(STORES) + len(WAREHOUSES)} locations ...")
            seed_stock(settings, skus)
            console.print(f"(a) {args.rate:g} reservations/s for {args.hold_seconds:g} s beside "
                          f"{args.background_rate:g} simulator events/s ...")  # fmt: skip
            stop = threading.Event()
            traffic = background_traffic(settings, args.background_rate, args.hold_seconds + 5, stop)
            offered = decision_latencies(f"http://127.0.0.1:{port}", headers, skus, args.rate, args.hold_seconds,
                                         args.poll_ms / 1000)  # fmt: skip
            latencies, posts, outcomes, undecided = asyncio.run(offered)
            stop.set()
            traffic.join(30)
            post = _percentiles(posts)
            decision: dict[str, Any] = _percentiles(latencies) | {"outcomes": outcomes, "post": post}
            if undecided:
                decision["undecided"] = trace_undecided(settings, undecided)
                console.print(f"undecided after 30 s: {decision['undecided']}")
            run.stop()  # the endpoint reads Redis only: the flow's backlog must not share the cores with it
            console.print("(b) GET /v1/fulfilment/options ...")
            fulfilment = fulfilment_figures(port, headers, skus, args.api_seconds, args.connections)
        finally:
            api.terminate()
            api.wait(10)
            run.stop()
    finally:
        broker.stop()
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title="Reservation decision (POST -> held/rejected readable), ms")
    for column in ("reservations", "p50", "p90", "p99", "max", "outcomes"):
        table.add_column(column, justify="right")
    table.add_row(str(decision["n"]), *(f"{decision[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                  ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))  # fmt: skip
    table.add_row("of which the POST", *(f"{post[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")), "")
    console.print(table)
    table = Table(title="GET /v1/fulfilment/options, one API worker")
    for column in ("order", "max req/s", "half-load req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right")
    for name, figures in fulfilment.items():
        half = figures["half_load"]
        table.add_row(name, f"{figures['max']['rate']:,.0f}", f"{half['rate']:,.0f}", f"{half['p50_ms']:.2f}",
                      f"{half['p99_ms']:.2f}", str(half["errors"] + figures["max"]["errors"]))  # fmt: skip
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "params": {k: str(v) for k, v in vars(args).items()},
        "decision_latency": decision,
        "fulfilment_options": fulfilment,
    }, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))  # fmt: skip
    console.print(f"results: {args.out}")


if __name__ == "__main__":
    main()
