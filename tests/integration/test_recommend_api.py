"""The recommendations API when its backends fail: Redis down is a fast 503, a broker outage costs nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from omnistream.settings import Settings
from omnistream.stack import free_port
from serving.app import create_app
from tests.integration.test_api_backend_down import (  # the hung-Redis fixture is shared
    REDIS_TIMEOUT_MS,
    assert_backend_unavailable,
    hung_redis,  # noqa: F401
    timed_get,
)

pytestmark = pytest.mark.integration

REC_PATHS = ["/v1/recommendations?user_id=U-1&sku=SKU-1&location_id=S1", "/v1/experiments"]


def _settings(redis_url: str, brokers: str) -> Settings:
    # Auth off: these tests are about the route's own Redis and broker failures (test_api_auth.py covers keys).
    return Settings(redis_url=redis_url, kafka_brokers=brokers, api_redis_timeout_ms=REDIS_TIMEOUT_MS,
                    flow_metrics_port=0, auth_enabled=False)  # fmt: skip


@pytest.fixture
def no_broker() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there


@pytest.mark.parametrize("path", REC_PATHS)
def test_recommendations_with_redis_refusing_is_503_within_100ms(no_broker: str, path: str) -> None:
    with TestClient(create_app(_settings(f"redis://127.0.0.1:{free_port()}/0", no_broker))) as client:
        client.get("/healthz")

        elapsed_s, response = timed_get(client, path)

        assert_backend_unavailable(response)
        assert elapsed_s < 0.100


@pytest.mark.parametrize("path", REC_PATHS)
def test_recommendations_with_redis_hung_is_503_within_150ms(hung_redis: str, no_broker: str, path: str) -> None:  # noqa: F811
    with TestClient(create_app(_settings(hung_redis, no_broker))) as client:
        client.get("/healthz")

        elapsed_s, response = timed_get(client, path)

        assert_backend_unavailable(response)
        assert elapsed_s < 0.150


@pytest.fixture
def api_without_broker(redis_url: str, no_broker: str) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(redis_url, no_broker))) as client:
        yield client


def test_broker_outage_neither_fails_nor_slows_recommendations(api_without_broker: TestClient) -> None:
    api_without_broker.get("/healthz")
    slowest_s = 0.0
    for n in range(200):
        start = time.perf_counter()
        response = api_without_broker.get("/v1/recommendations", params={"session_id": f"S-{n}"})
        slowest_s = max(slowest_s, time.perf_counter() - start)
        assert response.status_code == 200, response.text
    assert slowest_s < 0.100  # nothing waits for the broker

    metrics = api_without_broker.get("/metrics").text
    answers = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("omnistream_api_rec_answers_total{"))  # fmt: skip
    assert answers == 200
    assert 'omnistream_api_rec_served_records_total{outcome="queued"} 200.0' in metrics


def test_experiments_lists_every_configured_arm_with_zero_counts_before_any_answer(
    api_without_broker: TestClient,
) -> None:
    body = api_without_broker.get("/v1/experiments").json()

    assert [arm["variant"] for arm in body["variants"]] == ["blend", "ranked"]
    assert [arm["use_ranker"] for arm in body["variants"]] == [False, True]
    for arm in body["variants"]:
        assert arm["metrics"]["requests"] == 0 and arm["metrics"]["ctr"] == 0.0
