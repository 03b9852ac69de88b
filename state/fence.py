"""The version fence every state write goes through: one Lua script, used by every writer.

Applies a whole hash only when its version is newer: a replay after recovery
re-sends older versions, which change nothing. Versions are only comparable
within one lineage of flow state (`generation`, born with the recovery
partitions): a hash written by another lineage (an earlier run on since
recreated topics) is replaced whole, stale fields too. An optional time to
live (milliseconds, 0 for none) lets short-lived facts (fraud scores) expire.

A writer that must keep other keys in step with the hash (a flow's flag
sets) passes Lua to run only when the fence let the write through
(`VersionFence(after_applied=...)`); a writer with a script of its own (the
stock writer's) starts it with `FENCE_FUNCTION`: the fence text itself exists
once, here, and is composed rather than copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import redis
from redis.cluster import RedisCluster

from state import keys
from state.pipeline_scripts import LuaScript

# The fence itself, as a Lua function every fenced script here starts with (`FENCE_FUNCTION`):
# whether writing `version` to hash `key` may go ahead. A hash of another lineage is deleted first.
# `also` names one more field to read in the same call, before any delete; its value is returned second.
FENCE_FUNCTION = """
local function passes_fence(key, gen_field, gen, version_field, version, also)
  local stored = redis.call('HMGET', key, gen_field, version_field, also or gen_field)
  if stored[1] == gen then
    return tonumber(stored[2] or '-1') < tonumber(version), stored[3]
  elseif stored[1] then
    redis.call('DEL', key)
  end
  return true, stored[3]
end
"""

# KEYS[1] the hash, KEYS[2..] keys of the `after_applied` code.
# ARGV: generation field, generation, version field, version, ttl ms, n (field and value args),
#       field, value, ... (n of them), then the `after_applied` code's own args from ARGV[EXTRA].
# fmt: off
_FENCE = FENCE_FUNCTION + """
if not passes_fence(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local nfields = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], unpack(ARGV, 7, 6 + nfields))
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
local EXTRA = 7 + nfields
"""
# fmt: on


# The same fence over many documents in one call: KEYS the hashes; ARGV: generation field,
# generation, version field, document field, then per key: version, ttl ms, document. Returns how
# many were applied. One reply for a whole batch: redis-py spends more parsing one reply per
# write than Redis spends applying it (measured on the fraud flow's score documents).
# fmt: off
_WRITE_MANY_IF_NEWER = FENCE_FUNCTION + """
local applied = 0
for i, key in ipairs(KEYS) do
  local base = 4 + (i - 1) * 3
  if passes_fence(key, ARGV[1], ARGV[2], ARGV[3], ARGV[base + 1]) then
    redis.call('HSET', key, ARGV[1], ARGV[2], ARGV[3], ARGV[base + 1], ARGV[4], ARGV[base + 3])
    local ttl = tonumber(ARGV[base + 2])
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    applied = applied + 1
  end
end
return applied
"""
# fmt: on
MANY_CHUNK = 256
"""Documents per multi-key call: long enough to amortise the call, short enough not to stall Redis."""


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


Record = TypeVar("Record", bound=_Versioned)


def newest_per_key(records: Iterable[Record], key: Callable[[Record], str]) -> dict[str, Record]:
    """The record of the highest version per key: what the fence would keep of a batch anyway, sent once.

    >>> from collections import namedtuple
    >>> Doc = namedtuple("Doc", "key version")
    >>> list(newest_per_key([Doc("a", 2), Doc("b", 1), Doc("a", 3), Doc("a", 1)], lambda d: d.key).values())
    [Doc(key='a', version=3), Doc(key='b', version=1)]
    """
    newest: dict[str, Record] = {}
    for record in records:
        name = key(record)
        kept = newest.get(name)
        if kept is None or record.version > kept.version:
            newest[name] = record
    return newest


def fenced_script(after_applied: str = "") -> str:
    """The fence's Lua with `after_applied` run only when the write went through; replies 1 or 0.

    `after_applied` sees `KEYS[2..]` and its own arguments from `ARGV[EXTRA]` on.

    >>> fenced_script("redis.call('SADD', KEYS[2], ARGV[EXTRA])").count("return 1")
    1
    """
    return f"{_FENCE}{after_applied}\nreturn 1\n"


class VersionFence:
    """Queues fenced writes of `(key, version, fields)` into a pipeline; each replies 1 (applied) or 0.

    Parameters
    ----------
    client
        The Redis client the script is registered with.
    generation
        The lineage of flow state writing (see module docstring).
    after_applied
        Lua run in the same call only when the write went through (see `fenced_script`).
    """

    def __init__(self, client: redis.Redis, generation: str = "", after_applied: str = "") -> None:
        self.generation = generation
        self.after_applied = after_applied
        self._script = LuaScript(fenced_script(after_applied))
        self._many = LuaScript(_WRITE_MANY_IF_NEWER)
        self.scripts = (self._script, self._many)  # for `run_pipeline`
        # Redis Cluster refuses a script over keys of several slots: there, one call per key.
        self._one_slot_only = isinstance(client, RedisCluster)

    def queue(
        self,
        pipe: redis.client.Pipeline,
        key: str,
        version: int,
        fields: list[bytes | str | int],
        ttl_ms: int = 0,
        extra_keys: Sequence[str] = (),
        extra_args: Sequence[bytes | str | int] = (),
    ) -> None:
        """Add the write of `fields` (name, value, ...) at `version` to `pipe`.

        `extra_keys` and `extra_args` are what the `after_applied` code works on.
        """
        args: list[bytes | str | int] = [keys.GENERATION_FIELD, self.generation, keys.VERSION_FIELD, version,
                                         ttl_ms, len(fields), *fields, *extra_args]  # fmt: skip
        self._script.queue(pipe, [key, *extra_keys], args)

    def queue_docs(self, pipe: redis.client.Pipeline, writes: list[tuple[str, int, bytes, int]], doc_field: str) -> int:
        """Add fenced writes of `(key, version, document, ttl_ms)` (field `doc_field`) to `pipe`.

        Returns how many replies were queued; each reply is the number of documents it applied.
        """
        if self._one_slot_only:
            for key, version, doc, ttl_ms in writes:
                self.queue(pipe, key, version, [doc_field, doc], ttl_ms)
            return len(writes)
        head: list[bytes | str | int] = [keys.GENERATION_FIELD, self.generation, keys.VERSION_FIELD, doc_field]
        replies = 0
        for start in range(0, len(writes), MANY_CHUNK):
            chunk = writes[start : start + MANY_CHUNK]
            args = head.copy()
            for _, version, doc, ttl_ms in chunk:
                args += (version, ttl_ms, doc)
            self._many.queue(pipe, [w[0] for w in chunk], args)
            replies += 1
        return replies
