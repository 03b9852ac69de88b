"""Recorded click sessions (`SessionId ItemId Time` TSV) and the reference methods scored on them.

The session-based next-click protocol (the one of `../shared/data/yoochoose-100k/README.md`):
learn the training log in time order, then replay each validation session click
by click; after click i ask for the top 20 given the session so far; a hit if
click i+1 is among them; MRR@20 adds 1/rank. Models keep learning from the
validation clicks as they arrive.

Every click is a `product_view` of `s:<SessionId>` on SKU `ItemId` at `Time`:
that is what `SessionLog.records` feeds the recommend flow. The reference
methods here (`Popularity`, `LastItemCovisitation`, `SessionKnn`) are kept
apart from the deployed code on purpose: they are what the deployed answer is
measured against, written from their published descriptions, not from ours.

Two scorings of the same predictions:
- `all`: every click i+1 counts, a repeat of click i included (the README's
  12,455 predictions), and the references may name the SKU being viewed;
- `next_different`: the storefront contract (the API never recommends the SKU
  being viewed): references are filtered the same way, and a repeat of the
  current SKU (a reload) is not a prediction anyone can use, so it is not scored.
"""

from __future__ import annotations

import csv
import heapq
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic

K = 20
_REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = next(
    (up / "shared" / "data" / "yoochoose-100k" for up in _REPO.parents if (up / "shared" / "data").is_dir()),
    _REPO.parent / "shared" / "data" / "yoochoose-100k",
)
"""`../shared/data/yoochoose-100k` beside the repository (or beside a folder holding it, for a git worktree);
`--sessions DIR` points elsewhere."""


class Click(NamedTuple):
    session: str
    item: str
    ts: float


def read_clicks(path: Path) -> list[Click]:
    """The clicks of a `SessionId ItemId Time` TSV (header first) in time order; malformed rows are skipped."""
    clicks: list[Click] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            try:
                session, item, ts = row["SessionId"].strip(), row["ItemId"].strip(), float(row["Time"])
            except (KeyError, ValueError, AttributeError, TypeError):
                continue
            if session and item and math.isfinite(ts):
                clicks.append(Click(session, item, ts))
    clicks.sort(key=lambda click: click.ts)  # stable: a session's clicks keep their order at equal times
    return clicks


class SessionLog:
    """A training log and a validation log of click sessions, as the flow's clickstream events.

    `records` yields the training clicks, then the validation clicks, each log in time order.
    """

    def __init__(self, directory: Path, train: str = "train.tsv", valid: str = "valid.tsv") -> None:
        self.train = read_clicks(directory / train)
        self.valid = read_clicks(directory / valid)

    def clicks(self) -> Iterator[Click]:
        yield from self.train
        yield from self.valid

    def records(self) -> Iterator[tuple[Topic, bytes]]:
        for number, click in enumerate(self.clicks()):
            yield Topic.CLICKSTREAM, view_event(number, click)


def view_event(number: int, click: Click) -> bytes:
    """The `product_view` a storefront would send for `click`."""
    return orjson.dumps({"event_id": f"click-{number}", "type": "product_view", "ts": rfc3339_ms(click.ts),
                         "schema_version": 1, "session_id": click.session, "channel": "web",
                         "sku": click.item})  # fmt: skip


def next_click_tasks(valid: Sequence[Click]) -> dict[int, str]:
    """Index in `valid` of each click that has a successor in its session -> the successor's item."""
    last_of: dict[str, int] = {}
    tasks: dict[int, str] = {}
    for index, click in enumerate(valid):
        previous = last_of.get(click.session)
        if previous is not None:
            tasks[previous] = click.item
        last_of[click.session] = index
    return tasks


class Scores:
    """HR@K, MRR@K and coverage of one method under one scoring."""

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0
        self.reciprocal_ranks = 0.0
        self.items: set[str] = set()
        self.hits_by_source: dict[str, int] = {}

    def score(self, returned: Sequence[str], target: str, sources: Sequence[str] | None = None) -> None:
        self.requests += 1
        self.items.update(returned)
        for rank, item in enumerate(returned, 1):
            if item == target:
                self.hits += 1
                self.reciprocal_ranks += 1.0 / rank
                if sources is not None:
                    self.hits_by_source[sources[rank - 1]] = self.hits_by_source.get(sources[rank - 1], 0) + 1
                return

    def get(self, catalog_size: int) -> dict[str, object]:
        n = max(self.requests, 1)
        out: dict[str, object] = {
            "requests": self.requests,
            f"hit_rate_at_{K}": self.hits / n,
            f"mrr_at_{K}": self.reciprocal_ranks / n,
            "catalog_coverage": len(self.items) / max(catalog_size, 1),
        }
        if self.hits_by_source:
            out["hit_share_by_source"] = {s: h / max(self.hits, 1) for s, h in sorted(self.hits_by_source.items())}
        return out


# --- reference methods ------------------------------------------------------------------------------------------


class Popularity:
    """All-time click counts."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._top: list[str] = []
        self._stale = 0

    def learn(self, session: Sequence[str], ts: float) -> None:
        item = session[-1]
        self.counts[item] = self.counts.get(item, 0) + 1
        self._stale += 1

    def top(self, session: Sequence[str], ts: float, n: int) -> list[str]:
        if self._stale:
            self._top = [i for i, _ in heapq.nlargest(n + 1, self.counts.items(), key=lambda kv: (kv[1], kv[0]))]
            self._stale = 0
        return self._top


class LastItemCovisitation:
    """Items clicked near the last item in the same sessions, each pair weighted 1 / distance in clicks.

    A repeat click pairs an item with itself: under the `all` scoring a reload is a next click too."""

    def __init__(self, window: int = 10) -> None:
        self.window = window
        self.pairs: dict[str, dict[str, float]] = {}

    def learn(self, session: Sequence[str], ts: float) -> None:
        item = session[-1]
        for distance, other in enumerate(reversed(session[-1 - self.window : -1]), 1):
            weight = 1.0 / distance
            for a, b in ((item, other), (other, item)):
                row = self.pairs.setdefault(a, {})
                row[b] = row.get(b, 0.0) + weight

    def top(self, session: Sequence[str], ts: float, n: int) -> list[str]:
        row = self.pairs.get(session[-1], {})
        return [i for i, _ in heapq.nlargest(n + 1, row.items(), key=lambda kv: (kv[1], kv[0]))]


class SessionKnn:
    """Session kNN: cosine over session item sets, the `neighbours` most similar of the `sample` most recent
    sessions sharing an item; an item's score is the summed similarity of the neighbours holding it."""

    def __init__(self, neighbours: int = 100, sample: int = 500) -> None:
        self.neighbours = neighbours
        self.sample = sample
        self.items_of: dict[str, set[str]] = {}
        self.last_ts: dict[str, float] = {}
        self.sessions_of: dict[str, set[str]] = {}

    def learn_click(self, session_id: str, item: str, ts: float) -> None:
        self.items_of.setdefault(session_id, set()).add(item)
        self.last_ts[session_id] = ts
        self.sessions_of.setdefault(item, set()).add(session_id)

    def top_for(self, session_id: str, session: Sequence[str], n: int) -> list[str]:
        current = set(session)
        candidates: set[str] = set()
        for item in current:
            candidates |= self.sessions_of.get(item, set())
        candidates.discard(session_id)
        if len(candidates) > self.sample:
            candidates = set(heapq.nlargest(self.sample, candidates, key=lambda s: self.last_ts[s]))
        similar = []
        for other in candidates:
            items = self.items_of[other]
            shared = len(current & items)
            if shared:
                similar.append((shared / math.sqrt(len(current) * len(items)), other))
        scores: dict[str, float] = {}
        for similarity, other in heapq.nlargest(self.neighbours, similar):
            for item in self.items_of[other]:
                scores[item] = scores.get(item, 0.0) + similarity
        return [i for i, _ in heapq.nlargest(n + 1 + len(current), scores.items(), key=lambda kv: (kv[1], kv[0]))]


def reference_scores(log: SessionLog) -> dict[str, dict[str, Scores]]:
    """Each reference method under both scorings (`all`, `next_different`), learning train then valid clicks."""
    popularity, covisitation, knn = Popularity(), LastItemCovisitation(), SessionKnn()
    sessions: OrderedDict[str, list[str]] = OrderedDict()
    names = ("popularity", "covisitation", "session_knn")
    results = {name: {"all": Scores(), "next_different": Scores()} for name in names}
    tasks = next_click_tasks(log.valid)
    for phase, clicks in (("train", log.train), ("valid", log.valid)):
        for index, click in enumerate(clicks):
            session = sessions.setdefault(click.session, [])
            session.append(click.item)
            popularity.learn(session, click.ts)
            covisitation.learn(session, click.ts)
            knn.learn_click(click.session, click.item, click.ts)
            target = tasks.get(index) if phase == "valid" else None
            if target is None:
                continue
            answers = {
                "popularity": popularity.top(session, click.ts, K),
                "covisitation": covisitation.top(session, click.ts, K),
                "session_knn": knn.top_for(click.session, session, K),
            }
            for name, ranked in answers.items():
                results[name]["all"].score(ranked[:K], target)
                if target != click.item:
                    results[name]["next_different"].score([i for i in ranked if i != click.item][:K], target)
    return results


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    log = SessionLog(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR)
    catalog = len({c.item for c in log.clicks()})
    for name, by_scoring in reference_scores(log).items():
        for scoring, scores in by_scoring.items():
            print(name, scoring, scores.get(catalog))
    print(f"{time.perf_counter() - started:.1f} s")
