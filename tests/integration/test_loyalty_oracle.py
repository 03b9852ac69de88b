"""The loyalty flow against an independent oracle: 0 differences, member by member, after chaos.

The event log has every fault the contract allows: events shuffled across and within topics
(returns, voids, cancels and fulfilments before their transactions, links after the orders they
identify), byte-identical duplicates, late reversals after points were spent, and the flow is
SIGKILLed repeatedly while it works through (and replays) the log. The oracle
(`tests/integration/loyalty_oracle.py`) shares no code with the flow.
"""

from __future__ import annotations

import contextlib
import pickle
import random
import sqlite3
import time
from pathlib import Path

import orjson
import pytest
import redis

from events.topics import Topic
from flows.launcher import flow_recovery_dir, resume_epoch, start_flow
from flows.loyalty_stages import LedgerStage
from omnistream.settings import Settings
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish, run_to_end, start
from tests.integration.loyalty_oracle import LoyaltyOracle, Rules, _ts
from tests.unit.loyalty.events import (
    DAY,
    T0,
    Record,
    fulfilment,
    link,
    order_cancel,
    product,
    purchase,
    redemption,
    return_,
    sale,
    void,
)

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "deploy" / "loyalty" / "rules.toml"
CATEGORIES = ("grocery", "electronics", "toys", "home")
TB = T0 + 140 * DAY  # the clock when members redeem: every lot of days 0-100 is spendable
TD = T0 + 445 * DAY  # the clock at the end: lots of days 0-50 have expired
N_TXNS = 12_000


def _day(rng: random.Random) -> float:
    """A transaction time in days 0-100, away from the expiry boundary at the end (day ~50) and the tier's (~80)."""
    while True:
        day = rng.uniform(0, 100)
        if not (48 <= day <= 52 or 78 <= day <= 82):
            return T0 + day * DAY


def earning_log(rng: random.Random) -> list[Record]:
    skus = {f"SKU-{i:03d}": CATEGORIES[i % 4] for i in range(40)}
    log: list[Record] = [product(sku, category) for sku, category in skus.items()]
    customers = [f"C-{i:04d}" for i in range(400)]
    users = {f"U-{i:04d}": customers[i] for i in range(300)}  # U-0300.. never linked
    for user, customer in users.items():
        if rng.random() < 0.9:
            log.append(link(user, customer, _day(rng)))

    def basket() -> list[tuple[str, int, float]]:
        return [
            (sku, rng.randint(1, 4), round(rng.uniform(0.5, 80), 2))
            for sku in rng.sample(sorted(skus), rng.randint(1, 3))
        ]

    for i in range(N_TXNS):
        ts, lines = _day(rng), basket()
        if rng.random() < 0.55:
            txn = f"T{i:05d}"
            log.append(sale(txn, rng.choice(customers) if rng.random() < 0.85 else None, ts, lines,
                            store=f"S{rng.randint(1, 4)}"))  # fmt: skip
            if rng.random() < 0.2:
                sku, qty, price = rng.choice(lines)
                log.append(
                    return_(f"ret-{txn}", txn, ts + rng.uniform(0, 20) * DAY, [(sku, rng.randint(1, qty), price)])
                )
            if rng.random() < 0.05:
                log.append(void(f"void-{txn}", txn, ts + 60))
        else:
            order = f"O{i:05d}"
            log.append(purchase(order, f"U-{rng.randint(0, 339):04d}", ts, lines, channel=rng.choice(["web", "app"])))
            for sku, qty, _ in lines:
                if rng.random() < 0.3:
                    log.append(fulfilment(f"ful-{order}-{sku}", order, ts + 3600, sku, rng.randint(1, qty)))
                if rng.random() < 0.12:
                    log.append(order_cancel(f"can-{order}-{sku}", order, ts + 7200, sku))
    return log


def chaos(rng: random.Random, log: list[Record]) -> list[Record]:
    """Shuffled across and within topics, with byte-identical duplicates."""
    out = log + [r for r in log if rng.random() < 0.08]
    rng.shuffle(out)
    return out


def _oracle(settings: Settings) -> LoyaltyOracle:
    s = settings.loyalty
    return LoyaltyOracle(Rules.read(RULES), window_s=s.return_window_s, expiry_s=s.expiry_s,
                         lookback_s=s.link_lookback_s, lateness_s=s.lateness_s,
                         tier_window_s=s.tier_window_s)  # fmt: skip


def _docs(client: redis.Redis) -> dict[str, dict[str, object]]:
    found = {}
    for key in client.scan_iter(match=keys.loyalty_member("*"), count=1000):
        if b":redemption:" in key or b":idem:" in key:
            continue
        doc = orjson.loads(read_doc(client, key.decode()) or b"{}")
        found[str(doc["customer_id"])] = doc
    return found


def _killed_run(settings: Settings, client: redis.Redis, kills: int, rng: random.Random) -> int:
    """Run to the end, SIGKILLing the flow `kills` times once it has written; returns the kills that landed mid-run."""
    landed = 0
    for _ in range(kills):
        run = start(settings, flow="loyalty")
        before = len(_docs(client))
        deadline = time.monotonic() + 120
        while run.alive() and len(_docs(client)) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.2))
        if run.alive():
            landed += 1
        run.kill()
    run_to_end(settings, flow="loyalty")
    return landed


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "cluster-2x1"])
def test_loyalty_balances_match_the_oracle_after_reordering_duplicates_late_reversals_and_kills(
    settings: Settings, redis_client: redis.Redis, processes: int
) -> None:
    settings = settings.model_copy(update={"loyalty_shards": 4, "kafka_batch_size": 100, "processes": processes})
    rng = random.Random(23)
    oracle = _oracle(settings)

    # Phase 1: everything that earns and takes back, in chaos, while the flow is killed and replays.
    earning = earning_log(rng)
    published = chaos(rng, earning)
    publish(settings, published)
    oracle.earn([value for _, _, value in published])
    landed = _killed_run(settings, redis_client, kills=3, rng=rng)
    assert landed >= 1, "no kill landed while the flow was working: the log is too short for this machine"

    # Phase 2: the clock moves to TB (a sale of a member of its own), then members redeem, with retries.
    clock_b = sale("T-CLOCK-B", "C-CLOCK", TB, [("SKU-000", 1, 1.0)])
    publish(settings, [clock_b])
    oracle.earn([clock_b[2]])
    oracle.advance(TB)
    run_to_end(settings, flow="loyalty")
    asks: list[Record] = []
    for n, customer in enumerate(sorted(oracle.members)[:100]):
        for k in range(rng.randint(1, 3)):
            points = rng.choice([rng.randint(1, 60), oracle.available(oracle.members[customer]) or 1, 400])
            asks.append(redemption(f"R-{n}-{k}", customer, points, TB - 100 + k))
            if rng.random() < 0.2:
                asks.append(asks[-1])  # a producer retry
    asks.append(redemption("R-NOBODY", "C-NOBODY", 5, TB - 50))
    publish(settings, asks)
    oracle.redeem([value for _, _, value in asks])
    run_to_end(settings, flow="loyalty")

    # Phase 3: late returns of spendable, partly spent transactions, with duplicates.
    spendable = [t for t, txn in oracle.txns.items() if txn.customer != "C-CLOCK" and t.startswith("T")
                 and txn.ts > T0 + 30 * DAY and not txn.voided]  # fmt: skip
    late = [return_(f"late-{t}", t, TB - 10, [(sku, qty, float(price))])
            for t in rng.sample(spendable, 60)
            for sku, (qty, price) in list(oracle.txns[t].lines.items())[:1]]  # fmt: skip
    late += rng.sample(late, 10)
    publish(settings, late)
    oracle.reverse([value for _, _, value in late])
    _killed_run(settings, redis_client, kills=1, rng=rng)

    # Phase 4: a year later, what was not spent expires.
    clock_d = sale("T-CLOCK-D", "C-CLOCK", TD, [("SKU-000", 1, 1.0)])
    publish(settings, [clock_d])
    oracle.earn([clock_d[2]])
    oracle.advance(TD)
    run_to_end(settings, flow="loyalty")

    docs = _docs(redis_client)
    assert set(docs) == set(oracle.members)
    fields = ("available", "pending", "redeemed", "expired", "unrecovered", "rolling_spend", "tier")
    differences = {}
    for customer, doc in docs.items():
        expected = oracle.balances(customer, _ts(str(doc["as_of"])))
        actual = {f: doc[f] for f in fields}
        if actual != expected:
            differences[customer] = (expected, actual)
    assert not differences, f"{len(differences)} of {len(docs)} members differ, e.g. {list(differences.items())[:3]}"

    decided = {}
    for key in redis_client.scan_iter(match="omni:loyalty:*:redemption:*", count=1000):
        doc = orjson.loads(read_doc(redis_client, key.decode()) or b"{}")
        decided[doc["redemption_id"]] = (doc["status"], doc["reason"])
    assert decided == oracle.decisions
    # The run exercised what it claims to: refusals, expiries, unrecovered reversals, all tiers in play.
    statuses = [status for status, _ in decided.values()]
    assert statuses.count("accepted") > 20 and statuses.count("rejected") > 20
    assert sum(int(d["expired"]) for d in docs.values()) > 0  # type: ignore[call-overload]
    assert sum(int(d["unrecovered"]) for d in docs.values()) > 0  # type: ignore[call-overload]
    assert {d["tier"] for d in docs.values()} >= {"member", "silver"}
    assert Topic.LOYALTY  # entries went to the topic too (checked in test_loyalty_redemptions)


def _pending(client: redis.Redis) -> dict[str, object]:
    return {customer: doc["pending"] for customer, doc in _docs(client).items()}


def _leave_unfinished_snapshot(directory: Path, step_id: str, key: str, state: bytes) -> int:
    """What a run SIGKILLed mid-epoch can leave behind (seen in the partitions after such kills): an execution
    with no frontier written and one step's snapshot of the epoch it was in, which the cluster never finished.
    Written as Bytewax 0.21.1 writes them (the step's snapshot, pickled). Returns that epoch."""
    epoch = resume_epoch(directory)
    assert epoch is not None
    with contextlib.closing(sqlite3.connect(directory / "part-0.sqlite3")) as db, db:
        (last, workers) = db.execute("SELECT ex_num, worker_count FROM exs ORDER BY ex_num DESC LIMIT 1").fetchone()
        db.execute("INSERT INTO exs (ex_num, worker_count, resume_epoch) VALUES (?, ?, ?)", (last + 1, workers, epoch))
        db.execute("INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
                   (step_id, key, epoch, pickle.dumps(state)))  # fmt: skip
    return epoch


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "cluster-2x1"])
def test_a_snapshot_of_an_epoch_the_cluster_never_finished_is_never_resumed_from(
    settings: Settings, redis_client: redis.Redis, processes: int
) -> None:
    """A killed run's snapshot of its unfinished epoch must not come back at a later resume.

    The member ledger's snapshot a killed execution wrote for the epoch it was in (here: a ledger
    that had seen nothing yet) sits at the epoch the next run resumes from. That run, tailing with
    nothing to read, passes the epoch without touching the ledger and is killed in turn; the run
    after it resumes past the epoch and, unless the row is gone, loads it as the ledger's newest
    state: the members' earnings of the first run vanish (in the oracle test above, the book then
    drops their replay as duplicates, so they never come back).
    """
    settings = settings.model_copy(update={"loyalty_shards": 1, "processes": processes})
    assert settings.recovery.dir is not None
    directory = flow_recovery_dir(settings.recovery.dir, "loyalty")
    members = [f"C-{i}" for i in range(4)]
    publish(settings, [product("SKU-001", "toys"), *(sale(f"T-{c}", c, T0, [("SKU-001", 2, 10.0)]) for c in members)])
    run_to_end(settings, flow="loyalty")
    assert _pending(redis_client) == dict.fromkeys(members, 20)

    nothing_seen = LedgerStage(settings)(None).snapshot()
    unfinished = _leave_unfinished_snapshot(directory, "loyalty.ledger", "ledger:0", nothing_seen)
    tailing = start_flow("loyalty", settings.model_copy(update={"flow_stop_at_end": False}))
    deadline = time.monotonic() + 120
    while (resume_epoch(directory) or 0) <= unfinished and time.monotonic() < deadline:
        time.sleep(0.05)
    tailing.kill()
    assert (resume_epoch(directory) or 0) > unfinished, "the tailing run never finished the planted epoch"

    publish(settings, [sale(f"T2-{c}", c, T0 + DAY, [("SKU-001", 1, 10.0)]) for c in members])
    run_to_end(settings, flow="loyalty")
    assert _pending(redis_client) == dict.fromkeys(members, 30)  # with the planted ledger back: 20 (fenced) or 10
