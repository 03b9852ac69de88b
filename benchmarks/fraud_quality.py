"""Fraud quality harness: how well the engine separates fraud, how fast it alerts, what it costs.

In-process, on the simulator (no Kafka, no Redis): one seeded workload with
every fraud scenario and operational incident switched on is decoded once,
then fed in batches through `operators.fraud.FraudEngine` in each scorer mode
- `full` (the blend), `rules_only` and `anomaly_only` - in the same run.
The supervised part learns only from `fraud_label` events that have arrived
by then in the stream (and from payments presumed legit once their label
window has passed), as a live system would.

Reported per mode: ROC-AUC and PR-AUC (average precision) of the score over
every scored payment; precision and recall at the rule file's `review` and
`block` thresholds; detection delay per fraud scenario (event time from an
incident's first fraudulent event to the first alert on its entity, p50/p99)
and per operational incident; the engine's CPU microseconds per payment.

Plus a check of the anomaly model alone on real labelled data: the Statlog
Shuttle set bundled inside river (`river.datasets.Shuttle`, no download),
ROC-AUC and cost per event of `HalfSpaceForest` against river's own
`anomaly.HalfSpaceTrees` with default settings, on the same min-max-scaled rows.

Acceptance (printed): the blend beats rules-only and anomaly-only on PR-AUC;
precision at `block` >= 0.9; recall at `review` >= 0.9.

Run: `python benchmarks/fraud_quality.py` (about 2-3 minutes); results go to
`benchmarks/results/fraud_quality.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Event
from operators.fraud import MODES, FraudEngine, HalfSpaceForest, RuleBook, card_ref
from operators.fraud.alerts import RESOLVED_REASON
from operators.fraud.engine import ENGINE_EVENT_TYPES
from sim.workload import Workload

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "fraud_quality.json"
RULES = ROOT / "deploy" / "fraud" / "rules.toml"

WORKLOAD: dict[str, Any] = dict(
    n_skus=2000,
    n_stores=12,
    n_warehouses=3,
    n_users=20_000,
    events_per_s=60.0,
    fraud_rate=0.02,
    takeover_rate=0.0006,
    refund_abuse_rate=0.0002,
    manual_fraud_rate=0.0004,
    legit_manual_rate=0.02,
    loyalty_scan_miss_rate=0.2,
    incidents=True,
    incident_start_s=3600.0,
)
"""Every scenario on; 60 events/s of event time, so the default run spans a few hours and labels matter."""


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the probability a random fraud outscores a random legit payment (ties half)."""
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC as average precision: mean precision at each fraud's rank (tied scores ranked together)."""
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    _, first, counts = np.unique(-s, return_index=True, return_counts=True)
    ap, seen_pos, seen = 0.0, 0, 0
    for start, count in zip(first, counts, strict=True):
        block_pos = int(t[start : start + count].sum())
        seen_pos += block_pos
        seen += count
        ap += block_pos * (seen_pos / seen)
    return ap / n_pos


def at_threshold(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = score >= threshold
    tp = int((flagged & y).sum())
    return {
        "threshold": threshold,
        "flagged": int(flagged.sum()),
        "precision": tp / int(flagged.sum()) if flagged.any() else float("nan"),
        "recall": tp / int(y.sum()) if y.any() else float("nan"),
    }


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p99_s": None}
    arr = np.asarray(values)
    return {"p50_s": round(float(np.percentile(arr, 50)), 1), "p99_s": round(float(np.percentile(arr, 99)), 1)}


def _alert_epoch(alert: Alert) -> float:
    return datetime.fromisoformat(alert.ts.replace("Z", "+00:00")).timestamp()


def generate(seed: int, n_records: int, workload_params: dict[str, Any]) -> tuple[Workload, list[Event | str]]:
    """The decoded stream as the fraud flow would hand it to the engine: the event types it reads
    (`ENGINE_EVENT_TYPES`; browsing and stock moves are dropped before it), and the source topic of
    each dead letter."""
    workload = Workload(seed=seed, **workload_params)
    items: list[Event | str] = []
    for offset, record in enumerate(islice(workload.records(), n_records)):
        decoded = decode(record.topic, record.value, source_topic=record.topic.value, partition=0, offset=offset)
        if isinstance(decoded, DeadLetter):
            items.append(decoded.source_topic)
        elif type(decoded) in ENGINE_EVENT_TYPES:
            items.append(decoded)
    return workload, items


def run_mode(
    mode: str, rules: RuleBook, items: list[Event | str], batch: int, seed: int
) -> tuple[dict[str, float], list[Alert], float, int]:
    """First score per payment id, every alert, engine CPU seconds, payments scored."""
    engine = FraudEngine(rules, mode=mode, seed=seed)  # type: ignore[arg-type]
    scores: dict[str, float] = {}
    alerts: list[Alert] = []
    cpu = 0.0
    n_payments = 0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        events = [item for item in chunk if not isinstance(item, str)]
        dead = [item for item in chunk if isinstance(item, str)]
        began = time.process_time()
        out = engine.process_many(events, dead)
        cpu += time.process_time() - began
        n_payments += len(out.scored)
        for payment, verdict in out.scored:
            scores.setdefault(payment.payment_id, verdict.score)
        alerts += out.alerts
    return scores, alerts, cpu, n_payments


def detection(workload: Workload, alerts: list[Alert], horizon_s: float = 7200.0) -> dict[str, Any]:
    """Delay from each incident's first event to the first opening alert on its entity, per scenario."""
    first_alert: dict[tuple[str, str], list[float]] = {}
    for alert in alerts:
        if alert.reasons[:1] == [RESOLVED_REASON]:
            continue
        first_alert.setdefault((alert.entity.type, alert.entity.id), []).append(_alert_epoch(alert))
    out: dict[str, Any] = {}
    by_scenario: dict[str, list[float | None]] = {}
    for case in workload.fraud_cases:
        if not case.payment_ids:
            continue  # nothing was actually paid (an empty basket)
        entity_id = card_ref(case.entity_id) if case.entity_type == "card" else case.entity_id
        times = first_alert.get((case.entity_type, entity_id), [])
        # Alert times are kept to the millisecond: an alert on the first payment itself may read a hair early.
        hits = [max(0.0, t - case.first_ts) for t in times if case.first_ts - 1.0 <= t <= case.first_ts + horizon_s]
        by_scenario.setdefault(case.scenario, []).append(min(hits) if hits else None)
    for scenario, delays in sorted(by_scenario.items()):
        found = [d for d in delays if d is not None]
        out[scenario] = {"cases": len(delays), "detected": len(found), **percentiles(found)}
    incidents = {}
    matched: set[tuple[str, str]] = set()
    for window in workload.incident_windows:
        key = (window.entity_type, window.entity_id)
        times = [t for t in first_alert.get(key, []) if window.start_ts <= t <= window.end_ts + horizon_s]
        matched.add(key)
        incidents[window.kind] = {
            "detected": bool(times),
            "delay_s": round(min(times) - window.start_ts, 1) if times else None,
        }
    anomaly_open = [a for a in alerts if a.kind == "anomaly" and a.reasons[:1] != [RESOLVED_REASON]]
    false_alarms = sum(1 for a in anomaly_open if (a.entity.type, a.entity.id) not in matched)
    return {"fraud": out, "incidents": incidents, "anomaly_alerts_elsewhere": false_alarms}


def shuttle_check(n_rows: int, batch: int, seeds: Sequence[int] = (42, 1, 2)) -> dict[str, Any]:
    """ROC-AUC and cost on river's bundled Shuttle set: our forest against river's HalfSpaceTrees defaults.

    Both read the same rows, min-max scaled online (each row with the scaler state including it),
    score each row before learning it, and are averaged over the same seeds (half-space trees vary
    a lot with their random splits).
    """
    from river import anomaly, datasets, preprocessing

    scaler = preprocessing.MinMaxScaler()
    rows: list[dict[str, float]] = []
    labels: list[bool] = []
    for x, y in islice(datasets.Shuttle(), n_rows):
        scaler.learn_one(x)
        rows.append(scaler.transform_one(x))
        labels.append(bool(y))
    names = sorted(rows[0])
    matrix = np.asarray([[row[n] for n in names] for row in rows])
    y = np.asarray(labels)

    def summary(aucs: list[float], cpu: float) -> dict[str, Any]:
        return {
            "roc_auc": round(float(np.mean(aucs)), 4),
            "roc_auc_by_seed": [round(a, 4) for a in aucs],
            "us_per_event": round(cpu / (len(rows) * len(seeds)) * 1e6, 2),
        }

    aucs, cpu = [], 0.0
    for seed in seeds:
        river_hst = anomaly.HalfSpaceTrees(seed=seed)  # defaults: 10 trees, height 8, window 250
        began = time.process_time()
        river_scores = []
        for row in rows:
            river_scores.append(river_hst.score_one(row))
            river_hst.learn_one(row)
        cpu += time.process_time() - began
        aucs.append(roc_auc(y, np.asarray(river_scores)))
    result: dict[str, Any] = {
        "dataset": "river.datasets.Shuttle (UCI Statlog Shuttle, ODDS anomaly version)",
        "rows": len(rows),
        "anomaly_share": round(float(y.mean()), 4),
        "seeds": list(seeds),
        "river_hst_default": {"params": {"n_trees": 10, "height": 8, "window_size": 250}, **summary(aucs, cpu)},
    }
    for label, params in (
        ("forest_river_settings", dict(n_trees=10, height=8, window_size=250)),
        ("forest_engine_settings", dict(n_trees=25, height=8, window_size=250)),
    ):
        aucs, cpu = [], 0.0
        for seed in seeds:
            forest = HalfSpaceForest(matrix.shape[1], seed=seed, **params)  # type: ignore[arg-type]
            scores = np.zeros(len(rows))
            began = time.process_time()
            for start in range(0, len(rows), batch):
                scores[start : start + batch] = forest.score_learn_many(matrix[start : start + batch])
            cpu += time.process_time() - began
            aucs.append(roc_auc(y, scores))
        result[label] = {"params": params, "batch": batch, **summary(aucs, cpu)}
    return result


def _rss_mb() -> float:
    """Resident memory now (not the high-water mark, which a checkpoint's own pickling would inflate)."""
    with open("/proc/self/statm") as statm:
        return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def soak(n_events: int, payments_per_s: float = 400.0, checkpoint: int = 500_000) -> dict[str, Any]:
    """Memory under a long stream: `n_events` synthetic events through one engine with default bounds.

    Mostly payments on fresh card tokens from a million shoppers (every entity map fills up and
    must evict), a fraud label for 1% of them 2-30 minutes later, some till returns, spread at
    `payments_per_s` of event time so label maturity, LRU eviction and the label-join cap all
    bind. Built as validated event structs directly (no JSON), so the soak measures the engine.
    """
    import heapq
    import pickle
    import random

    from events.models import FraudLabel, LineItem, OnlinePayment, PosPayment, Purchase, Return

    rng = random.Random(5)
    engine = FraudEngine(RuleBook.from_toml(RULES.read_text()))
    start_ts = 1795305600.0
    checkpoints = []
    pending_labels: list[tuple[float, str]] = []
    batch: list[Event] = []
    began = time.process_time()
    for i in range(n_events):
        ts = start_ts + i / payments_per_s
        when = datetime.fromtimestamp(ts, UTC)
        roll = rng.random()
        if pending_labels and pending_labels[0][0] <= ts:
            _, order_id = heapq.heappop(pending_labels)
            label = FraudLabel(
                event_id=f"l{i}", ts=when, schema_version=1, label="fraud", source="chargeback", order_id=order_id
            )
            batch.append(label)
        elif roll < 0.03:
            till = {"store_id": f"S{rng.randrange(50)}", "register_id": "R1", "cashier_id": f"C{rng.randrange(600)}"}
            items = [LineItem("SKU-1", 1, 20.0)]
            refund = Return(
                event_id=f"e{i}", ts=when, schema_version=1, txn_id=f"T{i}", currency="USD", items=items, total=20.0,
                payment=PosPayment(method="cash"), **till,
            )  # fmt: skip
            batch.append(refund)
        else:
            order_id = f"O{i}"
            total = round(rng.uniform(5, 500), 2)
            card = OnlinePayment(method="card", card_token=f"tok_{rng.getrandbits(48):012x}", billing_country="US")
            shopper = {"user_id": f"U{rng.randrange(1_000_000)}", "device_id": f"D{rng.randrange(2_000_000)}"}
            order = Purchase(
                event_id=f"e{i}", ts=when, schema_version=1, session_id=f"s{i}", channel="web", ip_country="US",
                order_id=order_id, items=[LineItem("SKU-1", 1, total)], total=total, currency="USD",
                fulfilment_location_id="WH-01", shipping_country="US", payment=card, **shopper,
            )  # fmt: skip
            batch.append(order)
            if roll > 0.99:
                heapq.heappush(pending_labels, (ts + rng.uniform(120, 1800), order_id))
        if len(batch) == 500:
            engine.process_many(batch)
            batch = []
        if (i + 1) % checkpoint == 0:
            checkpoints.append(
                {
                    "events": i + 1,
                    "rss_mb": _rss_mb(),
                    "state_pickle_mb": round(len(pickle.dumps(engine)) / 2**20, 1),
                    "cards": len(engine._cards),
                    "shoppers": len(engine._shoppers),
                    "label_inputs": len(engine.labels),
                    "label_inputs_dropped": engine.labels.dropped,
                    "dedup_ids": len(engine._seen),
                    "open_fraud_alerts": len(engine.alerts.book),
                }
            )
    if batch:
        engine.process_many(batch)
    return {
        "events": n_events,
        "event_time_s": round(n_events / payments_per_s),
        "cpu_s": round(time.process_time() - began, 1),
        "bounds": {
            "max_entities": engine.max_entities,
            "max_label_inputs": engine.max_label_inputs,
            "max_dedup_ids": engine.max_dedup_ids,
        },
        "checkpoints": checkpoints,
    }


def run(
    seed: int = 11,
    n_records: int = 1_500_000,
    batch: int = 500,
    shuttle_rows: int = 49_097,
    workload_params: dict[str, Any] | None = None,
    rules_text: str | None = None,
) -> dict[str, Any]:
    """The whole harness; returns the result document (also what is written as JSON)."""
    rules = RuleBook.from_toml(rules_text if rules_text is not None else RULES.read_text())
    params = WORKLOAD | (workload_params or {})
    began = time.perf_counter()
    workload, items = generate(seed, n_records, params)
    # The decoded stream is the harness's input, not engine state: keep the cyclic garbage collector
    # from walking its million objects at every collection, which would bill the engine for it.
    gc.collect()
    gc.freeze()
    n_events = sum(1 for item in items if not isinstance(item, str))
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "rules_version": rules.version,
        "workload": {"seed": seed, "records": n_records, "engine_events": n_events, **params},
        "batch": batch,
        "modes": {},
    }
    for mode in MODES:
        scores, alerts, cpu, n_payments = run_mode(mode, rules, items, batch, seed)
        ids = list(scores)
        y = np.asarray([i in workload.fraud_ids for i in ids])
        s = np.asarray([scores[i] for i in ids])
        result["modes"][mode] = {
            "payments": len(ids),
            "fraud_payments": int(y.sum()),
            "roc_auc": round(roc_auc(y, s), 4),
            "pr_auc": round(average_precision(y, s), 4),
            "review": at_threshold(y, s, rules.review),
            "block": at_threshold(y, s, rules.block),
            "detection": detection(workload, alerts),
            "alerts": len(alerts),
            "engine_us_per_payment": round(cpu / max(1, n_payments) * 1e6, 2),
            "engine_us_per_event": round(cpu / max(1, n_events) * 1e6, 2),
        }
    result["fraud_by_scenario"] = {k: len(v) for k, v in sorted(workload.fraud_by_scenario.items())}
    if shuttle_rows:
        result["shuttle"] = shuttle_check(shuttle_rows, 256)
    full, rules_only, anomaly_only = (result["modes"][m] for m in MODES)
    result["acceptance"] = {
        "blend_pr_auc_beats_rules_only": full["pr_auc"] > rules_only["pr_auc"],
        "blend_pr_auc_beats_anomaly_only": full["pr_auc"] > anomaly_only["pr_auc"],
        "block_precision_at_least_0_9": full["block"]["precision"] >= 0.9,
        "review_recall_at_least_0_9": full["review"]["recall"] >= 0.9,
    }
    result["wall_s"] = round(time.perf_counter() - began, 1)
    gc.unfreeze()
    return result


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"fraud quality (rules {result['rules_version']}, {result['workload']['records']:,} records)")
    for column in ("mode", "ROC-AUC", "PR-AUC", "review P / R", "block P / R", "µs/payment"):
        table.add_column(column, justify="right" if column != "mode" else "left")
    for mode, m in result["modes"].items():
        table.add_row(
            mode, f"{m['roc_auc']:.3f}", f"{m['pr_auc']:.3f}",
            f"{m['review']['precision']:.3f} / {m['review']['recall']:.3f}",
            f"{m['block']['precision']:.3f} / {m['block']['recall']:.3f}",
            f"{m['engine_us_per_payment']:.1f}",
        )  # fmt: skip
    console.print(table)
    delays = Table(title="detection delay, full blend (event time, first fraudulent event → first alert)")
    for column in ("scenario", "detected", "p50 s", "p99 s"):
        delays.add_column(column)
    detection_result = result["modes"]["full"]["detection"]
    for scenario, d in detection_result["fraud"].items():
        delays.add_row(scenario, f"{d['detected']}/{d['cases']}", str(d["p50_s"]), str(d["p99_s"]))
    for kind, d in detection_result["incidents"].items():
        delays.add_row(kind, "yes" if d["detected"] else "NO", str(d["delay_s"]), "")
    console.print(delays)
    console.print(f"anomaly alerts on entities without an incident: {detection_result['anomaly_alerts_elsewhere']}")
    if "shuttle" in result:
        shuttle = result["shuttle"]
        t = Table(title=f"anomaly model on {shuttle['dataset']}, {shuttle['rows']:,} rows")
        for column in ("model", "ROC-AUC", "µs/event"):
            t.add_column(column)
        for key in ("river_hst_default", "forest_river_settings", "forest_engine_settings"):
            t.add_row(key, f"{shuttle[key]['roc_auc']:.4f}", f"{shuttle[key]['us_per_event']:.2f}")
        console.print(t)
    if "soak" in result:
        soak_table = Table(title=f"memory soak: {result['soak']['events']:,} events, default bounds")
        for column in ("events", "RSS MB", "state pickle MB", "cards", "label inputs", "dedup ids"):
            soak_table.add_column(column, justify="right")
        for c in result["soak"]["checkpoints"]:
            soak_table.add_row(
                f"{c['events']:,}", str(c["rss_mb"]), str(c["state_pickle_mb"]), f"{c['cards']:,}",
                f"{c['label_inputs']:,}", f"{c['dedup_ids']:,}",
            )  # fmt: skip
        console.print(soak_table)
    for check, passed in result["acceptance"].items():
        console.print(f"{'PASS' if passed else 'FAIL'}  {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--records", type=int, default=1_500_000, help="simulated records (default 1.5M, ~7 h)")
    parser.add_argument("--batch", type=int, default=500, help="records per engine batch")
    parser.add_argument("--shuttle-rows", type=int, default=49_097, help="rows of the Shuttle check (0: skip)")
    parser.add_argument("--soak", type=int, default=0, help="also run a memory soak of this many events (~30 us each)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.seed, args.records, args.batch, args.shuttle_rows)
    if args.soak:
        result["soak"] = soak(args.soak)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    print_table(result, Console())
    Console().print(f"results: {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
