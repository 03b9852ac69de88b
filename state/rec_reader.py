"""Reads what the recommendations API needs in two Redis round trips, and the experiment tallies.

Round 1 (`first_round`) is one pipeline: the shopper's profiles, the request
SKU's neighbours, the trending lists of the context and the ranker weights.
Round 2 (`second_round`) is one Lua call: the documents round 1 pointed to
(neighbours of the recent SKUs, trending of the affine categories), and the
stock-aware filter over every candidate, those documents' included: a SKU
passes only if it is in the sellable set of the location (or of anywhere)
the inventory flow keeps, and not in the set of SKUs the catalog withdrew
(two SMISMEMBER commands inside the script).
Doing the filter server-side is what keeps it at two round trips: the
candidates of round 2's own documents are not known to the API beforehand.

The sets and documents of one call live in different hash slots, so like
the flow sink this needs a single Redis node or Sentinel, not Cluster
(docs/recommendations.md).

Neighbour and trending lists are shared by every shopper and rewritten at
most every few seconds (the flow throttles them), so the reader keeps their
bytes for `cache_s` seconds: hot SKUs and scopes then cost no fetch. Bytes,
not parsed lists: parsing twenty entries is a few microseconds, while a
cache full of parsed lists is hundreds of thousands of objects that every
full garbage collection walks (it showed as tens of milliseconds of p99).
Profiles and the stock filter are never cached (freshness, and "never
recommend what cannot be sold").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis

from state import keys

# KEYS[1] the sellable set, KEYS[2] the withdrawn set, KEYS[3..] the documents to fetch.
# ARGV[1] the document field, ARGV[2] the candidates known already, joined by the unit separator (one
# argument instead of a hundred: packing arguments one by one was a visible share of the API's time).
# Replies {documents (false when absent), the candidates that are sellable and not withdrawn, joined likewise}.
_SEPARATOR = "\x1f"
_SECOND_ROUND = """
local docs = {}
local seen = {}
local candidates = {}
for sku in string.gmatch(ARGV[2], '[^\\31]+') do
  if not seen[sku] then seen[sku] = true; candidates[#candidates + 1] = sku end
end
for i = 3, #KEYS do
  local doc = redis.call('HGET', KEYS[i], ARGV[1])
  docs[i - 2] = doc
  if doc then
    local ok, list = pcall(cjson.decode, doc)
    if ok and type(list) == 'table' then
      for _, entry in ipairs(list) do
        local sku = type(entry) == 'table' and entry[1]
        if type(sku) == 'string' and not seen[sku] then seen[sku] = true; candidates[#candidates + 1] = sku end
      end
    end
  end
end
local sellable = {}
for first = 1, #candidates, 4000 do  -- unpack() is bounded by Lua's C stack
  local last = math.min(first + 3999, #candidates)
  local in_stock = redis.call('SMISMEMBER', KEYS[1], unpack(candidates, first, last))
  local withdrawn = redis.call('SMISMEMBER', KEYS[2], unpack(candidates, first, last))
  for i = 1, last - first + 1 do
    if in_stock[i] == 1 and withdrawn[i] == 0 then sellable[#sellable + 1] = candidates[first + i - 1] end
  end
end
return {docs, table.concat(sellable, '\\31')}
"""


class FirstRound(NamedTuple):
    """Round 1's documents, parsed; absent ones are left out."""

    profiles: dict[str, Any]
    neighbours: dict[str, Any]
    trending: dict[str, Any]
    ranker: Any | None


class SecondRound(NamedTuple):
    """Round 2's documents, parsed, and the candidates that may be shown."""

    neighbours: dict[str, Any]
    trending: dict[str, Any]
    sellable: set[str]


def _parsed(doc: bytes | None) -> Any | None:
    if doc is None:
        return None
    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None  # a document the API cannot read is no document: never a failed request


class SharedDocCache:
    """Stored bytes of shared documents (neighbour and trending lists, the ranker) for `cache_s` seconds.

    Bounded: it starts afresh when it holds `max_entries`. A document found
    absent is cached as absent too (a cold SKU asked for repeatedly).

    >>> cache = SharedDocCache(cache_s=10.0)
    >>> cache.put("k", b"[1]", now=0.0)
    >>> cache.get("k", now=5.0), cache.get("k", now=11.0), cache.get("other", now=0.0)
    (b'[1]', None, None)
    """

    ABSENT = b""

    def __init__(self, cache_s: float, max_entries: int = 100_000) -> None:
        self.cache_s = cache_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}

    def get(self, key: str, now: float) -> bytes | None:
        """The cached bytes (`ABSENT` when Redis had none), or None when not cached or expired."""
        held = self._entries.get(key)
        if held is None or held[0] <= now:
            return None
        return held[1]

    def put(self, key: str, doc: bytes | None, now: float) -> None:
        if self.cache_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.cache_s, doc or self.ABSENT)


class RecReader:
    """The recommendation documents in two calls; every call is one round trip (or none, when cached).

    Parameters
    ----------
    client
        The API's asyncio Redis client.
    cache_s
        Seconds parsed neighbour and trending lists and ranker weights are reused (0: never).
    """

    def __init__(self, client: aioredis.Redis, cache_s: float = 0.0) -> None:
        self._client = client
        self.cache_s = cache_s
        self._second_round = client.register_script(_SECOND_ROUND)
        self._cache = SharedDocCache(cache_s)

    def cached(self, kind: str, name: str) -> Any | None:
        """A shared document from the cache, parsed; `SharedDocCache.ABSENT` when Redis had none; None if not cached."""
        held = self._cache.get(kind + ":" + name, time.monotonic())
        if not held:
            return held
        return _parsed(held) or SharedDocCache.ABSENT

    async def first_round(
        self, profiles: Sequence[str], neighbours: Sequence[str], trending: Sequence[str]
    ) -> FirstRound:
        """Profiles by actor, neighbour lists by SKU, trending lists by scope, and the ranker weights."""
        now = time.monotonic()
        cache, field = self._cache, keys.DOC_FIELD
        found: dict[str, dict[str, Any]] = {"profile": {}, "nb": {}, "trend": {}, "ranker": {}}
        pipe = self._client.pipeline(transaction=False)
        wanted: list[tuple[str, str]] = []  # (kind, name) in pipeline order
        for actor in profiles:  # never cached: a profile is what makes an answer fresh
            pipe.hget(keys.rec_profile(actor), field)
            wanted.append(("profile", actor))
        for kind, names, key_of in (("nb", neighbours, keys.rec_neighbours), ("trend", trending, keys.rec_trending),
                                    ("ranker", ("",), lambda _: keys.rec_ranker())):  # fmt: skip
            for name in names:
                held = cache.get(kind + ":" + name, now)
                if held is None:
                    pipe.hget(key_of(name), field)
                    wanted.append((kind, name))
                elif held:  # b"" (ABSENT): Redis had none
                    doc = _parsed(held)
                    if doc is not None:
                        found[kind][name] = doc
        replies = await pipe.execute() if wanted else []
        for (kind, name), reply in zip(wanted, replies, strict=True):
            doc = _parsed(reply)
            if kind != "profile":
                cache.put(kind + ":" + name, reply, now)
            if doc is not None:
                found[kind][name] = doc
        return FirstRound(found["profile"], found["nb"], found["trend"], found["ranker"].get(""))

    async def second_round(
        self, location_id: str | None, neighbours: Sequence[str], trending: Sequence[str], candidates: Sequence[str]
    ) -> SecondRound:
        """The follow-up documents and which of all candidates (theirs included) can be shown.

        Pass only documents not cached (`cached`), and the candidates of the cached ones with the rest.
        """
        sellable_key = keys.sellable_at(location_id) if location_id else keys.sellable_anywhere()
        doc_keys = [*(keys.rec_neighbours(sku) for sku in neighbours), *(keys.rec_trending(s) for s in trending)]
        docs, sellable = await self._second_round(
            keys=[sellable_key, keys.rec_inactive(), *doc_keys], args=[keys.DOC_FIELD, _SEPARATOR.join(candidates)]
        )
        now = time.monotonic()
        parsed_neighbours: dict[str, Any] = {}
        parsed_trending: dict[str, Any] = {}
        for index, doc in enumerate(docs):
            parsed = _parsed(doc or None)
            if index < len(neighbours):
                name, kind, into = neighbours[index], "nb:", parsed_neighbours
            else:
                name, kind, into = trending[index - len(neighbours)], "trend:", parsed_trending
            self._cache.put(kind + name, doc or None, now)
            if parsed is not None:
                into[name] = parsed
        return SecondRound(parsed_neighbours, parsed_trending, set(sellable.decode().split(_SEPARATOR)) - {""})

    async def experiments(self, variants: Sequence[str]) -> list[bytes | None]:
        """The stored tally document of each variant, in order (None before its first answer)."""
        pipe = self._client.pipeline(transaction=False)
        for variant in variants:
            pipe.hget(keys.rec_experiment(variant), keys.DOC_FIELD)
        tallies: list[bytes | None] = await pipe.execute()
        return tallies
