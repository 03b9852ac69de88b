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
