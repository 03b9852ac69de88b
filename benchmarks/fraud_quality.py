"""Fraud quality harness: how well the deployed fraud flow separates fraud, how fast it alerts, what it costs.

In-process, on the simulator (no Kafka, no Redis): one seeded workload with every
fraud scenario and operational incident switched on is turned into the Kafka records
the flow reads, then the real dataflow, `flows.fraud.build_flow` with its default
settings, runs over them once per scorer mode (`OMNISTREAM_FRAUD_SCORER_MODE`: `full`,
the blend, `rules_only` and `anomaly_only`) with Bytewax's `TestingSource` in place of
Kafka and `TestingSink` in place of Redis. What is scored is what the sink would write:
the score documents (`GET /v1/scores/{id}`) and the alerts. So the numbers are the
deployed model's, with its sharding, clocks, de-duplication and label retention; an
integration test (`tests/integration/test_fraud_quality_parity.py`) checks that this
in-process run and the flow on the real broker and Redis give the same score per payment.

Malformed records are dead-lettered by the inventory flow in production and reach the
fraud flow through `omni.dlq`; the harness hands the flow those dead-letter records
itself, right after each malformed record, stamped with the stream's event time. The
supervised part learns only from `fraud_label` events that have arrived by then in the
stream (and from payments presumed genuine once `OMNISTREAM_FRAUD_LABEL_MATURITY_S` has
passed unlabelled), as the live system does.

Reported per mode: ROC-AUC and PR-AUC (average precision) of the score over every scored
payment; precision and recall at the rule file's `review` and `block` thresholds;
detection delay per fraud scenario (event time from an incident's first fraudulent event
to the first alert on its entity, p50/p99) and per operational incident; the flow's CPU
microseconds per payment (decoding, every stage and Bytewax itself, in one worker).

Plus a check of the anomaly model alone on real labelled data: the Statlog Shuttle set
bundled inside river (`river.datasets.Shuttle`, no download), ROC-AUC and cost per event
of `HalfSpaceForest` against river's own `anomaly.HalfSpaceTrees` with default settings,
on the same min-max-scaled rows. Memory over a long stream is `benchmarks/fraud.py`'s
soak (the same flow, 5M payments).

Acceptance (printed): the blend beats rules-only and anomaly-only on PR-AUC;
precision at `block` >= 0.9; recall at `review` >= 0.9.

Run: `python benchmarks/fraud_quality.py` (3-5 minutes on a shared 2-core machine); results go to
`benchmarks/results/fraud_quality.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import platform
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from bytewax.testing import TestingSink, TestingSource, run_main
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.decode import decode
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.dead_letters import owns_dead_letters
from flows.fraud import INPUT_TOPICS, build_flow
from flows.kafka_source import KafkaRecord
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from operators.fraud import MODES, HalfSpaceForest, RuleBook, card_ref
from operators.fraud.alerts import RESOLVED_REASON
from sim.workload import Workload
from state import keys
from state.doc_writer import FencedDoc

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "fraud_quality.json"
RULES = ROOT / "deploy" / "fraud" / "rules.toml"
_SCORE_PREFIX = keys.score("")[:-1]  # "omni:score:{"
_MODEL_PREFIX = keys.fraud_model(0)[:-2]  # "omni:fraud:model:{"
_MODEL_FIELDS = ("shard", "supervised_ready", "supervised_updates", "fraud_labels_learned", "pending_labels",
                 "model_version")  # fmt: skip

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


def flow_settings(mode: str = "full", rules_path: Path = RULES) -> Settings:
    """The deployed flow's settings (every default), in one scorer mode; topics without a prefix.

    The empty prefix only renames topics: the dead-letter incident's entity is then the
    contract's topic name, as the simulator's ground truth names it.
    """
    return Settings(topic_prefix="", fraud_rules_path=rules_path, fraud_scorer_mode=mode)


class RecordLog:
    """The Kafka records of a run, their values in one byte buffer; iterating hands out `KafkaRecord`s afresh.

    Holding a million and a half small `bytes` objects made from the simulator's temporaries
    pinned its heap (several GB resident for ~400 MB of payloads); one buffer holds only the bytes.
    """

    def __init__(self) -> None:
        self._topics: list[str] = []
        self._offsets = array("q")
        self._ends = array("q")
        self._blob = bytearray()

    def append(self, topic: str, offset: int, value: bytes) -> None:
        self._topics.append(topic)
        self._offsets.append(offset)
        self._blob += value
        self._ends.append(len(self._blob))

    def __len__(self) -> int:
        return len(self._topics)

    def __iter__(self) -> Iterator[KafkaRecord]:
        blob, start = memoryview(self._blob), 0
        for topic, offset, end in zip(self._topics, self._offsets, self._ends, strict=True):
            yield KafkaRecord(topic, 0, offset, bytes(blob[start:end]))
            start = end


def generate(seed: int, n_records: int, workload_params: dict[str, Any]) -> tuple[Workload, RecordLog]:
    """The Kafka records the fraud flow reads: the workload's on its topics, one partition each, in publish order.

    After each malformed record whose dead letter another flow writes (`flows.dead_letters`),
    that dead letter arrives on the DLQ topic, stamped with the event time of the stream so far
    (live, the inventory flow writes it within a second).
    """
    workload = Workload(seed=seed, **workload_params)
    settings = flow_settings()
    names = {topic: settings.topic(topic) for topic in Topic}
    offsets = dict.fromkeys(Topic, 0)
    records = RecordLog()
    last_good: bytes | None = None
    for record in islice(workload.records(), n_records):
        topic = record.topic
        if topic in INPUT_TOPICS:
            records.append(names[topic], offsets[topic], record.value)
        offsets[topic] += 1
        if not record.malformed:
            last_good = record.value
            continue
        letter = decode(topic, record.value, source_topic=names[topic], partition=0, offset=offsets[topic] - 1)
        if not isinstance(letter, DeadLetter) or owns_dead_letters("fraud", topic) or last_good is None:
            continue
        ts = rfc3339_ms(datetime.fromisoformat(orjson.loads(last_good)["ts"].replace("Z", "+00:00")).timestamp())
        records.append(names[Topic.DLQ], offsets[Topic.DLQ], orjson.dumps(dataclasses.replace(letter, ts=ts)))
        offsets[Topic.DLQ] += 1
    return workload, records


class FlowRun:
    """What one run of the flow wrote: the first score and decision of each payment id, every alert, the CPU it took.

    `models` is each scorer shard's last model document (`omni:fraud:model:{shard}`): whether
    its supervised model had started learning, and from how many labels.
    """

    def __init__(
        self,
        scores: dict[str, float],
        decisions: dict[str, str],
        alerts: list[Alert],
        cpu_s: float,
        score_docs: int,
        models: list[Any],
    ) -> None:
        self.scores = scores
        self.decisions = decisions
        self.alerts = alerts
        self.cpu_s = cpu_s
        self.score_docs = score_docs
        self.models = models

    @classmethod
    def of(cls, out: list[FlowRecord], cpu_s: float) -> FlowRun:
        """Read one run's output (`run_flow`): the first score document per payment id wins."""
        scores: dict[str, float] = {}
        decisions: dict[str, str] = {}
        docs = score_docs(out)
        for doc in docs:
            if doc["payment_id"] not in scores:
                scores[doc["payment_id"]] = doc["score"]
                decisions[doc["payment_id"]] = doc["decision"]
        models: dict[int, Any] = {}
        for item in out:
            if type(item) is FencedDoc and item.key.startswith(_MODEL_PREFIX):
                model = orjson.loads(item.doc)
                models[model["shard"]] = model
        alerts = [item for item in out if type(item) is Alert]
        return cls(scores, decisions, alerts, cpu_s, len(docs), [models[shard] for shard in sorted(models)])


def run_flow(settings: Settings, records: Iterable[KafkaRecord], batch: int) -> tuple[list[FlowRecord], float]:
    """The fraud flow over `records` in this process (one worker), batches of `batch` records; its output, CPU s."""
    out: list[FlowRecord] = []
    flow = build_flow(settings, "quality", source=TestingSource(records, batch_size=batch), sink=TestingSink(out))
    began = time.process_time()
    run_main(flow)
    return out, time.process_time() - began


def score_docs(out: list[FlowRecord]) -> list[dict[str, Any]]:
    """The score documents (`GET /v1/scores/{id}`) among the flow's output, parsed, in the order written."""
    return [orjson.loads(item.doc) for item in out if type(item) is FencedDoc and item.key.startswith(_SCORE_PREFIX)]


def run_mode(mode: str, records: Iterable[KafkaRecord], batch: int, rules_path: Path = RULES) -> FlowRun:
    """The flow in one scorer mode: first score per payment id, every alert, CPU seconds, documents."""
    return FlowRun.of(*run_flow(flow_settings(mode, rules_path), records, batch))


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
        scaler.learn_one(x)  # type: ignore[no-untyped-call]
        rows.append(scaler.transform_one(x))  # type: ignore[no-untyped-call]
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
            river_scores.append(river_hst.score_one(row))  # type: ignore[no-untyped-call]
            river_hst.learn_one(row)  # type: ignore[no-untyped-call]
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
            forest = HalfSpaceForest(matrix.shape[1], seed=seed, **params)
            scores = np.zeros(len(rows))
            began = time.process_time()
            for start in range(0, len(rows), batch):
                scores[start : start + batch] = forest.score_learn_many(matrix[start : start + batch])
            cpu += time.process_time() - began
            aucs.append(roc_auc(y, scores))
        result[label] = {"params": params, "batch": batch, **summary(aucs, cpu)}
    return result


def run(
    seed: int = 11,
    n_records: int = 1_500_000,
    batch: int = 500,
    shuttle_rows: int = 49_097,
    workload_params: dict[str, Any] | None = None,
    rules_path: Path = RULES,
) -> dict[str, Any]:
    """The whole harness; returns the result document (also what is written as JSON)."""
    rules = RuleBook.from_toml(rules_path.read_text())
    params = WORKLOAD | (workload_params or {})
    began = time.perf_counter()
    workload, records = generate(seed, n_records, params)
    thresholds = gc.get_threshold()
    # The workload's ground truth is the harness's, not flow state: keep the cyclic garbage collector
    # from walking it at every collection, which would bill the flow for it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)  # as the flow process runs (flows/run.py)
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "pipeline": "flows.fraud.build_flow, default settings, 1 worker, TestingSource/TestingSink",
        "rules_version": rules.version,
        "workload": {"seed": seed, "records": n_records, "flow_records": len(records), **params},
        "batch": batch,
        "modes": {},
    }
    for mode in MODES:
        flow_run = run_mode(mode, records, batch, rules_path)
        scores = flow_run.scores
        ids = list(scores)
        y = np.asarray([i in workload.fraud_ids for i in ids])
        s = np.asarray([scores[i] for i in ids])
        result["modes"][mode] = {
            "payments": len(ids),
            "score_documents": flow_run.score_docs,
            "fraud_payments": int(y.sum()),
            "roc_auc": round(roc_auc(y, s), 4),
            "pr_auc": round(average_precision(y, s), 4),
            "review": at_threshold(y, s, rules.review),
            "block": at_threshold(y, s, rules.block),
            "detection": detection(workload, flow_run.alerts),
            "alerts": len(flow_run.alerts),
            "scorer_shards": [{k: m[k] for k in _MODEL_FIELDS} for m in flow_run.models],
            "flow_us_per_payment": round(flow_run.cpu_s / max(1, len(ids)) * 1e6, 2),
            "flow_us_per_record": round(flow_run.cpu_s / max(1, len(records)) * 1e6, 2),
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
    gc.set_threshold(*thresholds)
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
            f"{m['flow_us_per_payment']:.1f}",
        )  # fmt: skip
    console.print(table)
    shards = result["modes"]["full"]["scorer_shards"]
    scoring = sum(1 for m in shards if m["supervised_ready"])
    console.print(f"full blend: supervised model scoring in {scoring} of {len(shards)} scorer shards "
                  f"({sum(m['supervised_updates'] for m in shards)} examples learned, "
                  f"{sum(m['fraud_labels_learned'] for m in shards)} of them frauds; until it has learned a "
                  "plausible mix, at most half frauds, the blend is the rule score)")  # fmt: skip
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
    for check, passed in result["acceptance"].items():
        console.print(f"{'PASS' if passed else 'FAIL'}  {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--records", type=int, default=1_500_000, help="simulated records (default 1.5M, ~7 h)")
    parser.add_argument("--batch", type=int, default=500, help="records per source batch (a Kafka poll's worth)")
    parser.add_argument("--shuttle-rows", type=int, default=49_097, help="rows of the Shuttle check (0: skip)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.seed, args.records, args.batch, args.shuttle_rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    print_table(result, Console())
    Console().print(f"results: {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
