"""The fraud flow running live (no restart): labels teach the model, rule changes apply, silent stores alert."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from flows.launcher import start_flow
from omnistream.settings import Settings
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish, stream_records
from tests.integration.fraud_events import RULES, T0, label, sale

pytestmark = pytest.mark.integration


def wait_for(condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    runs = []

    def run(**overrides: Any) -> Settings:
        rules = tmp_path / "rules.toml"
        shutil.copyfile(RULES, rules)
        live_settings = settings.model_copy(update={"fraud_rules_path": rules, "flow_stop_at_end": False,
                                                    "fraud_rules_check_s": 0.2, **overrides})  # fmt: skip
        runs.append(start_flow("fraud", live_settings))  # tails the topics until stopped
        return live_settings

    yield run
    for flow_run in runs:
        assert flow_run.alive(), "the fraud flow died"
        flow_run.stop()


def _score(client: redis.Redis, payment_id: str) -> dict[str, Any] | None:
    doc = read_doc(client, keys.score(payment_id))
    return None if doc is None else orjson.loads(doc)  # type: ignore[no-any-return]


def _model(client: redis.Redis) -> dict[str, Any] | None:
    doc = read_doc(client, keys.fraud_model(0))
    return None if doc is None else orjson.loads(doc)  # type: ignore[no-any-return]


def test_a_label_arriving_after_its_payment_updates_the_supervised_model(
    live: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    settings = live(fraud_shards=1, fraud_label_maturity_s=60.0)
    # Enough unlabelled payments ageing past the label wait (presumed legit) for the model to start.
    payments = [sale(f"T-{i:04d}", T0 + i, card_token=f"tok_{i:04d}", store=f"STORE-{i % 3}") for i in range(600)]
    publish(settings, payments)
    # Every payment scored (and remembered for its label) before event time moves on: payments of a
    # store's partition read after a later one's are presumed legit only when the clock next advances.
    score_keys = [keys.score(payment_id) for payment_id in (f"T-{i:04d}" for i in range(600))]
    wait_for(lambda: redis_client.exists(*score_keys) == len(score_keys), what="every payment to be scored")
    # Maturity is judged per event-time day: the day of the first 600 ended over 60 s before this one.
    publish(settings, [sale("T-LATE", T0 + 86_400.0 + 100.0, card_token="tok_late")])
    # All 600 learned before the label: with fewer, the rest could land beside the label (a slow machine did).
    before = wait_for(lambda: (m := _model(redis_client)) and m["supervised_updates"] >= 600
                      and _score(redis_client, "T-LATE") is not None and m,
                      what="the model to learn every matured payment")  # fmt: skip

    # The label is learned with its chunk of event time when the first item past it comes (a payment here).
    # The labels topic has not delivered before: if the payment is read first, the label is late (handed on
    # after it) and goes with the payment's chunk, learned when a second payment, a chunk later, comes.
    publish(settings, [label(T0 + 86_400.0 + 110.0, txn_id="T-LATE", verdict="fraud"),
                       sale("T-NEXT", T0 + 86_400.0 + 200.0, card_token="tok_next")])  # fmt: skip
    wait_for(lambda: _score(redis_client, "T-NEXT"), what="the next payment to be scored")
    publish(settings, [sale("T-NEXT-2", T0 + 86_400.0 + 300.0, card_token="tok_next")])

    after = wait_for(lambda: (m := _model(redis_client)) and m["supervised_updates"] > before["supervised_updates"]
                     and m, what="the label to be learned")  # fmt: skip
    assert after["supervised_updates"] == before["supervised_updates"] + 1
    assert after["fraud_labels_learned"] == before["fraud_labels_learned"] + 1
    assert after["model_version"] != before["model_version"]


def test_payments_read_after_event_time_moved_on_are_presumed_legit_when_the_next_chunk_begins(
    live: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    settings = live(fraud_shards=1, fraud_label_maturity_s=60.0)
    publish(settings, [sale("T-NEWEST", T0 + 86_400.0 + 100.0, card_token="tok_newest")])  # a day on
    wait_for(lambda: _score(redis_client, "T-NEWEST"), what="the newest payment to be scored")

    # Payments a slower partition delivers afterwards (after the watermark passed them: late), all past the
    # 60 s wait; they are learned with the open chunk, so as genuine once the next chunk of event time begins.
    publish(settings, [sale(f"T-{i:04d}", T0 + i, card_token=f"tok_{i:04d}") for i in range(600)])
    score_keys = [keys.score(f"T-{i:04d}") for i in range(600)]
    wait_for(lambda: redis_client.exists(*score_keys) == len(score_keys), what="the late payments to be scored")
    publish(settings, [sale("T-NEXT", T0 + 86_400.0 + 200.0, card_token="tok_next")])

    model = wait_for(lambda: (m := _model(redis_client)) and m["supervised_updates"] >= 600 and m,
                     what="the late-read payments to be presumed legit")  # fmt: skip
    assert model["fraud_labels_learned"] == 0


def test_a_changed_rules_file_is_picked_up_live_and_a_broken_one_keeps_the_rules(
    live: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    settings = live()
    publish(settings, [sale("T-BEFORE", T0, card_token="tok_a")])
    first = wait_for(lambda: _score(redis_client, "T-BEFORE"), what="the first score")
    version = RULES.read_text().split('version = "', 1)[1].split('"', 1)[0]
    assert first["model_version"].startswith(version + "+")

    text = RULES.read_text().replace(f'version = "{version}"', 'version = "live-2"')
    settings.fraud.rules_path.write_text(text)
    time.sleep(1.0)
    publish(settings, [sale("T-AFTER", T0 + 60, card_token="tok_b")])
    assert wait_for(lambda: _score(redis_client, "T-AFTER"))["model_version"].startswith("live-2+")

    settings.fraud.rules_path.write_text(text.replace("[decision]", "[decision\n"))  # not TOML
    time.sleep(1.0)
    publish(settings, [sale("T-BROKEN", T0 + 120, card_token="tok_c")])
    assert wait_for(lambda: _score(redis_client, "T-BROKEN"))["model_version"].startswith("live-2+")


def test_a_store_that_goes_silent_raises_attention_then_resolved_when_it_sells_again(
    live: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    settings = live(ops_tick_s=1.0)

    def store_alerts() -> list[dict[str, Any]]:
        return [a for a in stream_records(settings.redis.url, keys.alerts_stream())
                if a["kind"] == "anomaly" and a["entity"] == {"type": "store", "id": "STORE-QUIET"}]  # fmt: skip

    both = [sale(f"{store}-{i}", T0 + i * 10.0, store=store, card_token=None)
            for i in range(30) for store in ("STORE-QUIET", "STORE-BUSY")]  # fmt: skip
    publish(settings, both)
    wait_for(lambda: _score(redis_client, "STORE-BUSY-29"), what="the first phase")
    busy_only = [sale(f"STORE-BUSY-{i}", T0 + i * 10.0, store="STORE-BUSY", card_token=None) for i in range(30, 100)]
    publish(settings, busy_only)

    opened = wait_for(store_alerts, what="the silence alert")
    assert [(a["severity"], a["status"]) for a in opened] == [("attention", "open")]

    publish(settings, [sale("STORE-QUIET-back", T0 + 1001.0, store="STORE-QUIET", card_token=None),
                       sale("STORE-BUSY-100", T0 + 1002.0, store="STORE-BUSY", card_token=None)])  # fmt: skip
    alerts = wait_for(lambda: len(a := store_alerts()) == 2 and a, what="the resolved alert")
    assert alerts[1]["status"] == "resolved" and alerts[1]["alert_id"].startswith(alerts[0]["alert_id"])
