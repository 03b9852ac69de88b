"""Lua scripts queued into pipelines by SHA alone, and loaded again when Redis has lost them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

T = TypeVar("T")


class PipelineScript:
    """A Lua script for pipelines, without the SCRIPT EXISTS that redis-py sends before each one.

    redis-py's `Script` queued into a pipeline makes `execute()` first ask
    Redis whether every script in it exists: one more round trip for every
    flow batch, about a tenth of the inventory flow's time at live rates
    (small batches). Here a call is a plain EVALSHA; a script Redis does not
    have (after a restart, a failover or SCRIPT FLUSH) fails the pipeline with
    `NoScriptError`, and `run_pipeline` loads the scripts and sends it again.

    Parameters
    ----------
    client
        The Redis client the script is loaded with.
    source
        The Lua source.
    """

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._client = client

    def queue(self, pipe: redis.client.Pipeline, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add one call of the script to `pipe`."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def load(self) -> None:
        self._client.script_load(self.source)


def run_pipeline(
    client: redis.Redis, build: Callable[[redis.client.Pipeline], T], scripts: Iterable[PipelineScript]
) -> tuple[T, list[Any]]:
    """Build a pipeline with `build` (returns what it queued) and execute it: (what `build` returned, replies).

    When Redis lacks one of `scripts`, they are loaded and the pipeline is built
    and sent once more, so what `build` queues must be safe to repeat (every
    writer here is: fenced by version, or added once).
    """
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        queued = build(pipe)
        try:
            return queued, pipe.execute()
        except NoScriptError:
            if attempt:
                raise
            for script in scripts:
                script.load()
    raise AssertionError("unreachable")
