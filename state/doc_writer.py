"""Writes `FencedDoc` records: any flow's JSON document under a key, absolute and version-fenced.

Recommendation lists, shopper profiles, experiment tallies and fraud scores
are all "the newest whole document for this key": the flow shapes the bytes
(as the API will serve or parse them) and a version that grows with the
key's state; the fence (`state.fence`) makes replays after recovery change
nothing, as for stock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

import redis

from state import keys
from state.fence import VersionFence, newest_per_key
from state.flag_sets import Flag, FlagSets
from state.pipeline_scripts import run_counting


@dataclass(frozen=True, slots=True)
class FencedDoc:
    """The whole document of `key` at `version` (monotonic per key within a flow's state).

    `ttl_s` > 0 makes the key expire (e.g. fraud scores); `as_of` is the event
    time of the newest event the document reflects, for the lag metric.
    `flag_set`, when given, is a set kept in step with the document, fenced by
    the same version (`state.flag_sets`): `flag_member` is in it exactly when `flagged` (the catalog's
    set of withdrawn SKUs, which the recommendations API checks in one command).
    """

    key: str
    version: int
    doc: bytes
    ttl_s: float = 0.0
    as_of: float | None = None
    flag_set: str | None = None
    flag_member: str = ""
    flagged: bool = False


_KEY = attrgetter("key")


class DocWriter:
    """Fenced, pipelined writer of `FencedDoc`s; the newest version per key of a batch wins.

    A document's flag set is written by a fenced call of its own (`state.flag_sets`) in the
    same pipeline: the set lives in another hash slot than the document, and every call names
    all it touches in one slot (Redis Cluster).

    >>> FencedDoc("omni:x", 3, b"{}").version
    3
    """

    def __init__(self, client: redis.Redis, generation: str = "") -> None:
        self.generation = generation
        self._client = client
        self._fence = VersionFence(client, generation)
        self._flags = FlagSets(generation)
        self.scripts = (*self._fence.scripts, self._flags.script)  # for `run_pipeline`

    def write_batch(self, docs: Iterable[FencedDoc]) -> int:
        """Write the newest document per key of `docs`; returns how many Redis accepted."""
        docs = list(docs)
        return run_counting(self._client, lambda pipe: self.queue_counted(pipe, docs), self.scripts)

    def queue_counted(self, pipe: redis.client.Pipeline, docs: Iterable[FencedDoc]) -> tuple[int, int]:
        """Add the fenced writes of the newest document per key to `pipe`, many per call.

        Returns (replies queued, documents queued); each reply is the number of documents it
        applied (a flag call's is 0), so a sink sums the replies to count what was applied.
        """
        newest = newest_per_key(docs, _KEY)
        writes = [(doc.key, doc.version, doc.doc, int(doc.ttl_s * 1000)) for doc in newest.values()]
        replies = self._fence.queue_docs(pipe, writes, keys.DOC_FIELD) if writes else 0
        return replies + self._queue_flags(pipe, newest.values()), len(newest)

    def queue(self, pipe: redis.client.Pipeline, docs: Iterable[FencedDoc]) -> int:
        """Add the fenced writes of the newest document per key to `pipe`, one reply (1 or 0) each, then the
        flag calls (0 each); returns how many replies."""
        newest = newest_per_key(docs, _KEY)
        fence, doc_field = self._fence, keys.DOC_FIELD
        for doc in newest.values():
            fence.queue(pipe, doc.key, doc.version, [doc_field, doc.doc], ttl_ms=int(doc.ttl_s * 1000))
        return len(newest) + self._queue_flags(pipe, newest.values())

    def _queue_flags(self, pipe: redis.client.Pipeline, docs: Iterable[FencedDoc]) -> int:
        by_set: dict[str, list[Flag]] = {}
        for doc in docs:
            if doc.flag_set is not None:
                by_set.setdefault(doc.flag_set, []).append((doc.flag_member, doc.version, doc.flagged))
        return sum(self._flags.queue(pipe, flag_set, flags) for flag_set, flags in by_set.items())


def read_doc(client: redis.Redis, key: str) -> bytes | None:
    """The document stored under `key`, or None (for tests and tools; the API reads asynchronously)."""
    value = client.hget(key, keys.DOC_FIELD)
    return value.encode() if isinstance(value, str) else value
