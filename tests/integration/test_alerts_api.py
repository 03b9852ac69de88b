"""`/v1/scores`, `/v1/alerts` and the SSE stream, served by a real uvicorn over a real Redis.

Documents and alerts are written the way the fraud flow's sink writes them (`DocWriter`,
`StreamWriter`), so these tests pin the API to what the flow stores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis

from events.alerts import Alert, AlertStatus, Entity, Severity
from flows.launcher import settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port
from state import keys
from state.doc_writer import DocWriter, FencedDoc
from state.stream_writer import StreamWriter, alert_records
from tests.harness.api import issue_key, key_headers

pytestmark = pytest.mark.integration


def _alert(n: int, kind: str = "fraud", severity: Severity = Severity.WARNING, ts: str = "2026-11-22T00:00:00.000Z",
           status: AlertStatus = AlertStatus.OPEN) -> Alert:  # fmt: skip
    return Alert(alert_id=f"a-{n}", kind=kind, severity=severity, entity=Entity("card", f"card-{n}"),
                 reasons=["many payments on one card within 10 minutes"], ts=ts, source_event_ids=[f"e{n}"],
                 score=0.5, status=status)  # fmt: skip


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    port = free_port()
    env = {**os.environ, **settings_env(settings), "OMNISTREAM_API_SSE_KEEPALIVE_S": "0.3"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--no-access-log"], env=env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    with httpx.Client(base_url=base, headers=key_headers(issue_key(settings.redis.url, "console").key)) as client:
        yield client
    proc.terminate()
    proc.wait(10)


def _add(client: redis.Redis, *alerts: Alert) -> None:
    StreamWriter(client, keys.alerts_stream(), generation="g").add_batch(alert_records(alerts))


def test_read_score_returns_the_stored_document_and_404_when_unknown(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    doc = {"payment_id": "T-1", "score": 0.42, "decision": "review", "reasons": ["card number keyed in by hand"],
           "model_version": "r1+hst0+lr0", "scored_at": "2026-11-22T00:00:00.000Z"}  # fmt: skip
    DocWriter(redis_client, "g").write_batch([FencedDoc(keys.score("T-1"), 1, orjson.dumps(doc), ttl_s=60.0)])

    assert api.get("/v1/scores/T-1").json() == doc
    missing = api.get("/v1/scores/T-404")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_list_alerts_filters_by_severity_kind_and_since_newest_first(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    _add(redis_client, _alert(1), _alert(2, "anomaly", Severity.ATTENTION, "2026-11-22T01:00:00.000Z"),
         _alert(3, "fraud", Severity.EMERGENCY, "2026-11-22T02:00:00.000Z"))  # fmt: skip

    everything = api.get("/v1/alerts").json()["items"]
    assert [a["alert_id"] for a in everything] == ["a-3", "a-2", "a-1"]
    assert all(a["stream_id"] and a["status"] == "open" for a in everything)
    ids = lambda query: [a["alert_id"] for a in api.get(f"/v1/alerts?{query}").json()["items"]]  # noqa: E731
    assert ids("severity=attention,emergency") == ["a-3", "a-2"]
    assert ids("kind=fraud") == ["a-3", "a-1"]
    assert ids("since=2026-11-22T00:30:00Z") == ["a-3", "a-2"]
    assert ids(f"since={everything[1]['stream_id']}") == ["a-3"]  # a stream id: only what came after it
    assert ids("limit=1") == ["a-3"]
    bad = api.get("/v1/alerts?severity=loud")
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("severity:")
    assert api.get("/v1/alerts?since=yesterday").status_code == 422


def _read_events(response: httpx.Response, want: int, into: list[dict[str, object]], comments: list[str]) -> None:
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            comments.append(line)
        elif line.startswith(("id:", "event:", "data:")):
            name, _, value = line.partition(":")
            event[name] = value.strip()
        elif not line and event:
            into.append({"id": event.get("id"), "event": event.get("event"), **orjson.loads(event["data"])})
            event = {}
            if len(into) >= want:
                return


def test_sse_stream_delivers_new_alerts_to_a_connected_client_with_keep_alives(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    _add(redis_client, _alert(1))  # before the client connects: not replayed without Last-Event-ID
    received: list[dict[str, object]] = []
    comments: list[str] = []
    with api.stream("GET", "/v1/alerts/stream?severity=attention", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = threading.Thread(target=_read_events, args=(response, 1, received, comments), daemon=True)
        reader.start()
        time.sleep(0.8)  # idle: keep-alive comments flow
        _add(redis_client, _alert(2), _alert(3, "anomaly", Severity.ATTENTION))
        reader.join(10)
    assert [(e["event"], e["alert_id"]) for e in received] == [("alert", "a-3")]  # a-2 is a warning: filtered
    assert received[0]["id"] == received[0]["stream_id"]
    assert any("keep-alive" in c for c in comments)


def test_sse_stream_resumes_after_last_event_id(api: httpx.Client, redis_client: redis.Redis) -> None:
    _add(redis_client, _alert(1), _alert(2), _alert(3))
    listed = api.get("/v1/alerts").json()["items"]  # newest first
    received: list[dict[str, object]] = []
    headers = {"Last-Event-ID": listed[2]["stream_id"]}
    with api.stream("GET", "/v1/alerts/stream", headers=headers, timeout=10) as response:
        _read_events(response, 2, received, [])
    assert [e["alert_id"] for e in received] == ["a-2", "a-3"]
    bad = api.get("/v1/alerts/stream", headers={"Last-Event-ID": "nope"})
    assert bad.status_code == 422
