"""Demand forecasts on a real retail log, read through the API, against the protocol's baselines.

The log: a UK online retailer's invoices, Dec 2010 - Aug 2011 (`--data`, a CSV with
`InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`). Its README
sets the protocol, followed here as written: daily units sold per product code (sales lines only: no
`C` invoices, quantity and unit price above 0, product codes of five digits and up to two letters),
all countries as one location; a forecast origin every Sunday from 2011-07-03 to 2011-08-21, the
next 7 days; in scope at an origin, the products sold in the 8 weeks up to it; only data dated on or
before the origin used. WAPE = sum|forecast - actual| / sum actual, per SKU-day, SKU-week (the main
figure), total-day and total-week.

What runs: each invoice becomes one `purchase` event (its lines, fulfilled at location `UK`,
dated at its local UK time), replayed in event-time order through the deployed demand flow
(`flows.demand.build_flow`, its Redis sink, recovery on), stopping after each origin's day has
closed; the forecasts for the next 7 days are then read from the API (`GET /v1/forecasts/{sku}`,
a uvicorn process of `serving.app`) for every product in scope, and the rising items from
`GET /v1/forecasts/rising`. The flow runs twice (fresh Redis and recovery each time): as configured, then
with the global online model (`OMNISTREAM_DEMAND_GLOBAL_MODEL`) switched the other way, so that what
it changes is measured in one run (`--no-global-model`: once). In the same run, on the same data and
scope: same weekday last week, mean of the last 28 days, and `statsforecast` models refit at each
origin on the last 365 days (CrostonOptimized, TSB 0.2/0.2, ADIDA, SeasonalWindowAverage 7x4, AutoETS without season).

Also (each its own flag): `--throughput` (events/s of the flow on one worker, on the log and on
a dense synthetic stream), `--memory` (bytes per series held by the models step at 1M SKU x
location series, and the snapshot sizes of both steps), `--snapshots` (bytes Bytewax's recovery
store takes per epoch per step on a live-like stream: a filled week of orders, then a small batch
per epoch), `--api` (the forecast endpoint's max rate and p99 at half of it).

    pip install -e '.[forecast-bench]'   # statsforecast and pandas, for the batch baselines only
    python benchmarks/forecast.py --data ../shared/data/online-retail-dev/online_retail_2010-12_2011-08.csv.gz

Writes `benchmarks/results/forecast.json` and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import multiprocessing
import pickle
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import orjson
import redis
from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSource, run_main
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/forecast.py` from the repo

from benchmarks.epoch_feed import DropSink, EpochFeed, OneFeed
from benchmarks.inventory import api_figures, start_api
from events.topics import Topic
from flows import demand_stages
from flows.collector import tune_for_tailing_flow
from flows.demand import build_flow
from flows.demand_stages import DaysLogic, ModelsLogic
from flows.kafka_source import KafkaRecord
from flows.launcher import ensure_recovery
from flows.registry import STATE_FORMATS
from omnistream.settings import Settings
from omnistream.stack import LocalService, start_broker, start_redis
from operators.demand.days import DayClose, DaysOutput, Demand, Tick
from operators.demand.locations import LocalDays, day_number

LOCATION = "UK"
LOCATIONS = f"{LOCATION}=Europe/London,GB-ENG,7,0.95"
"""`OMNISTREAM_DEMAND_LOCATIONS` of every demand benchmark: the one location, its zone, holidays, lead time, service."""
LONDON = ZoneInfo("Europe/London")
PRODUCT = re.compile(r"^\d{5}[A-Za-z]{0,2}$")
ORIGINS = [date(2011, 7, 3) + timedelta(weeks=k) for k in range(8)]
SCOPE_DAYS = 56
HORIZON = 7
RESULTS = Path(__file__).resolve().parent / "results" / "forecast.json"
STREAM = "stream (demand flow, via the API)"
STREAM_GLOBAL = "stream + global model (river)"
STREAM_PLAIN = "stream without the global model"
DEFAULT_DATA = Path("../shared/data/online-retail-dev/online_retail_2010-12_2011-08.csv.gz")


@dataclass(frozen=True, slots=True)
class Invoice:
    number: str
    ts: float
    lines: list[tuple[str, int, float]]


def load_invoices(path: Path) -> list[Invoice]:
    """The protocol's sales lines grouped per invoice, in event-time order (ties in file order)."""
    lines: dict[str, list[tuple[str, int, float]]] = {}
    stamps: dict[str, float] = {}
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            number = row["InvoiceNo"]
            qty, price = int(row["Quantity"]), float(row["UnitPrice"])
            if number.startswith("C") or qty <= 0 or price <= 0 or not PRODUCT.match(row["StockCode"]):
                continue
            if number not in stamps:
                local = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=LONDON)
                stamps[number] = local.timestamp()
            lines.setdefault(number, []).append((row["StockCode"], qty, price))
    invoices = [Invoice(number, stamps[number], items) for number, items in lines.items()]
    invoices.sort(key=lambda invoice: invoice.ts)
    return invoices


def purchase_record(settings: Settings, offset: int, invoice: Invoice) -> KafkaRecord:
    ts = datetime.fromtimestamp(invoice.ts, LONDON).isoformat(timespec="milliseconds")
    total = round(sum(q * p for _, q, p in invoice.lines), 2)
    event = {
        "event_id": f"inv-{invoice.number}",
        "type": "purchase",
        "ts": ts,
        "schema_version": 1,
        "session_id": f"s-{invoice.number}",
        "channel": "web",
        "order_id": invoice.number,
        "items": [{"sku": sku, "qty": qty, "unit_price": price} for sku, qty, price in invoice.lines],
        "total": total,
        "currency": "GBP",
        "fulfilment_location_id": LOCATION,
        "payment": {"method": "card", "card_token": "tok_0"},
    }
    return KafkaRecord(settings.topic(Topic.CLICKSTREAM), 0, offset, orjson.dumps(event))


def daily_actuals(invoices: Iterable[Invoice]) -> tuple[list[str], int, np.ndarray]:
    """SKUs, the first day number, and units sold per SKU per local day (a dense matrix)."""
    clock = LocalDays("Europe/London")
    cells: dict[tuple[str, int], float] = defaultdict(float)
    for invoice in invoices:
        day = clock.day(invoice.ts)
        for sku, qty, _ in invoice.lines:
            cells[sku, day] += qty
    skus = sorted({sku for sku, _ in cells})
    first = min(day for _, day in cells)
    last = max(day for _, day in cells)
    matrix = np.zeros((len(skus), last - first + 1))
    row = {sku: i for i, sku in enumerate(skus)}
    for (sku, day), units in cells.items():
        matrix[row[sku], day - first] = units
    return skus, first, matrix


# --- the stream, through the flow and the API --------------------------------------------------------------


def segments(records: list[KafkaRecord], invoices: list[Invoice], lateness_s: float) -> list[Any]:
    """The records with an EOF after the first record that closes each origin's day (its watermark passes it)."""
    clock = LocalDays("Europe/London")
    marks = [clock.end_of(day_number(origin)) + lateness_s for origin in ORIGINS]
    out: list[Any] = []
    pending = list(marks)
    for record, invoice in zip(records, invoices, strict=True):
        out.append(record)
        while pending and invoice.ts >= pending[0]:
            out.append(TestingSource.EOF())
            pending.pop(0)
    return out


@dataclass
class StreamRun:
    forecasts: dict[date, dict[str, dict[str, Any]]]
    rising: dict[date, list[str]]
    as_of: dict[date, set[str]]
    flow_cpu_s: float
    flow_wall_s: float
    events: int


def run_stream(
    settings: Settings, items: list[Any], scope: dict[date, list[str]], api_port: int, recovery_dir: Path
) -> StreamRun:
    """Run the flow segment by segment (each stops at an EOF, state kept by recovery); read the API after each."""
    generation = ensure_recovery(recovery_dir, 1, STATE_FORMATS["demand"])
    recovery = RecoveryConfig(str(recovery_dir))
    forecasts: dict[date, dict[str, dict[str, Any]]] = {}
    rising: dict[date, list[str]] = {}
    as_of: dict[date, set[str]] = {}
    cpu = wall = 0.0
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10.0) as client:
        for origin in ORIGINS:
            began_cpu, began_wall = time.process_time(), time.perf_counter()
            run_main(
                build_flow(settings, generation, source=TestingSource(items, batch_size=500)),
                epoch_interval=timedelta(seconds=10),
                recovery_config=recovery,
            )
            cpu += time.process_time() - began_cpu
            wall += time.perf_counter() - began_wall
            got: dict[str, dict[str, Any]] = {}
            stamps: set[str] = set()
            for sku in scope[origin]:
                answer = client.get(f"/v1/forecasts/{sku}", params={"location_id": LOCATION, "days": HORIZON})
                if answer.status_code == 200:
                    doc = answer.json()
                    got[sku] = doc
                    stamps.add(doc["as_of"])
            forecasts[origin] = got
            as_of[origin] = stamps
            answer = client.get("/v1/forecasts/rising", params={"location_id": LOCATION, "limit": 20})
            rising[origin] = [item["sku"] for item in answer.json()["items"]] if answer.status_code == 200 else []
    # The last segment after the final origin is not needed for the protocol; the events counted are those run.
    events = sum(1 for item in items if isinstance(item, KafkaRecord))
    return StreamRun(forecasts, rising, as_of, cpu, wall, events)


# --- baselines ---------------------------------------------------------------------------------------------------


def baseline_forecasts(history: np.ndarray) -> dict[str, np.ndarray]:
    """The protocol's simple baselines on `history` (series x days up to the origin): 7 days each."""
    weeks = history[:, -28:].reshape(history.shape[0], 4, 7)
    return {
        "same weekday last week": history[:, -7:].copy(),
        "same weekday, mean of the last 4 weeks": weeks.mean(axis=1),
        "mean of the last 28 days": np.repeat(history[:, -28:].mean(axis=1, keepdims=True), HORIZON, axis=1),
        "zero": np.zeros((history.shape[0], HORIZON)),
    }


def statsforecast_forecasts(history: np.ndarray, origin: date) -> dict[str, np.ndarray]:
    """statsforecast's batch models, refit on the last 365 days of `history` (series x days)."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import ADIDA, TSB, AutoETS, CrostonOptimized, SeasonalWindowAverage

    window = history[:, -365:]
    n, t = window.shape
    dates = pd.date_range(end=pd.Timestamp(origin), periods=t, freq="D")
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(n), t), "ds": np.tile(dates, n), "y": window.ravel()})
    models = {
        "CrostonOptimized": CrostonOptimized(),
        "TSB (0.2 / 0.2)": TSB(alpha_d=0.2, alpha_p=0.2),
        "ADIDA": ADIDA(),
        "SeasonalWindowAverage (7 x 4)": SeasonalWindowAverage(season_length=7, window_size=4),
        "AutoETS (no season)": AutoETS(season_length=1),
    }
    fitted = StatsForecast(models=list(models.values()), freq="D", n_jobs=1).forecast(df=frame, h=HORIZON)
    fitted = fitted.sort_values(["unique_id", "ds"])
    out = {}
    for name, model in models.items():
        column = repr(model)
        out[name] = np.clip(fitted[column].to_numpy().reshape(n, HORIZON), 0, None)
    return out


# --- scoring -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    day_error: float = 0.0
    week_error: float = 0.0
    total_day_error: float = 0.0
    total_week_error: float = 0.0
    actual: float = 0.0
    inside: int = 0
    judged: int = 0

    def add(
        self, forecast: np.ndarray, actual: np.ndarray, lower: np.ndarray | None = None, upper: np.ndarray | None = None
    ) -> None:
        self.day_error += float(np.abs(forecast - actual).sum())
        self.week_error += float(np.abs(forecast.sum(axis=1) - actual.sum(axis=1)).sum())
        self.total_day_error += float(np.abs(forecast.sum(axis=0) - actual.sum(axis=0)).sum())
        self.total_week_error += abs(float(forecast.sum() - actual.sum()))
        self.actual += float(actual.sum())
        if lower is not None and upper is not None:
            self.inside += int(((actual >= lower - 1e-9) & (actual <= upper + 1e-9)).sum())
            self.judged += actual.size

    def figures(self) -> dict[str, float | None]:
        return {
            "sku_day": round(self.day_error / self.actual, 4),
            "sku_week": round(self.week_error / self.actual, 4),
            "total_day": round(self.total_day_error / self.actual, 4),
            "total_week": round(self.total_week_error / self.actual, 4),
            "interval_coverage": round(self.inside / self.judged, 4) if self.judged else None,
        }


def precision_at(flagged: list[str], truth: set[str], k: int = 20) -> float:
    return len(set(flagged[:k]) & truth) / k


def quality(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    console = Console()
    invoices = load_invoices(args.data)
    skus, first_day, matrix = daily_actuals(invoices)
    row_of = {sku: i for i, sku in enumerate(skus)}
    scope: dict[date, list[str]] = {}
    for origin in ORIGINS:
        end = day_number(origin) - first_day
        sold = matrix[:, end - SCOPE_DAYS + 1 : end + 1].sum(axis=1) > 0
        scope[origin] = [skus[i] for i in np.flatnonzero(sold)]
    console.print(
        f"{len(invoices)} invoices, {len(skus)} products, "
        f"{sum(len(s) for s in scope.values()) * HORIZON} product-days in scope"
    )

    records = [purchase_record(settings, offset, invoice) for offset, invoice in enumerate(invoices)]
    items = segments(records, invoices, settings.demand.lateness_s)
    work = Path(tempfile.mkdtemp(prefix="omnistream-forecast-"))
    redis_svc = start_redis()
    broker = start_broker()
    services: list[LocalService] = [redis_svc, broker]
    settings = settings.model_copy(update={"redis_url": redis_svc.address, "kafka_brokers": broker.address})
    api, port = start_api(
        "serving.app:create_app", settings.model_copy(update={"auth_enabled": False})
    )  # quality, not keys
    # The deployed flow as configured, then (same data, same API, fresh Redis and recovery) with the global
    # model switched the other way: what `OMNISTREAM_DEMAND_GLOBAL_MODEL` changes, measured in one run.
    variants = {STREAM: settings.demand.global_model}
    if not args.no_global_model:
        variants[STREAM_GLOBAL if not settings.demand.global_model else STREAM_PLAIN] = not settings.demand.global_model
    streams: dict[str, StreamRun] = {}
    try:
        for name, global_model in variants.items():
            redis.Redis.from_url(settings.redis.url).flushall()
            run_settings = settings.model_copy(update={"demand_global_model": global_model})
            streams[name] = run_stream(run_settings, items, scope, port, work / f"recovery-{len(streams)}")
            console.print(
                f"{name}: global model {'on' if global_model else 'off'}, {streams[name].flow_cpu_s:.0f} CPU s"
            )
    finally:
        api.terminate()
        api.wait(10)
        for service in services:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)
    stream = streams[STREAM]

    tallies: dict[str, Tally] = defaultdict(Tally)
    rising_hits: dict[str, list[float]] = defaultdict(list)
    missing = 0
    stale = 0
    for origin in ORIGINS:
        end = day_number(origin) - first_day
        rows = np.array([row_of[sku] for sku in scope[origin]])
        history = matrix[rows, : end + 1]
        actual = matrix[rows, end + 1 : end + 1 + HORIZON]
        # Rising: next week's actual biggest risers over the weekly rate of the last 28 days.
        rate_28 = history[:, -28:].sum(axis=1) / 4.0
        truth = {scope[origin][i] for i in np.argsort(-(actual.sum(axis=1) - rate_28), kind="stable")[:20]}
        for name, run in streams.items():
            got = run.forecasts[origin]
            if name == STREAM:
                missing += sum(1 for sku in scope[origin] if sku not in got)
                stale += sum(1 for doc in got.values() if doc["as_of"] != origin.isoformat())

            def column(field: str, got: dict[str, dict[str, Any]] = got, origin: date = origin) -> np.ndarray:
                return np.array(
                    [[d[field] for d in got[sku]["days"]] if sku in got else [0.0] * HORIZON for sku in scope[origin]]
                )

            tallies[name].add(column("forecast"), actual, column("lower"), column("upper"))
            label = "stream" if name == STREAM else name
            rising_hits[f"{label} (GET /v1/forecasts/rising)"].append(precision_at(run.rising[origin], truth))
        for name, forecast in baseline_forecasts(history).items():
            tallies[name].add(forecast, actual)
        if not args.no_statsforecast:
            began = time.perf_counter()
            for name, forecast in statsforecast_forecasts(history, origin).items():
                tallies[name].add(forecast, actual)
            console.print(f"origin {origin}: statsforecast refit in {time.perf_counter() - began:.1f} s")
        naive = history[:, -7:].sum(axis=1) - history[:, -35:-7].sum(axis=1) / 4.0
        naive_flagged = [scope[origin][i] for i in np.argsort(-naive, kind="stable")[:20]]
        rising_hits["naive: last week's risers"].append(precision_at(naive_flagged, truth))

    methods = {name: tally.figures() for name, tally in tallies.items()}
    return {
        "data": str(args.data),
        "invoices": len(invoices),
        "products": len(skus),
        "product_days_in_scope": sum(len(s) for s in scope.values()) * HORIZON,
        "origins": [o.isoformat() for o in ORIGINS],
        "methods": methods,
        "rising_precision_at_20": {name: round(statistics.mean(v), 4) for name, v in rising_hits.items()},
        "stream_missing_forecasts": missing,
        "stream_forecasts_not_as_of_origin": stale,
        "flow": {
            "events": stream.events,
            "cpu_s": round(stream.flow_cpu_s, 2),
            "wall_s": round(stream.flow_wall_s, 2),
            "events_per_cpu_s": round(stream.events / stream.flow_cpu_s, 1),
            "note": "one worker, real Redis sink; the log's 9 months close ~270 days, each writing every "
            "active SKU's forecast",
            "cpu_s_per_variant": {name: round(run.flow_cpu_s, 2) for name, run in streams.items()},
        },
        "settings": {
            "alpha": settings.demand.alpha,
            "interval": settings.demand.interval,
            "lateness_s": settings.demand.lateness_s,
            "locations": settings.demand.locations,
            "global_model": settings.demand.global_model,
            "global_learning_rate": settings.demand.global_learning_rate,
        },
    }


# --- throughput, memory, API ---------------------------------------------------------------------------------------


def synthetic_records(
    settings: Settings, n_events: int, n_skus: int, start: float, days: float, *, stocked: bool = False
) -> Iterator[KafkaRecord]:
    """Dense online orders: `n_events` purchases of 1-3 lines over `n_skus` SKUs at one location, `days` long.

    `stocked`: the stream a stocked shop makes, where the reorders step works on every line. First a
    receipt of 40 units of each SKU (so every pair's stock is known), then among the orders a
    replenishment receipt (30 units of a popular SKU) every 50th event and a whole-order cancel of
    the order before every 50th event. `n_events` counts them all.
    """
    rng = np.random.default_rng(7)
    gap = days * 86_400.0 / n_events
    sku_draws = rng.zipf(1.3, size=(n_events, 3)) % n_skus
    lines = rng.integers(1, 4, size=n_events)
    clickstream, inventory = settings.topic(Topic.CLICKSTREAM), settings.topic(Topic.INVENTORY)
    opening = min(n_skus, n_events) if stocked else 0
    for i in range(opening):
        ts = datetime.fromtimestamp(start - 3600.0 + i * 1e-3, LONDON).isoformat(timespec="milliseconds")
        receipt = {"event_id": f"r{i}", "type": "receipt", "ts": ts, "schema_version": 1,
                   "sku": f"SKU-{i:06d}", "location_id": LOCATION, "qty": 40}  # fmt: skip
        yield KafkaRecord(inventory, 0, i, orjson.dumps(receipt))
    for i in range(n_events - opening):
        ts = datetime.fromtimestamp(start + i * gap, LONDON).isoformat(timespec="milliseconds")
        if stocked and i % 50 == 25:
            sku = f"SKU-{int(sku_draws[i, 0]):06d}"
            event: dict[str, Any] = {"event_id": f"e{i}", "type": "receipt", "ts": ts, "schema_version": 1,
                                     "sku": sku, "location_id": LOCATION, "qty": 30}  # fmt: skip
            yield KafkaRecord(inventory, 0, opening + i, orjson.dumps(event))
            continue
        if stocked and i % 50 == 49:
            event = {"event_id": f"e{i}", "type": "order_cancel", "ts": ts, "schema_version": 1,
                     "order_id": f"o{i - 1}"}  # fmt: skip
            yield KafkaRecord(inventory, 0, opening + i, orjson.dumps(event))
            continue
        items = [{"sku": f"SKU-{int(s):06d}", "qty": 1, "unit_price": 1.0} for s in sku_draws[i, : lines[i]]]
        event = {
            "event_id": f"e{i}",
            "type": "purchase",
            "ts": ts,
            "schema_version": 1,
            "session_id": "s",
            "channel": "web",
            "order_id": f"o{i}",
            "items": items,
            "total": 1.0,
            "currency": "GBP",
            "fulfilment_location_id": LOCATION,
            "payment": {"method": "card", "card_token": "tok_0"},
        }
        yield KafkaRecord(clickstream, 0, opening + i, orjson.dumps(event))


def throughput(settings: Settings, n_events: int, *, stocked: bool = False) -> dict[str, Any]:
    """Events/s of the deployed flow on one worker, real Redis sink, on a dense synthetic stream (2 days).

    The collector runs as in a flow process (`flows.collector.tune_for_tailing_flow`, which `flows/run.py` calls).

    `stocked`: every SKU received first, so reorders are planned on every order line (`synthetic_records`).
    """
    redis_svc, broker = start_redis(), start_broker()
    try:
        settings = settings.model_copy(update={"redis_url": redis_svc.address, "kafka_brokers": broker.address})
        start = datetime(2011, 9, 5, tzinfo=LONDON).timestamp()
        records = list(synthetic_records(settings, n_events, 20_000, start, 2.0, stocked=stocked))
        # The flow process's collector policy (flows/run.py), after the input is made: it is not the flow's.
        tune_for_tailing_flow()
        began_cpu, began = time.process_time(), time.perf_counter()
        # Epochs as long as a deployed flow's (`flows/run.py`): each closes with a snapshot of every step.
        run_main(
            build_flow(settings, "throughput", source=TestingSource(records, batch_size=settings.kafka.batch_size)),
            epoch_interval=timedelta(seconds=settings.snapshot_interval_s),
        )
        cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began
    finally:
        redis_svc.stop()
        broker.stop()
    return {
        "events": n_events,
        "stocked": stocked,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "events_per_s_wall": round(n_events / wall),
        "events_per_cpu_s": round(n_events / cpu),
    }


def throughput_in_child(settings: Settings, n_events: int, *, stocked: bool = False) -> dict[str, Any]:
    """`throughput` in a fresh interpreter, as a flow process runs one flow from its start.

    Run one after the other in this process, the stocked phase came out ~10% below the same phase in a
    process of its own (20.3k-20.9k against 21.8k-23.7k events per CPU second, 2026-12-07): it ran on the heap
    the first phase's 300k events had just left, and whatever else this process did first (the quality replay)
    would weigh on it the same way.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: dict[str, Any] = pool.submit(throughput, settings, n_events, stocked=stocked).result()
    return result


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1e6


def memory(settings: Settings, n_series: int) -> dict[str, Any]:
    """State per series at `n_series` SKU x location series, held by the deployed models step's logic.

    Each models shard gets two day closes over its share of the series (every series sells on
    the first day, then a sparse tenth of them each day); resident memory is read before and after,
    the snapshot of each shard is measured, and so is a days-step snapshot with a day of open lines.
    """
    shards = settings.demand.shards
    per_shard = n_series // shards
    models = ModelsLogic(settings)
    base_rss = rss_mb()
    steps = []
    locations = 10
    day0 = day_number(date(2011, 9, 5))
    rng = np.random.default_rng(3)
    close_s = []
    for shard in range(shards):
        step = models(None)
        names = [f"SKU-{shard}-{i:07d}" for i in range(per_shard // locations)]
        for day in range(day0, day0 + 2):
            batch: list[DaysOutput] = []
            for loc in range(locations):
                sold = names if day == day0 else [names[i] for i in rng.choice(len(names), len(names) // 10)]
                batch.append(DayClose(f"L{loc}", day, dict.fromkeys(sold, 1.0), {}, shard))
            began = time.perf_counter()
            step.on_batch([batch])  # documents and rising lists are made and dropped, as the sink would
            close_s.append(time.perf_counter() - began)
        steps.append(step)
    held_rss = rss_mb() - base_rss
    snapshot_bytes = [len(step.snapshot()) for step in steps]
    days = DaysLogic(settings)(None)
    lines: list[Any] = [
        Demand(f"e{i}", day0 * 86_400.0 + 3600 + i * 0.01, LOCATION, f"SKU-0-{i:07d}", 1) for i in range(100_000)
    ]
    days.on_batch([[*lines, Tick(day0 * 86_400.0 + 7200, 0)]])
    held = per_shard * shards
    return {
        "series": held,
        "shards": shards,
        "rss_mb": round(held_rss, 1),
        "bytes_per_series_rss": round(held_rss * 1e6 / held),
        "models_snapshot_bytes_per_series": round(sum(snapshot_bytes) / held),
        "models_snapshot_mb_per_shard": round(statistics.mean(snapshot_bytes) / 1e6, 1),
        "day_close_s_per_shard_location_p50": round(statistics.median(close_s) / locations, 3),
        "days_snapshot_mb_with_100k_open_lines": round(len(pickle.dumps(days.state)) / 1e6, 2),
        "note": "the models step changes only when a day closes, so only then is it snapshotted; between closes "
        "Bytewax snapshots the days step, which holds the open days' lines and the journals",
    }


def live_order(n: int, ts: float, skus: list[str]) -> bytes:
    """One online order of one to three lines, fulfilled at `LOCATION`, as the clickstream carries it."""
    lines = 1 + n % 3
    items = [{"sku": skus[(n * 7919 + k * 104_729) % len(skus)], "qty": 1, "unit_price": 1.0} for k in range(lines)]
    return orjson.dumps({"event_id": f"live{n}", "type": "purchase", "schema_version": 1, "session_id": "s",
                         "ts": datetime.fromtimestamp(ts, LONDON).isoformat(timespec="milliseconds"),
                         "channel": "web", "order_id": f"o{n}", "items": items, "total": 1.0, "currency": "GBP",
                         "fulfilment_location_id": LOCATION,
                         "payment": {"method": "card", "card_token": "tok_0"}})  # fmt: skip


class _LiveFeed(EpochFeed):
    """An `EpochFeed` whose receipts go on the inventory topic and everything else on the clickstream."""

    def __init__(self, settings: Settings, *args: Any, **kwargs: Any) -> None:
        super().__init__(settings.topic(Topic.CLICKSTREAM), *args, **kwargs)
        self.inventory = settings.topic(Topic.INVENTORY)

    def _record(self, value: bytes) -> KafkaRecord:
        record = super()._record(value)
        if b'"receipt"' in value[:80]:
            return KafkaRecord(self.inventory, 0, record.offset, value)
        return record


def snapshots(settings: Settings, n_fill: int, per_epoch: int, epochs: int) -> dict[str, Any]:
    """Bytes the recovery store takes per epoch per step on a live-like stream, through the deployed flow.

    A stocked shop: 40 units of each of 20k SKUs received, then `n_fill` orders over 6.5 days (so the
    7-day order journal is full and 6 days have closed), then `epochs` epochs of `per_epoch` orders
    each, all within the open day, one batch per epoch (`benchmarks.epoch_feed`). Bytewax 0.21
    snapshots the keys whose logic was touched in an epoch; the `snaps` rows of each change epoch are
    summed per step. The sink drops the output.
    """
    skus = [f"SKU-{i:06d}" for i in range(20_000)]
    start = datetime(2011, 9, 5, tzinfo=LONDON).timestamp()
    live_start = start + 6.5 * 86_400.0  # noon of the 7th day: the change epochs close no day
    fill_gap = (live_start - start) / n_fill

    def receipt(i: int) -> bytes:
        ts = datetime.fromtimestamp(start - 3600.0 + i * 1e-3, LONDON).isoformat(timespec="milliseconds")
        return orjson.dumps({"event_id": f"r{i}", "type": "receipt", "ts": ts, "schema_version": 1,
                             "sku": skus[i], "location_id": LOCATION, "qty": 40})  # fmt: skip

    def fill() -> Iterator[list[bytes]]:
        yield [receipt(i) for i in range(len(skus))]
        for first in range(0, n_fill, 20_000):
            yield [live_order(n, start + n * fill_gap, skus) for n in range(first, min(first + 20_000, n_fill))]

    def changes(epoch: int) -> list[bytes]:
        first = n_fill + (epoch - 1) * per_epoch
        return [live_order(n, live_start + (n - n_fill) * 0.05, skus) for n in range(first, first + per_epoch)]

    # Where a days shard's bytes are: each part of its state pickled apart, at its last snapshot.
    parts: dict[int, dict[str, int]] = {}
    original = demand_stages._DaysStep.snapshot

    def measured(step: Any) -> bytes:
        state = step.state
        parts[state.shard] = {name: len(pickle.dumps(getattr(state, name), protocol=pickle.HIGHEST_PROTOCOL))
                              for name in ("locations", "seen", "txns", "orders", "voided", "expiry")}  # fmt: skip
        return original(step)

    reorder_parts: dict[int, dict[str, int]] = {}
    original_reorders = demand_stages._ReorderStep.snapshot

    def measured_reorders(step: Any) -> bytes:
        state = step.state.__getstate__()  # re-encodes the moved ledgers; the snapshot below then reuses them
        reorder_parts[id(step)] = {name: len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
                                   for name, value in state.items()}  # fmt: skip
        return original_reorders(step)

    demand_stages._DaysStep.snapshot = measured  # type: ignore[method-assign,assignment]
    demand_stages._ReorderStep.snapshot = measured_reorders  # type: ignore[method-assign,assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="omnistream-demand-snaps-") as scratch:
            subprocess.run([sys.executable, "-m", "bytewax.recovery", scratch, "1"], check=True)
            feed = _LiveFeed(settings, fill(), changes, epochs, lambda n: None, settle_s=3.0, gap_s=1.5)
            flow = build_flow(settings, "snapshots", source=OneFeed(feed), sink=DropSink())
            recovery = RecoveryConfig(Path(scratch), backup_interval=timedelta(hours=1))  # every epoch's rows kept
            run_main(flow, epoch_interval=timedelta(seconds=1.0), recovery_config=recovery)
            db = sqlite3.connect(Path(scratch) / "part-0.sqlite3")
            rows = db.execute(
                "SELECT snap_epoch, step_id, COUNT(*), SUM(LENGTH(ser_change)) FROM snaps GROUP BY snap_epoch, step_id"
            ).fetchall()
            db.close()
    finally:
        demand_stages._DaysStep.snapshot = original  # type: ignore[method-assign]
        demand_stages._ReorderStep.snapshot = original_reorders  # type: ignore[method-assign]
    by_epoch: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for epoch, step_id, count, size in rows:
        step = step_id.split(".")[-1]
        if step in ("days", "models", "rising", "reorders"):
            by_epoch[epoch][step] = (int(count), int(size or 0))
    snapped = sorted(by_epoch)
    # The last snapshotting epoch is the end of the input (every key); the `epochs` before it are the change
    # epochs (a change epoch that touched no key of any step leaves no rows, so fewer may show).
    change = snapped[-(epochs + 1) : -1]
    steps: dict[str, Any] = {}
    for step in ("days", "models", "rising", "reorders"):
        sizes = [by_epoch[e].get(step, (0, 0))[1] for e in change]
        counts = [by_epoch[e].get(step, (0, 0))[0] for e in change]
        steps[step] = {
            "bytes_per_epoch": sizes,
            "keys_per_epoch": counts,
            "bytes_median": int(statistics.median(sizes)) if sizes else 0,
            "end_of_input_bytes": by_epoch[snapped[-1]].get(step, (0, 0))[1] if snapped else 0,
        }
    return {
        "orders_filled": n_fill,
        "orders_per_epoch": per_epoch,
        "epochs": epochs,
        "shards": settings.demand.shards,
        "steps": steps,
        "days_shard_parts_bytes_mean": {
            name: round(statistics.mean(p[name] for p in parts.values())) for name in next(iter(parts.values()), {})
        },
        "reorders_shard_parts_bytes_mean": {
            name: round(statistics.mean(p[name] for p in reorder_parts.values()))
            for name in next(iter(reorder_parts.values()), {})
        },
        "bytes_per_changed_order": round(sum(s["bytes_median"] for s in steps.values()) / per_epoch),
    }


def api_latency(settings: Settings, duration_s: float) -> dict[str, Any]:
    """The forecast endpoint's max rate and p99 at half of it (one API worker), on 2,000 stored forecasts."""
    redis_svc, broker = start_redis(), start_broker()
    try:
        settings = settings.model_copy(update={"redis_url": redis_svc.address, "kafka_brokers": broker.address})
        start = datetime(2011, 9, 5, tzinfo=LONDON).timestamp()
        records = list(synthetic_records(settings, 30_000, 2_000, start, 3.0))
        run_main(build_flow(settings, "api", source=TestingSource(records, batch_size=5000)))
        api, port = start_api("serving.app:create_app", settings.model_copy(update={"auth_enabled": False}))
        try:
            paths = [f"/v1/forecasts/SKU-{i:06d}?location_id={LOCATION}&days=7" for i in range(1, 400)]
            return api_figures(port, paths, duration_s, connections=16)
        finally:
            api.terminate()
            api.wait(10)
    finally:
        redis_svc.stop()
        broker.stop()


# --- report ----------------------------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> Table:
    out = Table(title="Demand forecasts on the online-retail log (8 weekly origins, 7 days ahead)")
    for heading in ("method", "SKU-day", "SKU-week", "total-day", "total-week", "80% coverage"):
        out.add_column(heading)
    methods = result["quality"]["methods"]
    for name, fig in sorted(methods.items(), key=lambda kv: kv[1]["sku_week"]):
        coverage = fig["interval_coverage"]
        out.add_row(
            name,
            f"{fig['sku_day']:.3f}",
            f"{fig['sku_week']:.3f}",
            f"{fig['total_day']:.3f}",
            f"{fig['total_week']:.3f}",
            f"{coverage:.3f}" if coverage is not None else "",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-statsforecast", action="store_true", help="skip the statsforecast baselines")
    parser.add_argument(
        "--no-global-model",
        action="store_true",
        help="run the flow once, as configured (not also with the global model switched the other way)",
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--throughput", type=int, default=0, metavar="EVENTS", help="synthetic events to time")
    parser.add_argument(
        "--stocked", action="store_true", help="--throughput on a stocked shop (reorders on every line) as well"
    )
    parser.add_argument("--memory", type=int, default=0, metavar="SERIES", help="series to hold (e.g. 1000000)")
    parser.add_argument(
        "--snapshots", type=int, default=0, metavar="ORDERS", help="orders filled before the paced epochs (e.g. 100000)"
    )
    parser.add_argument("--snapshot-changes", type=int, default=500, help="--snapshots: orders per epoch")
    parser.add_argument("--api", type=float, default=0.0, metavar="SECONDS", help="load duration per phase")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = Settings(demand_locations=LOCATIONS, demand_shards=4, recovery_dir="")
    result: dict[str, Any] = {}
    if args.out.exists():
        result = orjson.loads(args.out.read_bytes())
    if not args.skip_quality:
        result["quality"] = quality(args, settings)
    if args.throughput:
        result["throughput"] = throughput_in_child(settings, args.throughput)
        print(result["throughput"], flush=True)
        if args.stocked:
            result["throughput_stocked"] = throughput_in_child(settings, args.throughput, stocked=True)
            print(result["throughput_stocked"], flush=True)
    if args.memory:
        result["memory"] = memory(settings, args.memory)
        print(result["memory"], flush=True)
    if args.snapshots:
        result["snapshots"] = snapshots(settings, args.snapshots, args.snapshot_changes, 6)
        print(result["snapshots"], flush=True)
    if args.api:
        result["api"] = api_latency(settings, args.api)
    result["command"] = "python benchmarks/forecast.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    console = Console()
    if "quality" in result:
        console.print(table(result))
        console.print(
            {"rising_precision_at_20": result["quality"]["rising_precision_at_20"], "flow": result["quality"]["flow"]}
        )
    for part in ("throughput", "throughput_stocked", "memory", "snapshots", "api"):
        if part in result:
            console.print({part: result[part]})


if __name__ == "__main__":
    main()
