"""Which reader the API uses: a whole-call deadline only where socket timeouts don't bound a call."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from serving.backend import BoundedStockReader, reader_for


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379/omni", "redis+cluster://127.0.0.1:7000"])
def test_reader_for_for_multi_hop_topologies_has_a_deadline(url: str) -> None:
    reader = reader_for(aioredis.Redis(), url, timeout_s=0.08)

    assert isinstance(reader, BoundedStockReader)
    assert reader.timeout_s == 0.08


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache:6380/1", "unix:///tmp/redis.sock"])
def test_reader_for_for_single_node_relies_on_socket_timeouts(url: str) -> None:
    assert not isinstance(reader_for(aioredis.Redis(), url, timeout_s=0.08), BoundedStockReader)
