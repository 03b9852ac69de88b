"""Flag sets kept in step with fenced entities: absolute, version-fenced membership, one slot per call.

A flag set holds the members an entity's state flags: the SKUs sellable at a
location (`keys.sellable_at`), sellable anywhere (`keys.sellable_anywhere`),
withdrawn from the catalog (`keys.rec_inactive`). The readers test membership
in one command; the entity's own hash lives in another hash slot, so on Redis
Cluster the flag cannot be set in the call that fences the hash.

So each membership is fenced on its own: beside the set, in the same slot,
`keys.flag_versions` keeps the `generation|version` of the write that last set
each member, and a write applies only when its version is newer (or its
lineage another). A flag write is then as replay-safe as the hash write it
goes with, in whatever order a pipeline (or a Cluster's nodes) applies them,
and every call names its two keys and touches nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from state import keys
from state.pipeline_scripts import LuaScript

# KEYS[1] the flag set, KEYS[2] its flag versions (same slot). ARGV[1] the generation, then per member:
# member, version, flag (1 in the set, 0 out of it). Replies 0: what a flag write applied is not counted
# (the entity's hash write is), so a sink may sum replies over a batch that holds these.
# fmt: off
_SET_FLAGS = """
local gen = ARGV[1]
local prefix = gen .. '|'
for i = 2, #ARGV, 3 do
  local member, version = ARGV[i], tonumber(ARGV[i + 1])
  local stored = redis.call('HGET', KEYS[2], member)
  local newer = true
  if stored and string.sub(stored, 1, #prefix) == prefix then
    newer = tonumber(string.sub(stored, #prefix + 1)) < version
  end
  if newer then
    if ARGV[i + 2] == '1' then ADD_MEMBER else redis.call('SREM', KEYS[1], member) end
    redis.call('HSET', KEYS[2], member, prefix .. ARGV[i + 1])
  end
end
return 0
"""
# fmt: on
FLAGS_CHUNK = 256
"""Members per call."""

Flag = tuple[str, int, bool]
"""(member, version of the entity's state, whether the member is in the set)."""


class FlagSets:
    """Queues fenced flag writes: one call per set (and per `FLAGS_CHUNK` members), replying 0.

    `sorted_sets`: the flag sets are sorted sets, members at score 0 (listed in id order by
    `ZRANGE BYLEX`: the customers flow's segments, `state/customer_writer.py`).

    >>> FlagSets("g1").script.sha[:8] == FlagSets("g2").script.sha[:8]
    True
    """

    def __init__(self, generation: str = "", sorted_sets: bool = False) -> None:
        self.generation = generation
        if sorted_sets:
            script = _SET_FLAGS.replace("ADD_MEMBER", "redis.call('ZADD', KEYS[1], 0, member)").replace("SREM", "ZREM")
        else:
            script = _SET_FLAGS.replace("ADD_MEMBER", "redis.call('SADD', KEYS[1], member)")
        self.script = LuaScript(script)

    def queue(self, pipe: redis.client.Pipeline, flag_set: str, flags: Iterable[Flag]) -> int:
        """Add the writes of `flags` to `flag_set`; returns how many calls (replies) were queued."""
        calls = 0
        args: list[str | int] = [self.generation]
        for member, version, flagged in flags:
            args += (member, version, 1 if flagged else 0)
            if len(args) > 3 * FLAGS_CHUNK:
                self.script.queue(pipe, [flag_set, keys.flag_versions(flag_set)], args)
                calls += 1
                args = [self.generation]
        if len(args) > 1:
            self.script.queue(pipe, [flag_set, keys.flag_versions(flag_set)], args)
            calls += 1
        return calls
