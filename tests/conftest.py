"""Shared fixtures: a real Redis and a real Kafka-protocol broker, private to the test run.

Integration and end-to-end tests never fake either (docs/architecture.md). The run starts
its own diskless redis-server and in-memory Tansu broker on free loopback
ports, so it neither depends on nor disturbs services already on the machine.
When `redis-server` is not installed, `OMNISTREAM_TEST_REDIS_URL` may name a
Redis whose database the tests may flush.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
import redis

from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from omnistream.stack import LocalService, start_broker, start_redis


@pytest.fixture(scope="session")
def redis_service() -> Iterator[LocalService]:
    url = os.environ.get("OMNISTREAM_TEST_REDIS_URL")
    if url:
        yield LocalService("redis", url)
        return
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install -y redis-server); or set OMNISTREAM_TEST_REDIS_URL")
    service = start_redis()
    yield service
    service.stop()


@pytest.fixture
def redis_url(redis_service: LocalService) -> str:
    """URL of an empty Redis database."""
    redis.Redis.from_url(redis_service.address).flushdb()
    return redis_service.address


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalService]:
    service = start_broker()
    yield service
    service.stop()


@pytest.fixture
def settings(broker: LocalService, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for one test: its own topic prefix (fresh topics), the private Redis, a fresh recovery dir."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = Settings(
        kafka_brokers=broker.address,
        redis_url=redis_url,
        topic_prefix=prefix,
        topic_partitions=2,
        recovery_dir=tmp_path_factory.mktemp("recovery"),
        snapshot_interval_s=0.5,
        flow_metrics_port=0,
    )
    create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions)
    return settings
