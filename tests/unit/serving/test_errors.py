"""Every failure of the API is the contract's error body; nothing internal leaks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from serving.errors import InvalidParameter, NotFound, install_error_handlers


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/omnistream")

    @app.get("/redis-down")
    async def redis_down() -> None:
        raise RedisConnectionError("Error 111 connecting to 10.0.0.7:6379")

    @app.get("/too-slow")
    async def too_slow() -> None:
        raise TimeoutError

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("no stock record for sku 'X'")

    @app.get("/refused")
    async def refused() -> None:
        raise InvalidParameter("skus", "give at least one SKU")

    @app.get("/typed")
    async def typed(k: int) -> None:
        return None

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "message"]
    error: dict[str, str] = body["error"]
    return error


def test_unexpected_exception_is_500_without_internals(client: TestClient) -> None:
    response = client.get("/boom")

    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "secret" not in error["message"]
    assert "RuntimeError" not in response.text


@pytest.mark.parametrize("path", ["/redis-down", "/too-slow"])
def test_redis_failure_or_timeout_is_503_without_hosts(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 503
    assert error_of(response)["code"] == "backend_unavailable"
    assert "10.0.0.7" not in response.text


def test_not_found_is_404(client: TestClient) -> None:
    response = client.get("/missing")

    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "no stock record for sku 'X'"}


def test_invalid_parameter_is_422_naming_it(client: TestClient) -> None:
    response = client.get("/refused")

    assert response.status_code == 422
    assert error_of(response) == {"code": "invalid_parameter", "message": "skus: give at least one SKU"}


def test_request_validation_error_is_422_naming_the_parameter(client: TestClient) -> None:
    response = client.get("/typed", params={"k": "seven"})

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith("k: ")


def test_wrong_method_is_405_with_error_body(client: TestClient) -> None:
    response = client.post("/missing")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"
