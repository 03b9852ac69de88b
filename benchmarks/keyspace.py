"""Waits for a Redis key to be written, told by keyspace notifications (shared by the benchmarks' probes).

Polling for a probe's key would itself load the 2 cores whose latency is
being measured; Redis publishes every hash write instead.
"""

from __future__ import annotations

import time

import redis


class KeyWrites:
    """Subscribes to hash writes of keys matching `pattern`; `wait(key, sent)` times one of them."""

    def __init__(self, redis_url: str, pattern: str) -> None:
        # Held: a client that is garbage-collected closes its pool, the subscription's connection too.
        self._client = client = redis.Redis.from_url(redis_url)
        client.config_set("notify-keyspace-events", "Kh")
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.psubscribe(f"__keyspace@{db}__:{pattern}")
        self._prefix = len(f"__keyspace@{db}__:")

    def wait(self, key: str, sent: float, timeout_s: float = 60.0) -> float:
        """Seconds from `sent` (a `time.perf_counter()` reading) until `key` is written."""
        while True:
            remaining = timeout_s - (time.perf_counter() - sent)
            if remaining <= 0:
                raise RuntimeError(f"{key} not written after {timeout_s:.0f} s")
            message = self._pubsub.get_message(timeout=remaining)
            if message is not None and message["channel"].decode()[self._prefix :] == key:
                return time.perf_counter() - sent
