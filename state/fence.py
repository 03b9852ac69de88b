"""The version fence every state write goes through: one Lua script, used by every writer.

Applies a whole hash only when its version is newer: a replay after recovery
re-sends older versions, which change nothing. Versions are only comparable
within one lineage of flow state (`generation`, born with the recovery
partitions): a hash written by another lineage (an earlier run on since
recreated topics) is replaced whole, stale fields too. An optional time to
live (milliseconds, 0 for none) lets short-lived facts (fraud scores) expire.
"""

from __future__ import annotations

import redis
from redis.commands.core import Script

from state import keys

# KEYS[1] the hash; ARGV: generation field, generation, version field, version, ttl ms, field, value, ...
_WRITE_IF_NEWER = """
local gen = redis.call('HGET', KEYS[1], ARGV[1])
if gen == ARGV[2] then
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '-1')
  if stored >= tonumber(ARGV[4]) then return 0 end
elseif gen then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], unpack(ARGV, 6))
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""


class VersionFence:
    """Queues fenced writes of `(key, version, fields)` into a pipeline; each replies 1 (applied) or 0."""

    def __init__(self, client: redis.Redis, generation: str = "") -> None:
        self.generation = generation
        self._script: Script = client.register_script(_WRITE_IF_NEWER)

    def queue(
        self,
        pipe: redis.client.Pipeline,
        key: str,
        version: int,
        fields: list[bytes | str | int],
        ttl_ms: int = 0,
    ) -> None:
        """Add the write of `fields` (name, value, ...) at `version` to `pipe`."""
        args: list[bytes | str | int] = [keys.GENERATION_FIELD, self.generation, keys.VERSION_FIELD, version,
                                         ttl_ms, *fields]  # fmt: skip
        self._script(keys=[key], args=args, client=pipe)
