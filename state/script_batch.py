"""One Lua script's calls from concurrent API requests, sent to Redis together: one write, one read per batch.

Under load an API worker has many requests waiting on Redis at once, and
each standalone call pays a socket write and its own parse and retry
machinery in redis-py, which on loopback were a large share of a
recommendation request's time (the write alone about a tenth). So a call
joins the batch of the event-loop turn it is made in, and the batch goes
out as one pipeline (EVALSHA per call, no transaction) when that turn
ends. Alone, a call costs one extra loop hop; in a batch of n, 1/n of a
write.

Errors stay per call: a call whose reply is an error gets that error; a
connection failure fails every call of the batch (the API answers 503, as
it would have for each). A script Redis does not have (after a restart or
failover) is loaded once and the batch sent again (`state.pipeline_scripts.ScriptRounds`,
the rule the flows' writers follow too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from state.pipeline_scripts import LuaScript, run_pipeline_async

Call = tuple[Sequence[str], Sequence[Any], "asyncio.Future[Any]"]


class BatchedScript:
    """A Lua script whose calls made in one event-loop turn share one pipeline round trip.

    Parameters
    ----------
    client
        An asyncio Redis client (single node or Sentinel: one pipeline is one connection).
    source
        The script's Lua source.
    """

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self._client = client
        self.script = LuaScript(source)
        self._pending: list[Call] = []
        self._in_flight: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
        self.batches = 0
        self.calls = 0

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply for `keys` and `args`, or its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._send)
        self._pending.append((keys, args, future))
        return await future

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        live = [call for call in batch if not call[2].done()]  # a cancelled request needs no reply
        if live:
            task = asyncio.get_running_loop().create_task(self._run(live))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _run(self, batch: list[Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            replies = await run_pipeline_async(self._client, lambda pipe: self._queue(pipe, batch), (self.script,))
        except BaseException as exc:  # the connection failed: every call of the batch fails with it
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _queue(self, pipe: aioredis.client.Pipeline, batch: list[Call]) -> None:
        queue = self.script.queue
        for keys, args, _ in batch:
            queue(pipe, keys, args)
