"""Fraud quality on a public card-fraud benchmark: the deployed flow against scikit-learn references.

The development split of the Fraud Detection Handbook's simulated card payments
(`../shared/data/card-fraud-dev/`, its README gives the protocol) is replayed through the
deployed fraud flow, `flows.fraud.build_flow` with its default settings, in process (one
worker; Bytewax's `TestingSource` / `TestingSink` in place of Kafka and Redis, as
`benchmarks/fraud_quality.py` does): each transaction becomes a POS `sale` (card token = the
customer, store = the terminal, total = the amount) and, 7 days of event time later, a
`fraud_label` (`fraud` or `legit`). As the protocol says, no label of the 7 days before the
test week, nor of the test week, is ever sent. What is scored is the score document the API
would serve for each payment, at full precision.

In the same run, the book's references: scikit-learn logistic regression and random forest on
the book's 15 features (amount, weekend, night; card count and mean amount over 1/7/30 days;
terminal count and fraud rate over 1/7/30 days with a 7-day delay), batch-trained on the
training week (2018-07-04 .. 07-10), scored on the test week (2018-07-18 .. 07-24).

Reported for the flow and each reference, on the test week: ROC-AUC, average precision and
card precision@100 (per day, the 100 cards with the highest score that day, the share truly
compromised that day; mean over the days), on the book's test set (cards already known
compromised left out) and on all test-week payments; per-scenario AUC; the flow's decisions and
alerts per day; its CPU throughput (payments and labels per CPU second, one worker).

Run: `python benchmarks/fraud_card_quality.py` (a few minutes on a shared 2-core machine; the
data directory defaults to `../shared/data/card-fraud-dev` beside the repository, or
`--data` / `OMNISTREAM_CARD_FRAUD_DATA`); results go to `benchmarks/results/fraud_card_quality.json`.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import heapq
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fraud_quality import FlowRun, run_flow
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "card-fraud-dev"
RESULTS = ROOT / "benchmarks" / "results" / "fraud_card_quality.json"
DATA_FILE = "transactions_2018-06_2018-07.csv.gz"
DAY = 86_400.0
DELAY = 7 * DAY
TRAIN_START = datetime(2018, 7, 4, tzinfo=UTC).timestamp()
TEST_START = datetime(2018, 7, 18, tzinfo=UTC).timestamp()
TEST_DAYS = 7
TEST_END = TEST_START + TEST_DAYS * DAY


class Transactions:
    """The split as columns, in time order (`ts` is the naive local time read as UTC epoch seconds)."""

    def __init__(self, path: Path) -> None:
        ids, ts, cards, terminals, amounts, frauds, scenarios = [], [], [], [], [], [], []
        with gzip.open(path, "rt", newline="") as f:
            for row in csv.DictReader(f):
                ids.append(int(row["transaction_id"]))
                ts.append(datetime.fromisoformat(row["ts"]).replace(tzinfo=UTC).timestamp())
                cards.append(int(row["customer_id"]))
                terminals.append(int(row["terminal_id"]))
                amounts.append(float(row["amount"]))
                frauds.append(row["fraud"] == "1")
                scenarios.append(int(row["scenario"]))
        order = np.argsort(np.asarray(ts), kind="stable")
        self.id = np.asarray(ids)[order]
        self.ts = np.asarray(ts)[order]
        self.card = np.asarray(cards)[order]
        self.terminal = np.asarray(terminals)[order]
        self.amount = np.asarray(amounts)[order]
        self.fraud = np.asarray(frauds)[order]
        self.scenario = np.asarray(scenarios)[order]

    def __len__(self) -> int:
        return len(self.id)


# --------------------------------------------------------------------------------------------- replay


def _sale(txn_id: int, ts: float, card: int, terminal: int, amount: float) -> bytes:
    store = f"TERM-{terminal}"
    return orjson.dumps({
        "event_id": f"sale-{txn_id}", "type": "sale", "ts": rfc3339_ms(ts), "schema_version": 1,
        "store_id": store, "register_id": f"{store}-R1", "cashier_id": f"{store}-C1", "txn_id": f"TX-{txn_id}",
        "currency": "EUR", "items": [{"sku": "ANY", "qty": 1, "unit_price": amount}], "total": amount,
        "payment": {"method": "card", "card_token": f"card-{card}", "card_bin": "400000", "entry_mode": "chip"},
    })  # fmt: skip


def _label(txn_id: int, ts: float, fraud: bool) -> bytes:
    return orjson.dumps({
        "event_id": f"label-{txn_id}", "type": "fraud_label", "ts": rfc3339_ms(ts), "schema_version": 1,
        "label": "fraud" if fraud else "legit", "source": "chargeback", "txn_id": f"TX-{txn_id}",
    })  # fmt: skip


def replay(tx: Transactions, settings: Settings) -> Iterator[KafkaRecord]:
    """Sales up to the end of the test week, and each label 7 days after its sale, merged in event time.

    Labels are sent only while their time is before the test week: no label of the 7 days
    before it, nor of the test week, ever arrives (the protocol).
    """
    pos, labels = settings.topic(Topic.POS), settings.topic(Topic.LABELS)
    pending: list[tuple[float, int, int]] = []  # (label ts, row, label offset): a heap
    offsets = {"pos": 0, "labels": 0}
    for row in range(len(tx)):
        ts = float(tx.ts[row])
        if ts >= TEST_END:
            break
        while pending and pending[0][0] <= ts:
            label_ts, labelled, offset = heapq.heappop(pending)
            yield KafkaRecord(labels, 0, offset, _label(int(tx.id[labelled]), label_ts, bool(tx.fraud[labelled])))
        sale = _sale(int(tx.id[row]), ts, int(tx.card[row]), int(tx.terminal[row]), float(tx.amount[row]))
        yield KafkaRecord(pos, 0, offsets["pos"], sale)
        offsets["pos"] += 1
        if ts + DELAY < TEST_START:
            heapq.heappush(pending, (ts + DELAY, row, offsets["labels"]))
            offsets["labels"] += 1


def run_card_flow(tx: Transactions, batch: int) -> tuple[FlowRun, int]:
    """The deployed flow over the replay, in process (`benchmarks.fraud_quality.run_flow`); its run and records read."""
    settings = Settings(topic_prefix="")
    counted = [0]

    def counting() -> Iterator[KafkaRecord]:
        for record in replay(tx, settings):
            counted[0] += 1
            yield record

    return FlowRun.of(*run_flow(settings, counting(), batch)), counted[0]


# --------------------------------------------------------------------------------------------- references


def _window_sums(
    group: np.ndarray, t: np.ndarray, values: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: count and sum of `values` of the same group with time in (t - hi, t - lo]; rows in time order."""
    order = np.lexsort((t, group))
    key = group[order].astype(np.float64) * 1e10 + t[order]
    cum = np.concatenate(([0.0], np.cumsum(values[order])))
    right = np.searchsorted(key, key - lo, side="right")
    left = np.searchsorted(key, key - hi, side="right")
    count, total = np.empty(len(t)), np.empty(len(t))
    count[order] = right - left
    total[order] = cum[right] - cum[left]
    return count, total


def book_features(tx: Transactions) -> tuple[np.ndarray, list[str]]:
    """The handbook's 15 features of every transaction (its chapter 3 definitions)."""
    t = tx.ts - tx.ts[0]
    seconds = tx.ts % DAY
    weekday = (np.floor(tx.ts / DAY).astype(np.int64) + 3) % 7
    columns = {
        "amount": tx.amount,
        "weekend": (weekday >= 5).astype(float),
        "night": (seconds <= 6 * 3600).astype(float),
    }
    for w in (1, 7, 30):
        count, total = _window_sums(tx.card, t, tx.amount, 0.0, w * DAY)
        columns[f"card_nb_tx_{w}d"] = count
        columns[f"card_avg_amount_{w}d"] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    for w in (1, 7, 30):
        count, frauds = _window_sums(tx.terminal, t, tx.fraud.astype(float), DELAY, DELAY + w * DAY)
        columns[f"terminal_nb_tx_{w}d"] = count
        columns[f"terminal_risk_{w}d"] = np.where(count > 0, frauds / np.maximum(count, 1), 0.0)
    names = list(columns)
    return np.column_stack([columns[n] for n in names]), names


def _window_ending(group: np.ndarray, t: np.ndarray, values: np.ndarray, upper: np.ndarray, width: float) -> np.ndarray:
    """Per row: sum of `values` of the same group with time in (upper - width, upper] (`upper` per row)."""
    order = np.lexsort((t, group))
    key = group[order].astype(np.float64) * 1e10 + t[order]
    cum = np.concatenate(([0.0], np.cumsum(values[order])))
    base = group.astype(np.float64) * 1e10
    right = np.searchsorted(key, base + upper, side="right")
    left = np.searchsorted(key, base + upper - width, side="right")
    out: np.ndarray = cum[right] - cum[left]
    return out


def received_label_features(tx: Transactions, features: np.ndarray, names: list[str]) -> np.ndarray:
    """The book's features with terminal count and fraud rate read only from the labels the replay sends.

    The book's terminal windows end 7 days before each payment, test week included: for a test-week
    payment they read labels of payments of 2018-07-11 .. 07-17, which the protocol never makes
    available (and the flow never receives). Here a window ends 7 days before the payment or at the
    last payment whose label is sent (before 2018-07-11), whichever is earlier: the flow's stores
    count the same way (`operators.fraud.behaviour.StoreRisk`: days ending at the newest labelled day).
    """
    t = tx.ts - tx.ts[0]
    upper = np.minimum(t - DELAY, (TEST_START - DELAY) - tx.ts[0] - 1e-6)
    out = features.copy()
    ones = np.ones(len(t))
    for w in (1, 7, 30):
        count = _window_ending(tx.terminal, t, ones, upper, w * DAY)
        frauds = _window_ending(tx.terminal, t, tx.fraud.astype(float), upper, w * DAY)
        out[:, names.index(f"terminal_nb_tx_{w}d")] = count
        out[:, names.index(f"terminal_risk_{w}d")] = np.where(count > 0, frauds / np.maximum(count, 1), 0.0)
    return out


def references(tx: Transactions, features: np.ndarray) -> dict[str, np.ndarray]:
    """Test-week... scores of every transaction by the book's references, batch-trained on the training week."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = (tx.ts >= TRAIN_START) & (tx.ts < TRAIN_START + 7 * DAY)
    scaler = StandardScaler().fit(features[train])
    x_train, x_all = scaler.transform(features[train]), scaler.transform(features)
    out: dict[str, np.ndarray] = {}
    lr = LogisticRegression(random_state=0, max_iter=1000).fit(x_train, tx.fraud[train])
    out["logistic regression (scikit-learn)"] = lr.predict_proba(x_all)[:, 1]
    rf = RandomForestClassifier(n_estimators=100, max_depth=None, random_state=0, n_jobs=2).fit(
        x_train, tx.fraud[train]
    )
    out["random forest (scikit-learn)"] = rf.predict_proba(x_all)[:, 1]
    return out


# --------------------------------------------------------------------------------------------- metrics


def card_precision_at(k: int, day: np.ndarray, card: np.ndarray, fraud: np.ndarray, score: np.ndarray) -> float:
    """Mean over days of: among the `k` cards with the highest score that day, the share compromised that day."""
    precisions = []
    for d in np.unique(day):
        rows = day == d
        best: dict[int, float] = {}
        bad: set[int] = set()
        for c, s, f in zip(card[rows].tolist(), score[rows].tolist(), fraud[rows].tolist(), strict=True):
            if s > best.get(c, -1.0):
                best[c] = s
            if f:
                bad.add(c)
        top = sorted(best, key=lambda c: -best[c])[:k]
        precisions.append(sum(1 for c in top if c in bad) / k)
    return float(np.mean(precisions))


def metrics(tx: Transactions, rows: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, s = tx.fraud[rows], score[rows]
    day = np.floor((tx.ts[rows] - TEST_START) / DAY).astype(int)
    return {
        "auc": round(float(roc_auc_score(y, s)), 4),
        "ap": round(float(average_precision_score(y, s)), 4),
        "cp_at_100": round(card_precision_at(100, day, tx.card[rows], y, s), 4),
        "payments": int(rows.sum()),
        "frauds": int(y.sum()),
    }


def per_scenario_auc(tx: Transactions, rows: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {}
    for scenario in (1, 2, 3):
        chosen = rows & ((tx.scenario == scenario) | ~tx.fraud)
        if (tx.scenario[chosen] == scenario).any():
            out[str(scenario)] = round(float(roc_auc_score(tx.fraud[chosen], score[chosen])), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("OMNISTREAM_CARD_FRAUD_DATA", DEFAULT_DATA)))
    parser.add_argument("--batch", type=int, default=5000, help="records per TestingSource batch")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.time()
    tx = Transactions(args.data / DATA_FILE)
    test = (tx.ts >= TEST_START) & (tx.ts < TEST_END)
    known = set(tx.card[tx.fraud & (tx.ts < TEST_START - DELAY)].tolist())
    book = test & ~np.isin(tx.card, list(known))

    flow, records_replayed = run_card_flow(tx, args.batch)
    flow_score = np.asarray([flow.scores.get(f"TX-{i}", np.nan) for i in tx.id.tolist()])
    missing = int(np.isnan(flow_score[test]).sum())
    flow_score = np.nan_to_num(flow_score, nan=0.0)
    features, names = book_features(tx)
    scores = {"omnistream fraud flow": flow_score, **references(tx, features)}
    # The same references on what the flow can know: terminal rates from the labels the replay sends only.
    matched = references(tx, received_label_features(tx, features, names))
    scores.update({f"{method[: method.index(' (')]}, labels sent only": s for method, s in matched.items()})

    results: dict[str, Any] = {}
    for method, score in scores.items():
        results[method] = {"book": metrics(tx, book, score), "all": metrics(tx, test, score),
                           "scenario_auc_all": per_scenario_auc(tx, test, score)}  # fmt: skip
    test_ids = [f"TX-{i}" for i in tx.id[test].tolist()]
    decisions = Counter(flow.decisions.get(i, "missing") for i in test_ids)
    test_fraud = dict(zip(test_ids, tx.fraud[test].tolist(), strict=True))
    decided_fraud = Counter(flow.decisions.get(i, "missing") for i in test_ids if test_fraud[i])
    precision = {d: round(decided_fraud[d] / n, 3) for d, n in decisions.items() if n}
    alert_days = Counter((a.kind, a.severity) for a in flow.alerts if TEST_START <= _epoch(a.ts) < TEST_END)
    payments_replayed = int((tx.ts < TEST_END).sum())
    report: dict[str, Any] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "data": f"{DATA_FILE} ({len(tx)} transactions, {int(tx.fraud.sum())} fraudulent)",
        "protocol": "labels 7 days after their payment, none from 2018-07-11 on; test week 2018-07-18..24; "
        "references batch-trained on 2018-07-04..10",
        "pipeline": "flows.fraud.build_flow, default settings, 1 worker, TestingSource/TestingSink",
        "book_features": names,
        "results": results,
        "flow": {
            "payments_replayed": payments_replayed,
            "records_replayed": records_replayed,
            "test_payments_unscored": missing,
            "cpu_s": round(flow.cpu_s, 1),
            "records_per_cpu_s": round(records_replayed / flow.cpu_s),
            "payments_per_cpu_s": round(payments_replayed / flow.cpu_s),
            "test_week_decisions": dict(decisions),
            "test_week_decision_precision": precision,
            "test_week_decision_frauds": dict(decided_fraud),
            "test_week_alerts_per_day": {f"{k} {s}": round(n / TEST_DAYS, 1) for (k, s), n in alert_days.items()},
            "scorer_shards": flow.models,
        },
        "wall_s": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"{'method':40} {'book AUC':>9} {'book AP':>8} {'book CP':>8} {'all AUC':>8} {'all AP':>7} {'all CP':>7}")
    for method, r in results.items():
        b, a = r["book"], r["all"]
        print(f"{method:40} {b['auc']:9.3f} {b['ap']:8.3f} {b['cp_at_100']:8.3f} {a['auc']:8.3f} {a['ap']:7.3f} "
              f"{a['cp_at_100']:7.3f}")  # fmt: skip
    print(orjson.dumps({**report["flow"], "scorer_shards": len(flow.models)}).decode())
    print(f"results in {args.out}")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
