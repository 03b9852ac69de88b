"""Kafka authentication and TLS settings reach every client Omnistream makes (config pass-through).

The local broker (Tansu) in the test suite speaks PLAINTEXT only, so SASL and TLS are not exercised
end to end here (docs/security.md says what is and is not tested); these tests pin that each
producer, consumer and admin client is built with the settings' `security_config()`.
"""

from __future__ import annotations

from typing import Any

import pytest

from omnistream.settings import KafkaSettings, Settings

SECURE = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-256",
    "kafka_sasl_username": "omnistream",
    "kafka_sasl_password": "pw",
    "kafka_ssl_ca_file": "/etc/omnistream/kafka-ca.pem",
}
EXPECTED = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-256",
    "sasl.username": "omnistream",
    "sasl.password": "pw",
    "ssl.ca.location": "/etc/omnistream/kafka-ca.pem",
}


class Recorder:
    """Stands in for a confluent-kafka client class: records the configuration it was built with."""

    configs: list[dict[str, Any]]

    def __init__(self, config: dict[str, Any]) -> None:
        type(self).configs.append(config)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture
def recorder() -> type[Recorder]:
    return type("Recording", (Recorder,), {"configs": []})


def _secure(config: dict[str, Any]) -> bool:
    return all(config.get(name) == value for name, value in EXPECTED.items())


def test_security_config_from_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECURE.items():
        monkeypatch.setenv(f"OMNISTREAM_{name.upper()}", value)
    settings = Settings()
    assert settings.kafka.security_config() == EXPECTED
    assert settings.kafka.client_config() == {"bootstrap.servers": "127.0.0.1:9092", **EXPECTED}
    assert "pw" not in repr(settings.kafka)


def test_ssl_without_sasl_sends_no_sasl_settings() -> None:
    config = KafkaSettings(security_protocol="SSL", ssl_cert_file="/c.pem", ssl_key_file="/c.key").security_config()
    assert config == {"security.protocol": "SSL", "ssl.certificate.location": "/c.pem", "ssl.key.location": "/c.key"}


def test_flow_source_consumers_and_admin_get_the_security_settings(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    import flows.kafka_source as source

    monkeypatch.setattr(source, "Consumer", recorder)
    settings = Settings(**SECURE)  # type: ignore[arg-type]
    partitions = source.kafka_source(settings, ["omni.pos"])
    partitions.build_part("input", "0-omni.pos", None)
    assert len(recorder.configs) == 1 and _secure(recorder.configs[0])
    assert partitions.security == EXPECTED  # also what list_parts gives the admin client


def test_sink_producer_served_answers_simulator_and_topic_creation_get_them(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    import omnistream.kafka_admin as kafka_admin
    import sim.publish as sim_publish
    import state.rec_served_log as rec_served_log
    from serving.rec_served import ServedPublisher

    settings = Settings(**SECURE)  # type: ignore[arg-type]
    monkeypatch.setattr(rec_served_log, "Producer", recorder)
    monkeypatch.setattr(sim_publish, "Producer", recorder)
    ServedPublisher(settings.kafka.brokers, "omni.rec_served", security=settings.kafka.security_config())
    sim_publish.KafkaPublisher(settings.kafka.brokers, settings.kafka.security_config())
    assert len(recorder.configs) == 2 and all(_secure(c) for c in recorder.configs)

    class Admin(recorder):  # type: ignore[valid-type,misc]
        def list_topics(self, timeout: float) -> Any:
            return type("Metadata", (), {"topics": {}})()

        def create_topics(self, wanted: Any, operation_timeout: float) -> dict[str, Any]:
            return {}

    monkeypatch.setattr(kafka_admin, "AdminClient", Admin)
    kafka_admin.create_topics(settings.kafka.brokers, "omni.", 1, security=settings.kafka.security_config())
    assert len(recorder.configs) == 3 and _secure(recorder.configs[2])
