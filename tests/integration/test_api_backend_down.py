"""The API when Redis is down or hangs: a 503 error body within 100 ms, never a hang (CONTRACT.md)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from omnistream.settings import Settings
from omnistream.stack import free_port
from serving.app import create_app
from serving.backend import BoundedStockReader
from state.connection import connect_async

REDIS_TIMEOUT_MS = 80  # the default, pinned: the bounds below follow from it


def api_settings(redis_url: str, *, auth: bool = False) -> Settings:
    # Auth off by default here: these tests are about each route's own Redis failures, which an
    # API-key lookup (also a Redis read) would otherwise answer first. The last tests turn it on.
    return Settings(redis_url=redis_url, api_redis_timeout_ms=REDIS_TIMEOUT_MS, flow_metrics_port=0,
                    auth_enabled=auth)  # fmt: skip


READ_PATHS = [
    "/v1/inventory/SKU-1",
    "/v1/inventory/SKU-1/locations/store-1",
    "/v1/inventory?skus=SKU-1,SKU-2",
    "/v1/recommendations?user_id=U-1&sku=SKU-1&location_id=store-1",
]


def timed_get(client: TestClient, path: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path)
    return time.perf_counter() - start, response


def assert_backend_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == "backend_unavailable"
    assert body["error"]["message"]
    assert "127.0.0.1" not in body["error"]["message"]  # the cause stays in the log


@pytest.fixture
def hung_redis() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    listener.close()
    for conn in accepted:
        conn.close()


@pytest.fixture
def closed_port_client() -> Iterator[TestClient]:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: connections are refused
    with TestClient(create_app(api_settings(url))) as client:
        yield client


@pytest.mark.parametrize("path", READ_PATHS)
def test_read_inventory_with_redis_refusing_is_503_within_100ms(closed_port_client: TestClient, path: str) -> None:
    closed_port_client.get("/healthz")  # warm the client's transport, so only the route is timed

    elapsed_s, response = timed_get(closed_port_client, path)

    assert_backend_unavailable(response)
    assert elapsed_s < 0.100


def test_readyz_with_redis_refusing_is_503(closed_port_client: TestClient) -> None:
    closed_port_client.get("/healthz")  # warm the client's transport, so only the route is timed (as above)

    elapsed_s, response = timed_get(closed_port_client, "/readyz")

    assert_backend_unavailable(response)
    assert elapsed_s < 0.100


def test_healthz_with_redis_refusing_is_ok(closed_port_client: TestClient) -> None:
    assert closed_port_client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", [*READ_PATHS, "/readyz"])
def test_read_with_redis_hung_is_503_within_150ms(hung_redis: str, path: str) -> None:
    with TestClient(create_app(api_settings(hung_redis))) as client:
        client.get("/healthz")

        elapsed_s, response = timed_get(client, path)

        assert_backend_unavailable(response)
        assert elapsed_s < 0.150


def test_api_keeps_serving_after_redis_hangs(hung_redis: str) -> None:
    with TestClient(create_app(api_settings(hung_redis))) as client:
        for _ in range(5):
            elapsed_s, response = timed_get(client, "/v1/inventory/SKU-1")
            assert_backend_unavailable(response)
            assert elapsed_s < 0.150

        assert client.get("/healthz").status_code == 200
        elapsed_s, response = timed_get(client, "/v1/inventory/SKU-1")
        assert_backend_unavailable(response)
        assert elapsed_s < 0.150
        metrics = client.get("/metrics").text
        assert 'omnistream_api_requests_total{method="GET",route="/v1/inventory/{sku}",status="503"} 6.0' in metrics


def test_bounded_stock_reader_ends_within_budget_when_socket_timeouts_are_longer(hung_redis: str) -> None:
    # Sentinel and Cluster chain round trips, each under its own socket timeout; the deadline caps the sum.
    async def read_once() -> float:
        client = connect_async(hung_redis, timeout_s=2.0)
        reader = BoundedStockReader(client, timeout_s=0.08)
        start = time.perf_counter()
        try:
            with pytest.raises(TimeoutError):
                await reader.sku("SKU-1")
            return time.perf_counter() - start
        finally:
            await client.aclose()

    assert asyncio.run(read_once()) < 0.150


@pytest.mark.parametrize("path", READ_PATHS)
def test_key_check_with_redis_hung_is_503_within_150ms_under_the_route(hung_redis: str, path: str) -> None:
    """With auth on, the key lookup is the first Redis read: it fails as fast, and is counted under the route."""
    headers = {"Authorization": "Bearer osk_unverifiable"}
    with TestClient(create_app(api_settings(hung_redis, auth=True)), headers=headers) as client:
        client.get("/healthz")

        elapsed_s, response = timed_get(client, path)

        assert_backend_unavailable(response)
        assert elapsed_s < 0.150
        assert client.get("/v1/inventory/SKU-1", headers={"Authorization": ""}).status_code == 401  # no lookup needed
        metrics = client.get("/metrics").text
        route = path.split("?")[0].replace("SKU-1", "{sku}").replace("store-1", "{location_id}")
        assert f'route="{route}",status="503"}} 1.0' in metrics
