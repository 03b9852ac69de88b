"""Fuzzing the running API from its own OpenAPI schema (Schemathesis + Hypothesis), with a valid key.

Every operation of the schema gets generated requests (valid and invalid parameters, odd
strings, out-of-range numbers) against a real uvicorn over a real Redis holding some state.
Two properties must hold for every answer: no 5xx, and every 4xx is the contract's error body
`{"error": {"code", "message"}}` as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject
from hypothesis import settings as hypothesis_settings

from events.stock import LocationStock, SkuStock
from omnistream.settings import Settings
from state.connection import connect
from state.stock_writer import StockWriter
from tests.harness.api import issue_key, key_headers, running_api

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 60


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    client = connect(settings.redis.url)
    try:
        StockWriter(client).write_batch([SkuStock(sku="SKU-1", version=1, as_of=1795310625.0, locations=(
            LocationStock(location_id="store-1", on_hand=3, reserved=1, updated_at=1795310625.0),))])  # fmt: skip
    finally:
        client.close()
    api_settings = settings.model_copy(update={"api_redis_timeout_ms": 2000, "api_sse_keepalive_s": 0.2,
                                               "auth_rate_per_s": 1_000_000.0})  # fmt: skip
    with running_api(api_settings, tmp_path / "api.log") as base:
        yield base


def _check(method: str, path: str, response: Any) -> None:
    status = response.status_code
    assert status < 500, f"{method} {path}: {status} {response.text[:300]}"
    if 400 <= status < 500:
        assert response.headers["content-type"].startswith("application/json"), (method, path, status)
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


def _fuzzer(
    operation: schemathesis.APIOperation,
    client: httpx.Client,
    base: str,
    headers: dict[str, str],
    tried: dict[str, int],
) -> Callable[[], None]:
    """A Hypothesis test sending `operation` generated requests; counts them in `tried`."""
    label = f"{operation.method.upper()} {operation.path}"
    streaming = operation.path.endswith("/stream")  # an SSE stream answers its headers and runs on

    @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        request = case.as_transport_kwargs(base_url=base, headers=headers)
        request["headers"].update(headers)  # the valid key wins over generated auth headers
        try:
            with client.stream(**request) as response:  # a stream's status and headers; its body is not read
                if not streaming or response.status_code != 200:
                    response.read()
                _check(case.method, case.formatted_path, response)
        except (UnicodeEncodeError, httpx.LocalProtocolError):
            reject()  # a header value HTTP cannot carry: no request to send
        tried[label] = tried.get(label, 0) + 1

    return fuzz


def test_fuzzed_requests_get_no_server_error_and_every_4xx_has_the_error_body(api: str, settings: Settings) -> None:
    headers = key_headers(issue_key(settings.redis.url, "admin", "fuzz").key)
    schema = schemathesis.openapi.from_dict(httpx.get(f"{api}/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the whole API, not a schema that lost its routes
    tried: dict[str, int] = {}
    with httpx.Client(timeout=10) as client:
        for operation in operations:
            _fuzzer(operation, client, api, headers, tried)()
    print(f"requests per operation: {tried}")
    assert all(n >= 1 for n in tried.values()) and len(tried) == len(operations), tried
