"""API keys, roles and the rate limit, on every route, against a real uvicorn over a real Redis.

The routes come from the API's own OpenAPI schema (so a route added later is covered
without editing this file) plus the requests the fast paths answer ahead of FastAPI
(`serving.fast_paths`), which no FastAPI dependency would see.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from omnistream.settings import Settings
from serving.app import create_app
from serving.auth.roles import Role
from state.api_keys import KeyStore
from state.connection import connect
from tests.harness.api import issue_key, key_headers, running_api

pytestmark = pytest.mark.integration

# Requests the fast paths serve themselves: well-formed, so they never reach FastAPI's routing.
FAST_PATH_REQUESTS = [
    ("GET", "/v1/inventory/SKU-1", Role.STOREFRONT),
    ("GET", "/v1/recommendations?user_id=u-1&k=3", Role.STOREFRONT),
    ("GET", "/v1/segments", Role.CONSOLE),
]
PUBLIC = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/"}


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    api_settings = settings.model_copy(update={"api_redis_timeout_ms": 2000, "api_sse_keepalive_s": 0.3})
    log_path = tmp_path / "api.log"
    with running_api(api_settings, log_path) as base:
        yield base, log_path


@pytest.fixture
def keys(settings: Settings) -> dict[Role, str]:
    return {role: issue_key(settings.redis.url, role.label, f"{role.label}-test").key for role in Role}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def _operations(base: str) -> list[tuple[str, str, Role]]:
    schema: dict[str, Any] = httpx.get(f"{base}/openapi.json").json()
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path in PUBLIC:
                assert operation["security"] == [], path
                continue
            found.append((method.upper(), _concrete(path), Role.parse(operation["x-required-role"])))
    return found


def _status(base: str, method: str, path: str, headers: dict[str, str]) -> int:
    # A stream answers its headers and then runs on: read the status and close.
    with httpx.stream(method, f"{base}{path}", headers=headers, timeout=10) as response:
        return response.status_code


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message"}


def test_every_route_refuses_no_key_and_a_lower_role_and_admits_its_role(
    api: tuple[str, Path], keys: dict[Role, str]
) -> None:
    base, _ = api
    operations = _operations(base) + FAST_PATH_REQUESTS
    paths = {path.split("?")[0] for _, path, _ in operations}
    # Every router of the app is in the walk (a schema that lost its routes would pass vacuously).
    for expected in ("/v1/inventory", "/v1/inventory/x-1", "/v1/alerts", "/v1/alerts/stream", "/v1/scores/x-1",
                     "/v1/recommendations", "/v1/experiments"):  # fmt: skip
        assert expected in paths
    for method, path, needed in operations:
        missing = httpx.request(method, f"{base}{path}")
        _assert_error(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.request(method, f"{base}{path}", headers={"X-API-Key": "osk_not-a-key"})
        _assert_error(wrong, 401, "unauthorized")
        for role in Role:
            status = _status(base, method, path, key_headers(keys[role]))
            if role < needed:
                assert status == 403, (method, path, role)
            else:
                assert status not in (401, 403, 429), (method, path, role, status)
        # X-API-Key works as well as the bearer header.
        assert _status(base, method, path, {"X-API-Key": keys[Role.ADMIN]}) not in (401, 403)


def test_roles_match_the_documented_map(api: tuple[str, Path]) -> None:
    base, _ = api
    roles = {path: role for _, path, role in _operations(base)}
    assert roles["/v1/inventory/x-1"] == Role.STOREFRONT
    assert roles["/v1/recommendations"] == Role.STOREFRONT
    assert roles["/v1/alerts"] == Role.CONSOLE
    assert roles["/v1/scores/x-1"] == Role.CONSOLE
    assert roles["/v1/experiments"] == Role.CONSOLE


def test_public_paths_need_no_key(api: tuple[str, Path]) -> None:
    base, _ = api
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/"):
        assert httpx.get(f"{base}{path}").status_code == 200, path


def test_a_route_no_role_was_decided_for_needs_admin(settings: Settings, keys: dict[Role, str]) -> None:
    """A router added without an entry in `serving.auth.roles` is closed to all but admin keys."""
    app = create_app(settings)
    undecided = APIRouter(prefix="/v1/undecided")
    undecided.get("/{thing}")(lambda thing: {"thing": thing})
    app.include_router(undecided)
    with TestClient(app) as client:
        _assert_error(client.get("/v1/undecided/x"), 401, "unauthorized")
        for role in (Role.STOREFRONT, Role.CONSOLE):
            _assert_error(client.get("/v1/undecided/x", headers=key_headers(keys[role])), 403, "forbidden")
        assert client.get("/v1/undecided/x", headers=key_headers(keys[Role.ADMIN])).json() == {"thing": "x"}
        # A path no route serves: any valid key learns it is not there.
        _assert_error(client.get("/v1/nowhere/x"), 401, "unauthorized")
        _assert_error(client.get("/v1/nowhere/x", headers=key_headers(keys[Role.STOREFRONT])), 404, "not_found")


def test_rate_limit_answers_429_with_retry_after(api: tuple[str, Path], settings: Settings) -> None:
    base, _ = api
    # One request per 5 s, burst 1 (2 s of the rate, at least one): the next token is seconds away
    # however slow the machine, so the outcome does not depend on timing.
    key = issue_key(settings.redis.url, "storefront", "slow", rate_per_s=0.2).key
    assert httpx.get(f"{base}/v1/inventory/SKU-1", headers=key_headers(key)).status_code == 404  # admitted
    limited = httpx.get(f"{base}/v1/inventory/SKU-1", headers=key_headers(key))
    _assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 5
    # The FastAPI routes are limited by the same bucket.
    _assert_error(httpx.get(f"{base}/v1/inventory?skus=A", headers=key_headers(key)), 429, "rate_limited")
    # Another key is not slowed by this one's spending.
    other = issue_key(settings.redis.url, "storefront", "other").key
    assert httpx.get(f"{base}/v1/inventory/SKU-1", headers=key_headers(other)).status_code == 404


def test_revoked_key_stops_working_within_a_second(api: tuple[str, Path], settings: Settings) -> None:
    base, _ = api
    issued = issue_key(settings.redis.url, "console", "leaving")
    url = f"{base}/v1/alerts"
    assert httpx.get(url, headers=key_headers(issued.key)).status_code == 200  # cached in the API now
    client = connect(settings.redis.url)
    try:
        assert KeyStore(client).revoke(issued.record.id) is not None
    finally:
        client.close()
    revoked_at = time.monotonic()
    while httpx.get(url, headers=key_headers(issued.key)).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0, "the revoked key still works after 1 s"
        time.sleep(0.02)


def test_no_key_material_in_logs_or_metrics(
    api: tuple[str, Path], keys: dict[Role, str], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    base, log_path = api
    for key in keys.values():
        for path in ("/v1/inventory/SKU-1", "/v1/alerts", "/v1/nowhere", "/v1/recommendations?user_id=u"):
            httpx.get(f"{base}{path}", headers=key_headers(key))
            httpx.get(f"{base}{path}", headers={"X-API-Key": key + "x"})
    metrics = httpx.get(f"{base}/metrics").text
    log = log_path.read_text(errors="replace")
    assert "/v1/inventory/{sku}" in metrics  # the requests were counted, by route template
    for key in keys.values():
        secret = key.removeprefix("osk_")
        assert secret[:16] not in metrics
        assert secret[:16] not in log
        assert secret[:16] not in caplog.text


def test_auth_is_on_unless_turned_off_and_off_is_loud(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OMNISTREAM_AUTH_")]:
        monkeypatch.delenv(name)
    assert Settings().auth.enabled  # the default: keys required
    create_app(settings)
    assert "AUTHENTICATION IS OFF" not in capsys.readouterr().err
    open_app = create_app(settings.model_copy(update={"auth_enabled": False}))
    assert "AUTHENTICATION IS OFF" in capsys.readouterr().err
    with TestClient(open_app) as client:
        assert client.get("/v1/alerts").status_code == 200
        assert client.get("/v1/session").json() == {"key_id": None, "role": "admin", "auth": False}
