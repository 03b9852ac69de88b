"""The merchandising flow and its API end to end: real broker, real Redis, a real Bytewax run.

A season of events goes to the topics; the flow runs to the end of its input;
its suggestions must be on `omni.suggestions`, in Redis, and served by the API.
"""

# These tests are about their feature; keys and roles are tests/integration/test_api_auth.py's, so auth is off here.

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient

from events.registry import key_fields
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings
from serving.app import create_app
from state import keys
from tests.e2e.test_inventory_e2e import consume_topic
from tests.harness.flows import publish, run_to_end
from tests.unit.flows.test_merchandising_wiring import SETTINGS, big_order, envelope, season

pytestmark = pytest.mark.integration

SEASON_END = datetime(2026, 10, 15, tzinfo=UTC)


def published(settings: Settings, records: list[KafkaRecord]) -> list[tuple[Topic, bytes | None, bytes]]:
    """The wiring test's records as messages on this test's topics, keyed as the contract says."""
    out: list[tuple[Topic, bytes | None, bytes]] = []
    for record in records:
        topic = Topic.from_name(record.topic, "omni.")
        assert record.value is not None
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            out.append((topic, None, record.value))
            continue
        field = next(f for f in key_fields(topic, event.get("type")) if event.get(f))
        out.append((topic, str(event[field]).encode(), record.value))
    return out


def topic_records(settings: Settings, topic: Topic) -> list[dict[str, object]]:
    return [orjson.loads(value) for _, value in consume_topic(settings, settings.topic(topic)) if value]


@pytest.fixture
def merch_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"merch": {"season_end": SEASON_END, "review_interval_s": 86_400.0,
                                                 "shards": 4}})  # fmt: skip


@pytest.fixture
def season_run(merch_settings: Settings) -> Settings:
    publish(merch_settings, published(merch_settings, season(transfer=False).records))
    run_to_end(merch_settings, flow="merchandising")
    return merch_settings


@pytest.fixture
def api(season_run: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(season_run.model_copy(update={"auth_enabled": False}))) as client:
        yield client


def test_suggestions_reach_the_topic_and_redis(season_run: Settings, redis_client: object) -> None:
    records = topic_records(season_run, Topic.SUGGESTIONS)

    transfers = [r for r in records if r["kind"] == "transfer"]
    assert transfers and {(r["sku"], r["from_location"], r["to_location"]) for r in transfers} == {
        ("SKU-HOT", "STORE-02", "STORE-01")}  # fmt: skip
    assert [r["sku"] for r in records if r["kind"] == "markdown"] == ["SKU-SLOW"]
    client = redis_client
    assert client.smembers(keys.suggestion_skus("transfer")) == {b"SKU-HOT"}  # type: ignore[attr-defined]
    assert client.smembers(keys.suggestion_skus("markdown")) == {b"SKU-SLOW"}  # type: ignore[attr-defined]
    stored = orjson.loads(client.hget(keys.suggestions("transfer", "SKU-HOT"), keys.DOC_FIELD))  # type: ignore[attr-defined]
    assert [s["version"] for s in stored] == [transfers[-1]["version"]]


def test_the_api_serves_open_transfers_and_markdowns(api: TestClient) -> None:
    body = api.get("/v1/suggestions/transfers").json()
    (transfer,) = body["items"]
    assert (transfer["sku"], transfer["from_location"], transfer["to_location"]) == ("SKU-HOT", "STORE-02", "STORE-01")
    assert transfer["qty"] > 0 and transfer["expected_stockout_avoided"] > 0 and transfer["reason"]
    assert api.get("/v1/suggestions/transfers?location_id=STORE-01").json()["items"] == [transfer]
    assert api.get("/v1/suggestions/transfers?location_id=WH-01").json()["items"] == []
    assert api.get("/v1/suggestions/transfers?sku=SKU-SLOW").json()["items"] == []

    (markdown,) = api.get("/v1/suggestions/prices").json()["items"]
    assert (markdown["sku"], markdown["current_price"], markdown["suggested_price"]) == ("SKU-SLOW", 50.0, 40.0)
    assert api.get("/v1/suggestions/prices?sku=SKU-SLOW").json()["items"] == [markdown]
    assert api.get("/v1/suggestions/prices?sku=NO-SUCH-SKU").json()["items"] == []


@pytest.mark.parametrize("query", ["transfers?limit=0", "transfers?limit=5000", "prices?sku=", "transfers?limit=x"])
def test_bad_parameters_are_a_422_naming_them(api: TestClient, query: str) -> None:
    response = api.get(f"/v1/suggestions/{query}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter" and error["message"].split(":")[0] in ("limit", "sku")


def test_running_the_flow_again_changes_nothing(season_run: Settings, redis_client: object) -> None:
    client = redis_client
    pattern = f"{keys.NAMESPACE}:suggest:*"
    before = {k: client.hgetall(k) for k in client.scan_iter(match=pattern) if client.type(k) == b"hash"}  # type: ignore[attr-defined]
    run_to_end(season_run, flow="merchandising")  # resumes from its snapshots; a replay would be fenced off
    after = {k: client.hgetall(k) for k in client.scan_iter(match=pattern) if client.type(k) == b"hash"}  # type: ignore[attr-defined]
    assert before and after == before


def test_a_whole_order_cancel_gives_the_units_back(merch_settings: Settings) -> None:
    """The cancel on `omni.inventory` names only the order, whose lines came on `omni.clickstream`."""
    topics = season(transfer=False)
    big_order(topics, 15)  # reserves what STORE-02 could spare for STORE-01: uncancelled, no transfer (wiring test)
    cancel = envelope("c-big", "order_cancel", 15.5) | {"order_id": "O-BIG"}
    topics.records.insert(0, KafkaRecord(SETTINGS.topic(Topic.INVENTORY), 0, 0, orjson.dumps(cancel), None))
    publish(merch_settings, published(merch_settings, topics.records))
    run_to_end(merch_settings, flow="merchandising")

    transfers = [r for r in topic_records(merch_settings, Topic.SUGGESTIONS) if r["kind"] == "transfer"]
    assert transfers and transfers[-1]["status"] == "open"
    assert (transfers[-1]["from_location"], transfers[-1]["to_location"]) == ("STORE-02", "STORE-01")
