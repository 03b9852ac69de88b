"""Housekeeping of Omnistream's Redis keys (development and tests, never the flows' hot path)."""

from __future__ import annotations

import redis

from state import keys


def clear_namespace(client: redis.Redis) -> int:
    """Delete every key Omnistream owns in this database; returns how many.

    For a development database whose state belongs to topics that no longer
    exist (a restarted in-memory broker): that state describes nothing.
    """
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=keys.namespace_pattern(), count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted
