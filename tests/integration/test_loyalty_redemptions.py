"""Redemptions through the real API, broker, Redis and a live Bytewax loyalty flow: races, retries, bad input."""

# These tests are about their feature; keys and roles are tests/integration/test_api_auth.py's, so auth is off here.

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from events.topics import Topic
from flows.launcher import FlowRun, settings_env, start_flow
from omnistream.settings import Settings
from omnistream.stack import free_port
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish
from tests.unit.loyalty.events import DAY, Record, sale

pytestmark = pytest.mark.integration

NOW = time.time()
LONG_AGO = NOW - 60 * DAY  # past the 30-day return window: the points are spendable


def clock() -> Record:
    """Today's sale of another member: event time (the ledger's clock) moves to now."""
    return sale("T-NOW", "C-OTHER", NOW, [("TOY-2", 1, 1.0)], store="S2")


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """A running loyalty flow and API over the test's broker and Redis."""
    flow: FlowRun = start_flow("loyalty", settings)
    port = free_port()
    env = {**os.environ, **settings_env(settings), "OMNISTREAM_AUTH_ENABLED": "false"}
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app", "--host",
                            "127.0.0.1", "--port", str(port), "--no-access-log"], env=env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield settings, base
    finally:
        api.terminate()
        api.wait(10)
        flow.stop()


def _member(client: redis.Redis, customer_id: str, timeout_s: float = 60.0, **expect: int) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        doc = read_doc(client, keys.loyalty_member(customer_id))
        if doc is not None:
            parsed: dict[str, object] = orjson.loads(doc)
            if all(parsed.get(k) == v for k, v in expect.items()):
                return parsed
        assert time.monotonic() < deadline, f"member {customer_id} never reached {expect}: {doc!r}"
        time.sleep(0.05)


def _ledger_entries(settings: Settings) -> list[dict[str, object]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "loyalty-test",
                         "enable.auto.commit": False})  # fmt: skip
    topic = settings.topic(Topic.LOYALTY)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.topic.partitions)])
    found: list[dict[str, object]] = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 3.0:
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        found.append(orjson.loads(message.value()))
        idle_since = time.monotonic()
    consumer.close()
    return found


def _post(base: str, customer_id: str, key: str | None, body: object) -> httpx.Response:
    """POST a redemption as a client does: a 503 (Redis or the broker too slow, on a loaded machine) is
    no answer, so the client retries it with the same key, a few times."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    for _ in range(5):
        answer = httpx.post(f"{base}/v1/loyalty/{customer_id}/redemptions", content=content,
                            headers={**headers, "content-type": "application/json"}, timeout=10.0)  # fmt: skip
        if answer.status_code != 503:
            break
        time.sleep(0.2)
    return answer


def test_twenty_racing_redemptions_of_one_balance_exactly_one_wins_and_retries_repeat_the_answer(
    live: tuple[Settings, str], redis_client: redis.Redis
) -> None:
    settings, base = live
    publish(settings, [sale("T1", "C-RACE", LONG_AGO, [("TOY-1", 4, 25.0)]), clock()])  # 100 points
    assert _member(redis_client, "C-RACE", available=100)["pending"] == 0

    with ThreadPoolExecutor(20) as pool:
        first = list(pool.map(lambda i: _post(base, "C-RACE", f"race-{i}", {"points": 100}), range(20)))
        retried = list(pool.map(lambda i: _post(base, "C-RACE", f"race-{i}", {"points": 100}), range(20)))

    statuses = [r.status_code for r in first]
    assert statuses.count(201) == 1, [(r.status_code, r.text) for r in first]
    assert statuses.count(409) == 19, statuses
    refused = [r.json() for r in first if r.status_code == 409]
    assert {r["error"]["code"] for r in refused} == {"insufficient_points"}
    for a, b in zip(first, retried, strict=True):
        assert (a.status_code, a.json()) == (b.status_code, b.json())
    member = _member(redis_client, "C-RACE", available=0)
    assert member["redeemed"] == 100

    entries = [e for e in _ledger_entries(settings) if e["customer_id"] == "C-RACE"]
    redeemed = [e for e in entries if e["kind"] == "redeem"]
    assert [e["points"] for e in redeemed] == [-100]
    # Every refusal is the flow's decision, recorded once: earn, mature, one redeem, 19 refusals.
    assert all("redemption" in r and r["redemption"]["status"] == "rejected" for r in refused)
    assert len({e["entry_id"] for e in entries}) == len(entries) == 2 + 1 + 19


def test_bad_redemptions_get_clear_4xx_and_change_nothing(
    live: tuple[Settings, str], redis_client: redis.Redis
) -> None:
    settings, base = live
    publish(settings, [sale("T1", "C-BAD", LONG_AGO, [("TOY-1", 1, 30.0)]), clock()])  # 30 points
    _member(redis_client, "C-BAD", available=30)

    cases = {
        "negative": _post(base, "C-BAD", "k1", {"points": -5}),
        "zero": _post(base, "C-BAD", "k2", {"points": 0}),
        "fraction": _post(base, "C-BAD", "k3", {"points": 1.5}),
        "garbage": _post(base, "C-BAD", "k4", b"{not json"),
        "extra field": _post(base, "C-BAD", "k5", {"points": 1, "free": True}),
        "no key": _post(base, "C-BAD", None, {"points": 1}),
        "bad key": _post(base, "C-BAD", "bad key with spaces", {"points": 1}),
        "over balance": _post(base, "C-BAD", "k6", {"points": 31}),
        "unknown member": _post(base, "C-NOBODY", "k7", {"points": 1}),
    }
    got = {name: (r.status_code, r.json()["error"]["code"]) for name, r in cases.items()}
    assert got == {
        "negative": (422, "invalid_parameter"),
        "zero": (422, "invalid_parameter"),
        "fraction": (422, "invalid_parameter"),
        "garbage": (422, "invalid_parameter"),
        "extra field": (422, "invalid_parameter"),
        "no key": (422, "invalid_parameter"),
        "bad key": (422, "invalid_parameter"),
        "over balance": (409, "insufficient_points"),
        "unknown member": (404, "not_found"),
    }
    assert "Idempotency-Key" in cases["no key"].json()["error"]["message"]

    ok = _post(base, "C-BAD", "k8", {"points": 10, "order_ref": "O-9"})
    assert ok.status_code == 201, ok.text
    decision = ok.json()
    assert (decision["status"], decision["points"], decision["available"]) == ("accepted", 10, 20)
    reused = _post(base, "C-BAD", "k8", {"points": 11})
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
    read = httpx.get(f"{base}/v1/loyalty/C-BAD/redemptions/{decision['redemption_id']}")
    assert (read.status_code, read.json()) == (201, decision)
    member = httpx.get(f"{base}/v1/loyalty/C-BAD").json()
    assert (member["available"], member["redeemed"], member["tier"]) == (20, 10, "member")
    # The over-balance request was the flow's to refuse: an entry, no movement.
    assert [(e["kind"], e["points"]) for e in member["entries"]] == [
        ("redeem", -10),
        ("redeem_rejected", 0),
        ("mature", 30),
        ("earn", 30),
    ]
    assert cases["over balance"].json()["redemption"]["reason"] == "insufficient_points"
    assert httpx.get(f"{base}/v1/loyalty/C-NOBODY").status_code == 404
