"""No card token, user id or customer id of a simulated workload appears in any log of the fraud flow or the API.

The workload (shoppers, card fraud, malformed events, labels) runs through the fraud flow
with logging at DEBUG captured from the process (stdout and stderr, Bytewax's own output
included), and a rules-file reload and a refused one happen meanwhile; then the API serves
scores, alerts and the alert stream with DEBUG and access logs captured. Every identifier
the workload carried is searched for in everything captured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from events.topics import Topic
from flows.launcher import settings_env, start_flow
from omnistream.settings import Settings
from omnistream.stack import free_port
from sim.workload import Workload
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish
from tests.integration.fraud_events import RULES, label, sale

pytestmark = pytest.mark.integration


def _identifiers(values: list[bytes]) -> set[str]:
    """Card tokens, user ids and customer ids carried by the workload's well-formed events."""
    found: set[str] = set()
    for value in values:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        for field in ("user_id", "customer_id"):
            if isinstance(event.get(field), str):
                found.add(event[field])
        payment = event.get("payment")
        if isinstance(payment, dict) and isinstance(payment.get("card_token"), str):
            found.add(payment["card_token"])
    return {identifier for identifier in found if len(identifier) >= 6}


def test_no_card_token_or_shopper_id_reaches_any_log(settings: Settings, tmp_path: Path) -> None:
    workload = Workload(seed=11, n_skus=200, n_stores=4, n_warehouses=1, n_users=300, fraud_rate=0.08,
                        malformed_rate=0.02, events_per_s=50.0)  # fmt: skip
    records = [r for r in workload.records(12_000) if r.topic in (Topic.POS, Topic.CLICKSTREAM, Topic.LABELS)]
    secrets = _identifiers([r.value for r in records])
    secrets |= {shopper.card_token for shopper in workload.shoppers} | {s.user_id for s in workload.shoppers}
    secrets |= {"tok_privacy_after_reload", "tok_privacy_after_refusal"}
    assert len(secrets) > 300
    publish(settings, [(r.topic, r.key, r.value) for r in records])
    publish(settings, [(Topic.LABELS, b"x", b'{"type":"fraud_label","user_id":"U-000001"}'),  # malformed: DLQ
                       label(0.0, order_id="never-scored")])  # fmt: skip

    rules = tmp_path / "rules.toml"
    shutil.copyfile(RULES, rules)
    # A lone payment in a paused stream waits `order_quiet_s` in the order step before the stages (and their
    # rules check) see it: short here, so each change is picked up within the test's pauses.
    live = settings.model_copy(update={"fraud_rules_path": rules, "fraud_rules_check_s": 0.2, "log_level": "DEBUG",
                                       "flow_stop_at_end": False, "fraud_order_quiet_s": 0.3})  # fmt: skip
    flow_log = tmp_path / "flow.log"
    with flow_log.open("wb") as out:
        run = start_flow("fraud", live, stdout=out, stderr=out)
        try:
            time.sleep(4.0)
            # Rules are checked as payments arrive: one after each change.
            rules.write_text(RULES.read_text().replace('version = "', 'version = "privacy-', 1))
            time.sleep(0.5)
            publish(settings, [sale("PRIV-1", 1795400000.0, card_token="tok_privacy_after_reload")])
            time.sleep(1.5)
            rules.write_text("this is [not toml")
            time.sleep(0.5)
            publish(settings, [sale("PRIV-2", 1795400001.0, card_token="tok_privacy_after_refusal")])
            time.sleep(1.5)
        finally:
            run.stop()

    api_log = tmp_path / "api.log"
    port = free_port()
    env = {**os.environ, **settings_env(live)}
    with api_log.open("wb") as out:
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app", "--host",
                                "127.0.0.1", "--port", str(port), "--log-level", "debug"],
                               env=env, stdout=out, stderr=out)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz", timeout=0.5)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            auth = key_headers(issue_key(live.redis.url, "console").key)
            alerts = httpx.get(f"{base}/v1/alerts?limit=200", headers=auth).json()["items"]
            assert alerts, "the workload's fraud raised no alert"
            for record in records[:300]:
                event = orjson.loads(record.value) if record.value.startswith(b"{") else {}
                payment_id = event.get("txn_id") or event.get("order_id") if isinstance(event, dict) else None
                if isinstance(payment_id, str):
                    httpx.get(f"{base}/v1/scores/{payment_id}", headers=auth)
            with httpx.stream("GET", f"{base}/v1/alerts/stream", headers={"Last-Event-ID": "0-0", **auth}) as stream:
                next(stream.iter_lines())
        finally:
            api.terminate()
            api.wait(10)

    logs = flow_log.read_text(errors="replace") + api_log.read_text(errors="replace")
    assert "fraud rules version privacy-" in logs and "refused" in logs  # DEBUG/INFO output was captured
    assert "GET /v1/scores/" in logs
    leaked = sorted(secret for secret in secrets if secret in logs)
    assert not leaked, f"identifiers in the logs: {leaked[:10]}"
