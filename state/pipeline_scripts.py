"""Lua scripts sent in pipelines by SHA alone, and loaded again when Redis has lost them.

One definition serves the flows' sync writers and the API's asyncio reader: `LuaScript` is the
script (its source, its SHA, how one call is queued) and `ScriptRounds` the rule of the round trip
(send by SHA; when a reply says Redis lacks a script, load the scripts once and send again).
`run_pipeline` is the sync face of that rule and `run_pipeline_async` its asyncio face; they differ
only by `await`.

Why not redis-py's `Script`: queued into a pipeline, it makes `execute()` first ask Redis whether
every script in it exists: one more round trip for every flow batch, about a tenth of the
inventory flow's time at live rates (small batches). Here a call is a plain EVALSHA, and a script
Redis does not have (after a restart, a failover or SCRIPT FLUSH) costs one extra round trip then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

T = TypeVar("T")


class CommandQueue(Protocol):
    """What a call is queued into: a sync or an asyncio redis-py pipeline (queuing is sync in both)."""

    def execute_command(self, *args: Any, **options: Any) -> Any: ...


class LuaScript:
    """A Lua script called by SHA: its source, to load it, and its SHA-1, to call it.

    Parameters
    ----------
    source
        The Lua source.

    Examples
    --------
    >>> script = LuaScript("return 1")
    >>> script.sha
    'e0e1f9fabfc9d4800c877a703b823ac0578ff8db'
    """

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def queue(self, pipe: CommandQueue, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add one call of the script to `pipe` (sync or asyncio)."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


class ScriptRounds:
    """The round-trip rule shared by both faces: at most two rounds, the second only after Redis lost a script.

    A face builds and sends the pipeline (replies collected, not raised), then asks `to_load`:
    empty means the replies are final; otherwise it loads those scripts and sends the pipeline
    again, so what is queued must be safe to repeat (every writer here is: fenced by version, or
    added once; the API's reads change nothing).

    >>> rounds = ScriptRounds([LuaScript("return 1")])
    >>> [s.sha[:8] for s in rounds.to_load([1, NoScriptError("NOSCRIPT")])], rounds.to_load([NoScriptError("x")])
    (['e0e1f9fa'], ())
    >>> ScriptRounds([]).to_load([1, 2])
    ()
    """

    __slots__ = ("_retried", "scripts")

    def __init__(self, scripts: Sequence[LuaScript]) -> None:
        self.scripts = tuple(scripts)
        self._retried = False

    def to_load(self, replies: Sequence[Any]) -> tuple[LuaScript, ...]:
        """The scripts to load before sending again; () when `replies` are final."""
        if self._retried or not any(isinstance(reply, NoScriptError) for reply in replies):
            return ()
        self._retried = True
        return self.scripts


def raise_first_error(replies: list[Any]) -> list[Any]:
    """`replies` when none is an error; else raises the first (what a whole batch fails with).

    >>> raise_first_error([1, b"ok"])
    [1, b'ok']
    """
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def run_pipeline(
    client: redis.Redis, build: Callable[[redis.client.Pipeline], T], scripts: Sequence[LuaScript]
) -> tuple[T, list[Any]]:
    """Build a pipeline with `build` (returns what it queued) and execute it: (what `build` returned, replies).

    The sync face of `ScriptRounds`: when Redis lacks one of `scripts`, they are loaded and the
    pipeline is built and sent once more. An error reply fails the whole batch (raised).
    """
    rounds = ScriptRounds(scripts)
    while True:
        pipe = client.pipeline(transaction=False)
        queued = build(pipe)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        lost = rounds.to_load(replies)
        if not lost:
            return queued, raise_first_error(replies)
        for script in lost:
            client.script_load(script.source)


def run_counting(
    client: redis.Redis, build: Callable[[redis.client.Pipeline], object], scripts: Sequence[LuaScript]
) -> int:
    """`run_pipeline` of writes whose every reply is how many it applied; returns their total (the writers' batches)."""
    _, replies = run_pipeline(client, build, scripts)
    return sum(int(applied) for applied in replies)


async def run_pipeline_async(
    client: aioredis.Redis, build: Callable[[aioredis.client.Pipeline], object], scripts: Sequence[LuaScript]
) -> list[Any]:
    """The asyncio face of `ScriptRounds`: the replies of the pipeline `build` queues, errors among them (not raised).

    Errors stay per reply, for a caller that answers each call on its own (`BatchedScript`).
    """
    rounds = ScriptRounds(scripts)
    while True:
        pipe = client.pipeline(transaction=False)
        build(pipe)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        lost = rounds.to_load(replies)
        if not lost:
            return replies
        for script in lost:
            await client.script_load(script.source)
