"""The attribution flow on the real broker and Redis, read through the real API."""

# These tests are about their feature; keys and roles are tests/integration/test_api_auth.py's, so auth is off here.

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from events.topics import Topic
from flows.launcher import settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port
from tests.harness.flows import publish, run_to_end
from tests.unit.loyalty.events import DAY, T0, link, page_view, purchase, sale

pytestmark = pytest.mark.integration

MAIL = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "xmas"}
ADS = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"}


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **settings_env(settings), "OMNISTREAM_AUTH_ENABLED": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--no-access-log"], env=env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded 2-core machine imports the app slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(10)


def _credits(settings: Settings) -> dict[str, dict[str, object]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "attribution-test"})
    topic = settings.topic(Topic.ATTRIBUTION)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.topic.partitions)])
    found: dict[str, dict[str, object]] = {}
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 3.0:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            record = orjson.loads(message.value())
            found[record["order_id"]] = record
            idle_since = time.monotonic()
    consumer.close()
    return found


def test_store_and_online_conversions_are_credited_to_their_campaigns_and_served(settings: Settings, api: str) -> None:
    events = [
        page_view("v1", "U1", "s1", T0, **MAIL),
        link("U1", "C1", T0 + 60),
        page_view("v2", "U1", "s2", T0 + DAY, **ADS),
        sale("T1", "C1", T0 + DAY + 600, [("A", 2, 50.0)]),  # in store, after two campaign visits: 100.0
        page_view("v3", "U2", "s3", T0 + 2 * DAY, **ADS),
        purchase("O2", "U2", T0 + 2 * DAY + 30, [("A", 1, 40.0)]),  # online: 40.0
        sale("T9", "C9", T0 + 2 * DAY, [("A", 1, 5.0)]),  # a member without a linked account: not credited
    ]
    publish(settings, events)
    run_to_end(settings, flow="attribution")

    credits = _credits(settings)
    assert set(credits) == {"T1", "O2"}
    assert credits["T1"]["credits"]["campaign"]["first_touch"] == {"xmas": 1.0}  # type: ignore[index]

    linear = httpx.get(f"{api}/v1/attribution", params={"model": "linear", "by": "campaign", "from": "2024-11-24",
                                                         "to": "2024-11-26"}).json()  # fmt: skip
    assert (linear["conversions"], linear["revenue"]) == (2, 140.0)
    by_channel = {c["channel"]: c for c in linear["channels"]}
    assert by_channel["xmas"]["conversions"] == 0.5 and by_channel["xmas"]["revenue"] == 50.0
    # brand: half of T1 and, with O2's direct touch (its own new session), half of O2.
    assert by_channel["brand"]["conversions"] == 1.0 and by_channel["brand"]["revenue"] == 70.0
    markov = httpx.get(f"{api}/v1/attribution?model=markov&by=medium&from=2024-11-24&to=2024-11-26").json()
    assert abs(sum(c["share"] for c in markov["channels"]) - 1.0) < 1e-6
    assert {c["channel"] for c in markov["channels"]} <= {"email", "cpc", "(direct)"}

    bad = [("model=magic", "model"), ("by=store", "by"), ("from=2026-13-01", "from"),
           ("from=2026-11-30&to=2026-11-01", "from"), ("from=2026-01-01&to=2026-12-31", "from")]  # fmt: skip
    for query, parameter in bad:
        answer = httpx.get(f"{api}/v1/attribution?{query}")
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["error"]["message"].startswith(parameter), answer.text
