"""The inventory flow's exactly-once effects: crashes and scale-out change nothing in Redis.

Real broker, real Redis, real Bytewax processes (tests/conftest.py).
"""

from __future__ import annotations

import random
import time

import pytest
import redis

from flows.dead_letters import owns_dead_letters
from flows.launcher import start_flow
from flows.registry import GENERATION_ENV
from omnistream.settings import Settings
from sim.workload import Workload
from state import keys
from tests.harness.flows import publish, run_to_end, start, stock_hashes, stream_records, with_poll_size

pytestmark = pytest.mark.integration

N_EVENTS = 100_000


def _publish_workload(settings: Settings, n_events: int = N_EVENTS, seed: int = 11) -> Workload:
    # No checkout holds: they are decided in arrival order (CONTRACT.md "Reservations"), so two
    # independent runs may decide a borderline hold apart; everything else must match exactly.
    workload = Workload(seed=seed, n_skus=300, n_stores=6, n_warehouses=2, n_users=500, hold_share=0.0)
    publish(settings, ((r.topic, r.key, r.value) for r in workload.records(n_events)))
    return workload


def _other_db(settings: Settings, db: int) -> Settings:
    """The same topics, a separate Redis database and recovery directory: an independent run."""
    url = settings.redis.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return settings.model_copy(update={"redis_url": url, "recovery_dir": settings.recovery.dir.with_name(f"rec-{db}")})


def _applied(redis_url: str) -> int:
    """Movements the stored stock documents have applied: the sum of their versions (one per movement)."""
    client = redis.Redis.from_url(redis_url)
    field = keys.STOCK_VERSION_FIELD.encode()
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(match=keys.stock("*"), count=1000):
        pipe.hget(key, field)
    return sum(int(version or 0) for version in pipe.execute())


def test_inventory_flow_killed_repeatedly_ends_in_the_uninterrupted_state(settings: Settings) -> None:
    # Polls of 1,000 messages: the stock documents move on in many small steps, so a kill lands where it aims.
    settings = with_poll_size(settings, 1000)
    workload = _publish_workload(settings)
    run_to_end(settings)
    expected = stock_hashes(settings.redis.url)
    assert len(expected) > 250, "the workload should touch most SKUs"
    total = _applied(settings.redis.url)

    # Each kill aims at a share of the uninterrupted run's movements, the next always further on: a point of
    # progress, not of time (a slice of the uninterrupted run's time let a fast machine finish before kill 5
    # and needs the clock of a loaded one to agree with the one that measured it).
    crashed = _other_db(settings, 1)
    rng = random.Random(5)
    for kill, share in enumerate((0.10, 0.24, 0.38, 0.52, 0.66), start=1):
        # ... and past where the last run left Redis: start-up and the replay from the last snapshot are behind it.
        target = max(int(total * (share + rng.uniform(0.0, 0.06))), _applied(crashed.redis.url) + total // 50)
        run = start(crashed)
        deadline = time.monotonic() + 120
        while _applied(crashed.redis.url) < target:
            if not run.alive():
                pytest.fail(f"the flow finished before kill {kill} ({target:,} of {total:,} movements)")
            if time.monotonic() > deadline:
                pytest.fail(f"the flow made no progress to {target:,} movements in 120 s before kill {kill}")
            time.sleep(0.01)
        run.kill()  # SIGKILL: no chance to flush or snapshot
        assert _applied(crashed.redis.url) < total, f"kill {kill} came after the last movement"
    run_to_end(crashed)

    actual = stock_hashes(crashed.redis.url)
    assert actual.keys() == expected.keys()
    differing = [k for k in expected if actual[k] != expected[k]]
    examples = [(k, expected[k], actual[k]) for k in differing[:2]]
    assert not differing, f"{len(differing)} keys differ after crashes, e.g. {examples}"
    dead_letters = stream_records(crashed.redis.url, keys.dlq_stream())
    # The inventory flow dead-letters its own topics' malformed events (the loyalty flow, not run here, omni.members').
    owned = [n for topic, n in workload.malformed_count.items() if owns_dead_letters("inventory", topic)]
    assert len(dead_letters) == sum(owned)


def test_inventory_flow_on_two_processes_matches_one_process(settings: Settings) -> None:
    _publish_workload(settings, n_events=20_000, seed=12)
    run_to_end(settings)
    expected = stock_hashes(settings.redis.url)

    clustered = _other_db(settings, 2).model_copy(update={"processes": 2, "workers": 1})
    run_to_end(clustered)
    actual = stock_hashes(clustered.redis.url)

    assert actual.keys() == expected.keys()
    differing = [k for k in expected if actual[k] != expected[k]]
    assert not differing, f"{len(differing)} keys differ between 1 and 2 processes, e.g. {differing[:3]}"


def test_inventory_flow_replay_changes_nothing(settings: Settings) -> None:
    _publish_workload(settings, n_events=5_000, seed=13)
    run_to_end(settings)
    before = stock_hashes(settings.redis.url)
    dead_letters = len(stream_records(settings.redis.url, keys.dlq_stream()))

    # Mark every stored document: a write that got through the fence would overwrite the mark.
    client = redis.Redis.from_url(settings.redis.url)
    for key in before:
        client.hset(key, keys.STOCK_DOC_FIELD, b"written before the replay")

    # The same lineage of state re-reading every topic from the start, as a
    # recovery replay does: all its writes carry versions Redis already has.
    generation = (settings.recovery.dir / "inventory" / "generation").read_text().strip()
    replay = start_flow("inventory", settings.model_copy(update={"flow_stop_at_end": True}), recovery=False,
                        extra_env={GENERATION_ENV: generation})  # fmt: skip
    assert replay.wait(120) == 0

    after = stock_hashes(settings.redis.url)
    assert after.keys() == before.keys()
    rewritten = [
        key for key, fields in after.items() if fields[keys.STOCK_DOC_FIELD.encode()] != b"written before the replay"
    ]
    assert not rewritten, f"{len(rewritten)} SKUs were rewritten by the replay, e.g. {rewritten[:3]}"
    assert len(stream_records(settings.redis.url, keys.dlq_stream())) == dead_letters
