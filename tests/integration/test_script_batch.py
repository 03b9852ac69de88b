"""Concurrent calls of one Lua script share a pipeline round trip and keep their own replies and errors.

Real Redis (tests/conftest.py).
"""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from omnistream.stack import free_port
from state.script_batch import BatchedScript

pytestmark = pytest.mark.integration

# Echoes its key and argument; fails (a script error) when the argument is "fail".
ECHO = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
redis.call('INCR', KEYS[1] .. ':calls')
return {KEYS[1], ARGV[1]}
"""


async def call_all(script: BatchedScript, args: list[str]) -> list[object]:
    return await asyncio.gather(*(script([f"k{n}"], [arg]) for n, arg in enumerate(args)), return_exceptions=True)


def test_concurrent_calls_share_round_trips_and_get_their_own_replies(redis_url: str) -> None:
    async def run() -> tuple[list[object], BatchedScript]:
        client = aioredis.Redis.from_url(redis_url)
        script = BatchedScript(client, ECHO)
        replies = await call_all(script, [f"a{n}" for n in range(50)])
        await client.aclose()
        return replies, script

    replies, script = asyncio.run(run())

    assert replies == [[f"k{n}".encode(), f"a{n}".encode()] for n in range(50)]
    assert script.calls == 50
    assert script.batches == 1  # all made in one event-loop turn


def test_an_error_reply_fails_only_its_own_call(redis_url: str) -> None:
    async def run() -> list[object]:
        client = aioredis.Redis.from_url(redis_url)
        replies = await call_all(BatchedScript(client, ECHO), ["a", "fail", "c"])
        await client.aclose()
        return replies

    first, failed, third = asyncio.run(run())

    assert first == [b"k0", b"a"] and third == [b"k2", b"c"]
    assert isinstance(failed, ResponseError) and "asked to fail" in str(failed)


def test_a_script_redis_lost_is_loaded_again_and_each_call_runs_once(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)

    async def run() -> list[object]:
        client = aioredis.Redis.from_url(redis_url)
        script = BatchedScript(client, ECHO)
        await call_all(script, ["warm"])
        sync.script_flush()  # as after a restart or a failover
        replies = await call_all(script, ["x", "y"])
        await client.aclose()
        return replies

    assert asyncio.run(run()) == [[b"k0", b"x"], [b"k1", b"y"]]
    assert sync.get("k1:calls") == b"1"  # the retried call ran once, not twice


def test_without_redis_every_call_of_the_batch_fails_promptly() -> None:
    async def run() -> list[object]:
        client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
        replies = await asyncio.wait_for(call_all(BatchedScript(client, ECHO), ["a", "b"]), timeout=5)
        await client.aclose()
        return replies

    replies = asyncio.run(run())

    assert all(isinstance(reply, (redis.ConnectionError, OSError)) for reply in replies), replies
