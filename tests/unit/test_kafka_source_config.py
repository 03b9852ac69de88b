"""The flows' Kafka input takes its fetch wait and batch size from the settings."""

from __future__ import annotations

from flows.kafka_source import kafka_source
from omnistream.settings import Settings


def test_the_fetch_wait_setting_reaches_the_flow_consumers() -> None:
    settings = Settings(kafka_brokers="127.0.0.1:9", kafka_fetch_wait_ms=250, kafka_batch_size=123)
    source = kafka_source(settings, ["omni.pos"])
    assert source.consumer_config == {"fetch.wait.max.ms": "250"}
    assert source.batch_size == 123


def test_the_default_fetch_wait_suits_the_local_broker() -> None:
    assert kafka_source(Settings(kafka_brokers="127.0.0.1:9"), ["omni.pos"]).consumer_config == {
        "fetch.wait.max.ms": "10"
    }


def test_flows_awaited_at_once_fetch_promptly_and_the_others_wait_longer_at_the_broker() -> None:
    from flows.registry import FLOWS, PROMPT_FLOWS

    settings = Settings(kafka_brokers="127.0.0.1:9", kafka_fetch_wait_ms=10, kafka_relaxed_fetch_wait_ms=150)
    waits = {flow: kafka_source(settings, ["omni.pos"], flow).consumer_config["fetch.wait.max.ms"] for flow in FLOWS}
    assert {flow for flow, wait in waits.items() if wait == "10"} == PROMPT_FLOWS == {"inventory", "loyalty"}
    assert {flow for flow, wait in waits.items() if wait == "150"} == set(FLOWS) - PROMPT_FLOWS
