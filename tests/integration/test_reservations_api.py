"""`POST /v1/reservations` and `GET /v1/reservations/{id}` against real Redis and the real broker.

What the API does on its own: checks, the Idempotency-Key, publishing exactly
one event per reservation, the pending answer. The flow's decisions are
tests/e2e/test_reservations_e2e.py's.
"""

# These tests are about their feature; keys and roles are tests/integration/test_api_auth.py's, so auth is off here.

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastapi.testclient import TestClient

from events.stock import LocationStock, SkuStock
from events.topics import Topic
from omnistream.settings import Settings
from serving.app import create_app
from serving.idempotency import fingerprint
from serving.routes.reservations import ReservationRequest
from state import keys
from state.connection import connect, connect_async
from state.idempotency import IdempotencyStore
from state.stock_writer import StockWriter

pytestmark = pytest.mark.integration

KETTLE = SkuStock("KETTLE", 1, 0.0, (LocationStock("S1", 4, 0, 0.0), LocationStock("W1", 0, 0, 0.0)))
ASK = {"sku": "KETTLE", "location_id": "S1", "qty": 1}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    writer_client = connect(settings.redis.url)
    try:
        StockWriter(writer_client).write_batch([KETTLE])
    finally:
        writer_client.close()
    with TestClient(create_app(settings.model_copy(update={"auth_enabled": False}))) as client:
        yield client


def published(settings: Settings) -> list[dict[str, Any]]:
    """Every event on the inventory topic, decoded."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "check", "enable.auto.commit": False})
    topic = settings.topic(Topic.INVENTORY)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.topic.partitions)])
        events, idle = [], 0
        while idle < 3:
            messages = consumer.consume(100, timeout=0.5)
            idle = idle + 1 if not messages else 0
            events += [orjson.loads(m.value()) for m in messages if m.error() is None]
        return events
    finally:
        consumer.close()


def post(client: TestClient, body: Any, key: str | None = "k-1") -> httpx.Response:
    headers = {"content-type": "application/json"} | ({"Idempotency-Key": key} if key is not None else {})
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/reservations", content=content, headers=headers)


def test_a_reservation_is_published_once_and_pending_until_decided(client: TestClient, settings: Settings) -> None:
    first = post(client, ASK, "key-a")
    retry = post(client, ASK, "key-a")

    assert first.status_code == retry.status_code == 202, (first.text, retry.text)
    reservation_id = first.json()["reservation_id"]
    assert retry.json()["reservation_id"] == reservation_id and retry.headers["Idempotent-Replayed"] == "true"
    read = client.get(f"/v1/reservations/{reservation_id}")
    assert read.status_code == 200 and read.json()["status"] == "pending"
    assert {k: read.json()[k] for k in ("sku", "location_id", "qty")} == ASK
    events = published(settings)
    assert [(e["type"], e["event_id"], e["reservation_id"], e["qty"], e["hold_s"]) for e in events] == [
        ("reservation", reservation_id, reservation_id, 1, settings.reservations.hold_s)]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        pytest.param(ASK, None, 400, "missing_idempotency_key", id="no-key"),
        pytest.param(ASK, "", 400, "missing_idempotency_key", id="empty-key"),
        pytest.param(ASK, "a key", 400, "missing_idempotency_key", id="key-with-space"),
        pytest.param({**ASK, "sku": "GHOST"}, "k", 404, "unknown_sku", id="unknown-sku"),
        pytest.param({**ASK, "location_id": "S9"}, "k", 404, "unknown_location", id="unknown-location"),
        pytest.param({**ASK, "qty": 0}, "k", 422, "invalid_body", id="qty-0"),
        pytest.param({**ASK, "qty": -2}, "k", 422, "invalid_body", id="qty-negative"),
        pytest.param({**ASK, "qty": "1"}, "k", 422, "invalid_body", id="qty-string"),
        pytest.param({"sku": "KETTLE", "qty": 1}, "k", 422, "invalid_body", id="no-location"),
        pytest.param({**ASK, "colour": "red"}, "k", 422, "invalid_body", id="unknown-field"),
        pytest.param(b'{"sku": "KETTLE", "loc', "k", 422, "invalid_body", id="truncated-json"),
        pytest.param(b"[1, 2]", "k", 422, "invalid_body", id="not-an-object"),
        pytest.param({**ASK, "hold_s": 10 * 86_400}, "k", 422, "invalid_parameter", id="hold-too-long"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_nothing_reaches_kafka(
    client: TestClient, settings: Settings, body: Any, key: str | None, status: int, code: str
) -> None:
    response = post(client, body, key)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert published(settings) == []


def test_a_key_reused_for_another_request_is_refused_and_publishes_nothing_more(
    client: TestClient, settings: Settings
) -> None:
    assert post(client, ASK, "key-b").status_code == 202
    reused = post(client, {**ASK, "qty": 2}, "key-b")

    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused", reused.text
    assert len(published(settings)) == 1


def test_an_unknown_reservation_is_404(client: TestClient) -> None:
    response = client.get("/v1/reservations/rsv-nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_an_unknown_order_is_404(client: TestClient) -> None:
    response = client.get("/v1/orders/O-nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_retry_finishes_a_first_request_that_stopped_before_publishing(
    client: TestClient, settings: Settings
) -> None:
    # The first request claimed the key, then died (a timeout, a crash) before its event went out.
    first = orjson.dumps({"reservation_id": "rsv-first", "status": "pending", "location": "/v1/reservations/rsv-first"})
    digest = fingerprint(ReservationRequest(**ASK, hold_s=settings.reservations.hold_s))
    asyncio.run(_claim(settings.redis.url, digest, first))

    retry = post(client, ASK, "key-c")

    assert retry.status_code == 202 and retry.json()["reservation_id"] == "rsv-first", retry.text
    assert [e["event_id"] for e in published(settings)] == ["rsv-first"]
    assert client.get("/v1/reservations/rsv-first").json()["status"] == "pending"
    again = post(client, ASK, "key-c")  # now recorded: a plain replay, nothing more published
    assert again.headers["Idempotent-Replayed"] == "true" and len(published(settings)) == 1


async def _claim(redis_url: str, digest: bytes, answer: bytes) -> None:
    client = connect_async(redis_url, timeout_s=5.0)
    try:
        record = keys.idempotency("reservations", "key-c")
        assert (await IdempotencyStore(client).claim(record, digest, answer, 60.0)).first
    finally:
        await client.aclose()
