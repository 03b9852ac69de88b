"""The fraud flow killed mid-replay: the scores afterwards equal an uninterrupted run's.

Real broker, Redis and Bytewax processes (tests/conftest.py). Two runs read the same topics into
separate Redis databases and recovery directories: one to the end each time, the other killed
(SIGKILL) several times while it scores the last phase. The supervised model has learned from
labels by then (the phases before), so what is compared includes the recovered model, the
pending payments, the card and store features and the anomaly model.

Phases are published one after another and each is read to the end by both runs first. Within a
phase the topics' partitions are read concurrently, and after each kill the reads resume at other
offsets: the flow's event-time order (`operators.fraud.ordering`) and its learning in chunks of
event time (`operators.fraud.shards.ScorerShard`) are what make the scores equal anyway. The kills
come at shares of the payments scored, not at slices of wall time (a faster machine finishes first).
"""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
import pytest
import redis

from flows.launcher import FlowRun
from omnistream.settings import Settings
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish, run_to_end, start
from tests.integration.fraud_events import RULES, T0, label, sale

pytestmark = pytest.mark.integration

HOUR = 3600.0
CARDS, STORES = 400, 40


def _sales(prefix: str, start_ts: float, n: int, seed: int) -> list[tuple[str, float, bool, Any]]:
    """`n` till sales; a card of every 40 pays at a compromised store, 8 times its usual basket: fraud."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = start_ts + i * 2.0
        card = rng.randrange(CARDS)
        fraud = card % 40 == 0 and rng.random() < 0.5
        store = "STORE-BAD" if fraud else f"STORE-{rng.randrange(STORES):02d}"
        total = round(rng.uniform(10.0, 60.0) * (8.0 if fraud else 1.0), 2)
        pid = f"{prefix}-{i}"
        out.append((pid, ts, fraud, sale(pid, ts, store=store, total=total, card_token=f"tok_{card}")))
    return out


def _other_db(settings: Settings, db: int) -> Settings:
    url = settings.redis.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return settings.model_copy(update={"redis_url": url, "recovery_dir": settings.recovery.dir.with_name(f"rec-{db}")})


def _scores(url: str, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    client = redis.Redis.from_url(url)
    out = {}
    for pid in ids:
        doc = read_doc(client, keys.score(pid))
        if doc is not None:
            parsed = orjson.loads(doc)
            out[pid] = (parsed["score"], parsed["decision"], parsed["reasons"], parsed["model_version"])
    return out


def _wait_for_share(run: FlowRun, url: str, sample: list[str], share: float, kill: int) -> None:
    """Return once `share` of `sample` is scored (by this run or the ones before it, killed)."""
    deadline = time.monotonic() + 180
    while len(_scores(url, sample)) < share * len(sample):
        if not run.alive():
            pytest.fail(f"the flow finished before kill {kill} (at {share:.0%} of the payments)")
        if time.monotonic() > deadline:
            pytest.fail(f"no progress in 180 s before kill {kill}")
        time.sleep(0.05)


def test_fraud_flow_killed_mid_replay_scores_like_an_uninterrupted_run(settings: Settings) -> None:
    steady = settings.model_copy(update={"fraud_rules_path": RULES, "snapshot_interval_s": 0.5})
    crashed = _other_db(steady, 1)

    # Phase 1: a day of sales; phase 2: their labels (an hour after each), so the model learns.
    day1 = _sales("D1", T0, 20_000, seed=1)
    publish(steady, [record for *_, record in day1])
    for run_settings in (steady, crashed):
        run_to_end(run_settings, flow="fraud")
    publish(steady, [label(ts + HOUR, txn_id=pid, verdict="fraud" if fraud else "legit") for pid, ts, fraud, _ in day1])
    for run_settings in (steady, crashed):
        run_to_end(run_settings, flow="fraud")

    # Phase 3: the next day's sales; the second run is killed three times while it scores them.
    day2 = _sales("D2", T0 + 26 * HOUR, 60_000, seed=2)
    publish(steady, [record for *_, record in day2])
    ids = [pid for pid, *_ in day2]
    run_to_end(steady, flow="fraud")
    expected = _scores(steady.redis.url, ids)
    assert len(expected) == len(ids)
    assert all("+lr0" not in version for *_, version in expected.values()), "the model should have learned"
    assert any(decision != "allow" for _, decision, *_ in expected.values())

    # Killed at shares of the payments scored (not at a slice of wall time: a faster machine finishes first).
    sample = ids[::50]
    for kill, share in enumerate((0.2, 0.45, 0.7), start=1):
        run = start(crashed, flow="fraud")
        _wait_for_share(run, crashed.redis.url, sample, share, kill)
        run.kill()  # SIGKILL: no chance to flush or snapshot
    run_to_end(crashed, flow="fraud")

    actual = _scores(crashed.redis.url, ids)
    differing = [pid for pid in ids if actual.get(pid) != expected[pid]]
    examples = [(pid, expected[pid], actual.get(pid)) for pid in differing[:2]]
    assert not differing, f"{len(differing)} of {len(ids)} scores differ after kills, e.g. {examples}"
