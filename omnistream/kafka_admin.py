"""Topic creation for the contract's topics, idempotent."""

from __future__ import annotations

from confluent_kafka import KafkaException

# NewTopic is documented under `confluent_kafka.admin`, which imports it without re-exporting it for type checkers.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from events.topics import FEEDBACK_TOPICS, INPUT_TOPICS, OUTPUT_TOPICS, Topic

# Tansu needs an explicit retention.ms for some clients (docs/performance.md); a week
# also suits Apache Kafka for replays after an incident.
TOPIC_CONFIG = {"retention.ms": str(7 * 24 * 3600 * 1000)}


def create_topics(
    brokers: str, prefix: str, partitions: int, timeout_s: float = 30.0, security: dict[str, str] | None = None
) -> dict[str, str]:
    """Create every contract topic under `prefix`; returns topic -> "created" | "exists"."""
    admin = AdminClient({"bootstrap.servers": brokers, **(security or {})})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    names = [t.named(prefix) for t in (*INPUT_TOPICS, *OUTPUT_TOPICS, *FEEDBACK_TOPICS)]
    wanted = [NewTopic(n, num_partitions=partitions, replication_factor=1, config=TOPIC_CONFIG) for n in names
              if n not in existing]  # fmt: skip
    result = {n: "exists" for n in names if n in existing}
    for name, future in (admin.create_topics(wanted, operation_timeout=timeout_s) if wanted else {}).items():
        try:
            future.result(timeout_s)
            result[name] = "created"
        except KafkaException as ex:
            if "TOPIC_ALREADY_EXISTS" not in str(ex):
                raise
            result[name] = "exists"
    return result


def topic_names(prefix: str, topics: tuple[Topic, ...] = INPUT_TOPICS) -> list[str]:
    """Full names of `topics` under `prefix`."""
    return [t.named(prefix) for t in topics]
