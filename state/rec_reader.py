"""Reads what the recommendations API needs in two Redis round trips, and the experiment tallies.

Round 1 (`first_round`) is one pipeline: the shopper's profiles, the request
SKU's neighbours, the trending lists of the context and the ranker weights.
Round 2 (`second_round`) is one Lua call: the documents round 1 pointed to
(neighbours of the recent SKUs, trending of the affine categories), and the
stock-aware filter over every candidate, those documents' included: a SKU
passes only if it is in the sellable set of the location (or of anywhere)
the inventory flow keeps, and its catalog facts do not say `active: false`.
Doing the filter server-side is what keeps it at two round trips: the
candidates of round 2's own documents are not known to the API beforehand.

The script reads keys it derives from the documents (the SKUs' catalog
hashes), so like the flow sink it needs a single Redis node or Sentinel, not
Cluster (docs/recommendations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis

from state import keys

# KEYS[1] the sellable set, KEYS[2..] the documents to fetch.
# ARGV[1] the document field, ARGV[2] and ARGV[3] what goes before and after a SKU in its catalog key,
# ARGV[4..] candidates known already. Replies {documents (false when absent), sellable candidates}.
_SECOND_ROUND = """
local docs = {}
local candidates = {}
for i = 4, #ARGV do candidates[ARGV[i]] = true end
for i = 2, #KEYS do
  local doc = redis.call('HGET', KEYS[i], ARGV[1])
  docs[i - 1] = doc
  if doc then
    local ok, list = pcall(cjson.decode, doc)
    if ok and type(list) == 'table' then
      for _, entry in ipairs(list) do
        if type(entry) == 'table' and type(entry[1]) == 'string' then candidates[entry[1]] = true end
      end
    end
  end
end
local sellable = {}
for sku in pairs(candidates) do
  if redis.call('SISMEMBER', KEYS[1], sku) == 1 then
    local item = redis.call('HGET', ARGV[2] .. sku .. ARGV[3], ARGV[1])
    if not (item and string.find(item, '"active":false', 1, true)) then sellable[#sellable + 1] = sku end
  end
end
return {docs, sellable}
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


class RecReader:
    """The recommendation documents in two calls; every call is one round trip."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._second_round = client.register_script(_SECOND_ROUND)
        self._affixes = keys.rec_item_affixes()

    async def first_round(
        self, profiles: Sequence[str], neighbours: Sequence[str], trending: Sequence[str]
    ) -> FirstRound:
        """Profiles by actor, neighbour lists by SKU, trending lists by scope, and the ranker weights."""
        pipe = self._client.pipeline(transaction=False)
        field = keys.DOC_FIELD
        for actor in profiles:
            pipe.hget(keys.rec_profile(actor), field)
        for sku in neighbours:
            pipe.hget(keys.rec_neighbours(sku), field)
        for scope in trending:
            pipe.hget(keys.rec_trending(scope), field)
        pipe.hget(keys.rec_ranker(), field)
        replies = await pipe.execute()
        out: list[dict[str, Any]] = [{}, {}, {}]
        position = 0
        for index, names in enumerate((profiles, neighbours, trending)):
            for name in names:
                doc = _parsed(replies[position])
                if doc is not None:
                    out[index][name] = doc
                position += 1
        return FirstRound(out[0], out[1], out[2], _parsed(replies[position]))

    async def second_round(
        self, location_id: str | None, neighbours: Sequence[str], trending: Sequence[str], candidates: Sequence[str]
    ) -> SecondRound:
        """The follow-up documents and which of all candidates (theirs included) can be shown."""
        sellable_key = keys.sellable_at(location_id) if location_id else keys.sellable_anywhere()
        doc_keys = [*(keys.rec_neighbours(sku) for sku in neighbours), *(keys.rec_trending(s) for s in trending)]
        prefix, suffix = self._affixes
        docs, sellable = await self._second_round(
            keys=[sellable_key, *doc_keys], args=[keys.DOC_FIELD, prefix, suffix, *candidates]
        )
        parsed_neighbours: dict[str, Any] = {}
        parsed_trending: dict[str, Any] = {}
        for index, doc in enumerate(docs):
            parsed = _parsed(doc or None)
            if parsed is None:
                continue
            if index < len(neighbours):
                parsed_neighbours[neighbours[index]] = parsed
            else:
                parsed_trending[trending[index - len(neighbours)]] = parsed
        return SecondRound(parsed_neighbours, parsed_trending, {sku.decode() for sku in sellable})

    async def experiments(self, variants: Sequence[str]) -> list[bytes | None]:
        """The stored tally document of each variant, in order (None before its first answer)."""
        pipe = self._client.pipeline(transaction=False)
        for variant in variants:
            pipe.hget(keys.rec_experiment(variant), keys.DOC_FIELD)
        tallies: list[bytes | None] = await pipe.execute()
        return tallies
