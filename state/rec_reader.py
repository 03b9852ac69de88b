"""Reads what the recommendations API needs: usually one Redis round trip, two for a returning shopper.

Every round is one call of one Lua script (`_ROUND`): plain documents (the
shopper's profiles, the ranker weights), list documents (neighbours by SKU,
trending by scope), and the stock-aware filter over every candidate, the
fetched lists' included: a SKU passes only if it is in the sellable set of
the location (or of anywhere) the inventory flow keeps, and not in the set
of SKUs the catalog withdrew (two SMISMEMBER commands inside the script).
Doing the filter server-side is what keeps it to one call: the candidates
of the lists fetched in that call are not known to the API beforehand.

Round 1 fetches the profiles and session-kNN lists, the request SKU's
neighbours and the context's trending lists, and filters all their candidates. A shopper
with no profile (new, or anonymous) is answered from that. A returning
shopper's profile names recent SKUs and categories whose lists round 2
fetches, filtering only the candidates round 1 did not.

The sets and documents of one call live in different hash slots: on Redis
Cluster, which refuses such a script, a round is instead two pipelines of
single-key commands (documents, then the stock check), with the same answer.

Neighbour and trending lists are shared by every shopper and rewritten at
most every few seconds (the flow throttles them), so the reader keeps them
for `cache_s` seconds, parsed into tuples of (sku, score, category) tuples:
hot SKUs and scopes then cost no fetch and no parse. Tuples of strings and
numbers drop out of the garbage collector's tracking after their first
young collection, so a full cache adds nothing to the full collections that
would otherwise walk it on the request path (p99); when that collection runs
is the caller's policy (`after_parse`). Profiles and the stock
filter are never cached (freshness, and "never recommend what cannot be sold").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from state import keys
from state.script_batch import BatchedScript

# KEYS[1] the sellable set, KEYS[2] the withdrawn set, KEYS[3 .. 2 + ARGV[2]] plain documents, the rest list documents.
# ARGV[1] the document field, ARGV[2] how many plain documents, ARGV[3] the candidates known already, joined by the
# unit separator (one argument instead of a hundred: packing arguments one by one was a visible share of the API's
# time). Replies {plain documents, list documents (false when absent), the sellable candidates joined likewise}.
_SEPARATOR = "\x1f"
_ROUND = """
local field, plain = ARGV[1], tonumber(ARGV[2])
local plain_docs, list_docs = {}, {}
for i = 3, 2 + plain do plain_docs[i - 2] = redis.call('HGET', KEYS[i], field) end
local seen = {}
local candidates = {}
for sku in string.gmatch(ARGV[3], '[^\\31]+') do
  if not seen[sku] then seen[sku] = true; candidates[#candidates + 1] = sku end
end
for i = 3 + plain, #KEYS do
  local doc = redis.call('HGET', KEYS[i], field)
  list_docs[i - 2 - plain] = doc
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
return {plain_docs, list_docs, table.concat(sellable, '\\31')}
"""

Scored = tuple[str, float, str]
ScoredList = tuple[Scored, ...]
NEIGHBOURS, TRENDING, SIMILAR = "nb", "trend", "sim"
"""The kinds of list documents: neighbours by SKU, trending by scope, session kNN by actor (never cached: it changes
with each of the shopper's clicks, like the profile)."""
_LIST_KEYS = {NEIGHBOURS: keys.rec_neighbours, TRENDING: keys.rec_trending, SIMILAR: keys.rec_similar}
RANKER = "ranker"
"""The kind of the one ranker document (`cached(RANKER, "")`)."""


class Round(NamedTuple):
    """One round's documents and which of its candidates may be shown.

    `profiles` by actor (absent ones left out); `lists` by kind, then name
    (absent or unreadable ones left out); `checked` every SKU whose stock was
    checked, `sellable` those that passed.
    """

    profiles: dict[str, Any]
    ranker: Any | None
    lists: dict[str, dict[str, ScoredList]]
    checked: set[str]
    sellable: set[str]


def scored_list(doc: bytes | None) -> ScoredList | None:
    """A stored neighbour or trending list as tuples; entries that are not [sku, score, category] are left out.

    A document the API cannot read is no document: never a failed request.

    >>> scored_list(b'[["SKU-1", 2.5, "toys"], ["SKU-2", 1, null], [3], "x"]'), scored_list(b"{oops")
    ((('SKU-1', 2.5, 'toys'), ('SKU-2', 1.0, '')), None)
    """
    parsed = _parsed(doc)
    if not isinstance(parsed, list):
        return None
    entries = []
    for entry in parsed:
        if isinstance(entry, list) and len(entry) == 3:
            sku, score, category = entry
            if type(sku) is str and isinstance(score, (int, float)) and not isinstance(score, bool):
                entries.append((sku, float(score), category if type(category) is str else ""))
    return tuple(entries)


def plain_doc(doc: bytes | None) -> dict[str, Any] | None:
    """A stored profile or ranker document as a dict; None when absent or not a JSON object.

    >>> plain_doc(b'{"actor": "u:U-1"}'), plain_doc(b"[1]"), plain_doc(None)
    ({'actor': 'u:U-1'}, None, None)
    """
    parsed = _parsed(doc)
    return parsed if isinstance(parsed, dict) else None


def _parsed(doc: bytes | None) -> Any | None:
    if not doc:
        return None
    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None


class SharedDocCache:
    """Shared documents (neighbour and trending lists, the ranker), parsed, for `cache_s` seconds.

    Bounded: it starts afresh when it holds `max_entries`. A document found
    absent is cached as absent too (a cold SKU asked for repeatedly).

    >>> cache = SharedDocCache(cache_s=10.0)
    >>> cache.put("k", (("SKU-1", 1.0, ""),), now=0.0)
    >>> cache.get("k", now=5.0), cache.get("k", now=11.0), cache.get("other", now=0.0)
    ((('SKU-1', 1.0, ''),), None, None)
    """

    ABSENT: Any = ()
    """What `get` gives for a document Redis did not have (or that could not be read)."""

    def __init__(self, cache_s: float, max_entries: int = 100_000) -> None:
        self.cache_s = cache_s
        self.max_entries = max_entries
        # Documents and expiry times apart, not (expiry, document) pairs: a pair holding a list (a tuple of
        # tuples) is one more level the collector untracks only in an older generation (`serving.cold_answers`).
        self._docs: dict[str, Any] = {}
        self._expires: dict[str, float] = {}

    def get(self, key: str, now: float) -> Any | None:
        """The cached document (`ABSENT` when Redis had none), or None when not cached or expired."""
        expires = self._expires.get(key)
        if expires is None or expires <= now:
            return None
        return self._docs[key]

    def put(self, key: str, doc: Any | None, now: float) -> None:
        if self.cache_s <= 0:
            return
        if len(self._docs) >= self.max_entries:
            self._docs.clear()
            self._expires.clear()
        self._docs[key] = self.ABSENT if doc is None else doc
        self._expires[key] = now + self.cache_s


class RecReader:
    """The recommendation documents in one script call per round (or none, when all is cached and nothing to check).

    Parameters
    ----------
    client
        The API's asyncio Redis client.
    cache_s
        Seconds neighbour and trending lists and ranker weights are reused (0: never).
    after_parse
        Called with the number of lists each round parsed (the API's collection
        policy, `serving.collector.ParsedListCollector`).
    """

    def __init__(
        self, client: aioredis.Redis, cache_s: float = 0.0, after_parse: Callable[[int], None] | None = None
    ) -> None:
        self._client = client
        self.cache_s = cache_s
        self._round = BatchedScript(client, _ROUND)
        # A Cluster refuses one script over keys of several slots: there a round is two pipelines of plain commands.
        self._by_slot = isinstance(client, AsyncRedisCluster)
        self._cache = SharedDocCache(cache_s)
        self._after_parse = after_parse

    def cached(self, kind: str, name: str) -> Any | None:
        """A shared list from the cache; `SharedDocCache.ABSENT` when Redis had none; None if not cached."""
        return self._cache.get(kind + ":" + name, time.monotonic())

    async def fetch(
        self,
        location_id: str | None,
        lists: Sequence[tuple[str, str]],
        candidates: Iterable[str],
        profiles: Sequence[str] = (),
        ranker: bool = False,
    ) -> Round:
        """One round: `profiles` by actor, the ranker weights if asked, `lists` by (kind, name), and the stock check
        of `candidates` and of every SKU in the fetched lists.

        Pass only lists not cached (`cached`), and the candidates of the cached ones with the rest.
        """
        checked = set(candidates)
        sellable_key = keys.sellable_at(location_id) if location_id else keys.sellable_anywhere()
        plain_keys = [keys.rec_profile(actor) for actor in profiles]
        if ranker:
            plain_keys.append(keys.rec_ranker())
        list_keys = [_LIST_KEYS[kind](name) for kind, name in lists]
        if self._by_slot:
            plain_docs, list_docs, sellable = await self._round_by_slot(sellable_key, plain_keys, list_keys, checked)
        else:
            plain_docs, list_docs, sellable = await self._round(
                keys=[sellable_key, keys.rec_inactive(), *plain_keys, *list_keys],
                args=[keys.DOC_FIELD, len(plain_keys), _SEPARATOR.join(checked)],
            )
        found_profiles = {}
        for actor, doc in zip(profiles, plain_docs, strict=False):
            parsed = plain_doc(doc or None)
            if parsed is not None:
                found_profiles[actor] = parsed
        now = time.monotonic()
        found_ranker = None
        if ranker:
            found_ranker = plain_doc(plain_docs[-1] or None)
            self._cache.put(RANKER + ":", found_ranker, now)
        found: dict[str, dict[str, ScoredList]] = {NEIGHBOURS: {}, TRENDING: {}, SIMILAR: {}}
        for (kind, name), doc in zip(lists, list_docs, strict=True):
            parsed_list = scored_list(doc or None)
            if kind != SIMILAR:
                self._cache.put(kind + ":" + name, parsed_list, now)
            if parsed_list is not None:
                found[kind][name] = parsed_list
                checked.update(sku for sku, _, _ in parsed_list)
        if self._after_parse is not None and lists:
            self._after_parse(len(lists))
        return Round(found_profiles, found_ranker, found, checked, set(sellable.decode().split(_SEPARATOR)) - {""})

    async def _round_by_slot(
        self, sellable_key: str, plain_keys: Sequence[str], list_keys: Sequence[str], checked: Iterable[str]
    ) -> tuple[list[bytes | None], list[bytes | None], bytes]:
        """What `_ROUND` replies, from single-key commands (the Cluster client groups each pipeline by node).

        One pipeline reads the documents, a second checks every candidate, theirs included,
        against the sellable and the withdrawn sets: the same answer in two round trips.
        """
        docs: list[bytes | None] = []
        if plain_keys or list_keys:
            pipe = self._client.pipeline(transaction=False)
            for key in (*plain_keys, *list_keys):
                pipe.hget(key, keys.DOC_FIELD)
            docs = await pipe.execute()
        candidates = dict.fromkeys(sku for sku in checked if sku)
        for doc in docs[len(plain_keys) :]:
            parsed = _parsed(doc)
            if isinstance(parsed, list):
                for entry in parsed:
                    if isinstance(entry, list) and entry and type(entry[0]) is str and entry[0]:
                        candidates[entry[0]] = None
        sellable: list[str] = []
        if candidates:
            names = list(candidates)
            pipe = self._client.pipeline(transaction=False)
            pipe.smismember(sellable_key, names)
            pipe.smismember(keys.rec_inactive(), names)
            in_stock, withdrawn = await pipe.execute()
            sellable = [sku for sku, held, gone in zip(names, in_stock, withdrawn, strict=True) if held and not gone]
        return docs[: len(plain_keys)], docs[len(plain_keys) :], _SEPARATOR.join(sellable).encode()

    async def experiments(self, variants: Sequence[str]) -> list[bytes | None]:
        """The stored tally document of each variant, in order (None before its first answer)."""
        pipe = self._client.pipeline(transaction=False)
        for variant in variants:
            pipe.hget(keys.rec_experiment(variant), keys.DOC_FIELD)
        tallies: list[bytes | None] = await pipe.execute()
        return tallies
