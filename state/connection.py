"""Redis clients from one URL: single node now; Sentinel and Cluster accepted.

URL forms (`OMNISTREAM_REDIS_URL`):
- `redis://host:port/db`, `rediss://…`, `unix:///path.sock?db=0` — a single node;
- `redis+sentinel://host1:port1,host2:port2/service_name/db` — the master that Sentinel names;
- `redis+cluster://host:port` — Redis Cluster (keys carry hash tags, see `state.keys`).

Timeouts are explicit and retries are off: a caller that must answer fast (the
API's 503 within 100 ms) gets an error instead of a hang.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int]:
    parts = urlsplit(url)
    hosts = []
    for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = hostport.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"sentinel URL needs a service name: {url!r}")
    return hosts, path[0], int(path[1]) if len(path) > 1 else 0


def connect(url: str, *, timeout_s: float | None = 5.0) -> redis.Redis:
    """A blocking client for `url` (flows and tools)."""
    # Retries off for real: `retry=None` makes Cluster clients fall back to their default retries.
    opts: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                            "retry": Retry(NoBackoff(), 0)}  # fmt: skip
    if url.startswith("redis+sentinel://"):
        hosts, service, db = _sentinel_parts(url)
        sentinel = Sentinel(hosts, sentinel_kwargs=dict(opts), **opts)  # type: ignore[no-untyped-call]
        master = sentinel.master_for(service, db=db, password=urlsplit(url).password, **opts)  # type: ignore[no-untyped-call]
        return cast(redis.Redis, master)
    if url.startswith("redis+cluster://"):
        # Cluster clients share the Redis command API; callers type against `redis.Redis`.
        return cast(redis.Redis, RedisCluster.from_url(url.replace("redis+cluster://", "redis://", 1), **opts))
    return redis.Redis.from_url(url, **opts)


def connect_async(url: str, *, timeout_s: float) -> aioredis.Redis:
    """An asyncio client for `url` (the API); every call fails within about `timeout_s`."""
    opts: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": AsyncRetry(NoBackoff(), 0),
        "max_connections": 256,
    }
    if url.startswith("redis+sentinel://"):
        hosts, service, db = _sentinel_parts(url)
        node_opts = {k: v for k, v in opts.items() if k != "max_connections"}
        sentinel = AsyncSentinel(hosts, sentinel_kwargs=node_opts, **node_opts)  # type: ignore[no-untyped-call]
        return cast(aioredis.Redis, sentinel.master_for(service, db=db, password=urlsplit(url).password, **opts))
    if url.startswith("redis+cluster://"):
        opts.pop("max_connections")
        return cast(aioredis.Redis, AsyncRedisCluster.from_url(url.replace("redis+cluster://", "redis://", 1), **opts))
    return aioredis.Redis.from_url(url, **opts)
