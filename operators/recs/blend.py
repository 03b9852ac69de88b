"""THE recommend function: candidates from neighbours, profiles and trending, blended, ranked, filtered.

The API and the quality harness (`benchmarks/recs_quality.py`) both call
`recommend`, so what the harness measures is what shoppers get. It does no
I/O: `material_plan` and `followup_plan` say which documents to fetch (two
round trips), `candidate_skus` which SKUs need a stock check, and the caller
passes everything in as a `RecMaterial`.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple

from operators.recs.experiments import Variant
from operators.recs.interactions import actor_key
from operators.recs.profile import ProfileDoc
from operators.recs.ranker import RankerWeights, rank_score
from operators.recs.trending import GLOBAL, category_scope, channel_scope, location_scope

Scored = tuple[str, float, str]
"""(sku, score, category or "") as `ItemNeighbours.top` and `Trending.top` give them."""

MAX_ANCHORS = 6
"""Recent SKUs whose neighbours are candidates: the request SKU plus the newest profile items."""
ANCHOR_DECAY = 0.6
"""Weight factor per step back from the current SKU (session-kNN's recency weighting)."""
NEIGHBOURS_SERVED = 50
"""Neighbours per SKU worth storing for the API (`ItemNeighbours.top(NEIGHBOURS_SERVED, now)`)."""
TRENDING_SERVED = 100
"""SKUs per trending scope worth storing for the API: enough to survive the stock filter."""
MAX_CATEGORIES = 3
"""Category shelves (`cat:<c>` trending) consulted per answer."""
REVISIT_RECENCY_POWER = 1.2
"""Re-visit likelihood of the SKU `n` distinct SKUs back from the current one, relative to the current one:
(1 + n) ** -power. Shoppers go back to what they just left far more often than to what they saw five pages
ago, and the fall slows with age (a power law, as forgetting curves go, rather than a fixed factor per step)."""
REVISIT_REPEAT_GAIN = 0.5
"""Re-visit likelihood of a SKU viewed `n` times grows as 1 - (1 - gain)^n: each repeat says more interest,
with diminishing returns (frequency); 0.5 makes a twice-viewed SKU 1.5x and a thrice-viewed one 1.75x as likely."""
MAX_REVISITS = 10
"""Session SKUs considered for a re-visit, newest first (older ones are rarely clicked again)."""


class RecRequest(NamedTuple):
    """What the storefront tells us: who (user and/or session), on which SKU, at which location, on which channel."""

    user_id: str | None = None
    session_id: str | None = None
    sku: str | None = None
    location_id: str | None = None
    channel: str | None = None
    include_seen: bool = False
    """`seen=include`: the answer may hold SKUs this shopper already viewed (the current one included), ranked
    by how likely a re-visit is; `seen=exclude` (False, the default): never the SKU being viewed, as before
    (SKUs viewed earlier may come back through the other sources: hiding them all hid what shoppers go on to
    cart and buy, and cost the blend a quarter of its hits on the simulator)."""


_NONE: Mapping[str, Sequence[Scored]] = MappingProxyType({})


class RecMaterial(NamedTuple):
    """Everything `recommend` needs, fetched by the caller.

    `profiles` by actor key (`u:<user_id>`, `s:<session_id>`); `neighbours`
    by SKU; `trending` by scope (`global`, `cat:<c>`, `loc:<id>`, `ch:<channel>`);
    `sellable` holds every SKU that can be sold where the shopper is (at
    `location_id`, or anywhere without one): nothing outside it is ever returned;
    `similar` by actor key: what the shoppers most like this one viewed (the flow's session kNN).
    """

    profiles: Mapping[str, ProfileDoc]
    neighbours: Mapping[str, Sequence[Scored]]
    trending: Mapping[str, Sequence[Scored]]
    ranker: RankerWeights | None
    sellable: Container[str]
    similar: Mapping[str, Sequence[Scored]] = _NONE


class RecItem(NamedTuple):
    """One recommended SKU: its score, the source that contributed most, and its features (for the ranker)."""

    sku: str
    score: float
    reason: str
    features: dict[str, float]


class MaterialPlan(NamedTuple):
    """Documents to fetch: profiles by actor key, neighbour lists by SKU, trending lists by scope, session-kNN
    lists by actor key."""

    profiles: list[str]
    neighbours: list[str]
    trending: list[str]
    similar: Sequence[str] = ()


REASONS = {
    "revisit": "viewed_again",
    "similar": "similar_shoppers",
    "covisit": "co_visitation",
    "session_category": "session_category",
    "profile_category": "profile_category",
    "trending_location": "trending_location",
    "trending_channel": "trending_channel",
    "trending_global": "trending_global",
}


def material_plan(request: RecRequest) -> MaterialPlan:
    """Round trip 1: the shopper's profiles and session-kNN lists, the request SKU's neighbours, the context's
    trending lists.

    >>> material_plan(RecRequest("U-1", "S-1", "SKU-1", "STORE-01", "web"))
    MaterialPlan(profiles=['u:U-1', 's:S-1'], neighbours=['SKU-1'], trending=['loc:STORE-01', 'ch:web', 'global'], \
similar=['u:U-1', 's:S-1'])
    """
    profiles = []
    if request.user_id:
        profiles.append(actor_key(request.user_id, None) or "")
    if request.session_id:
        profiles.append(actor_key(None, request.session_id) or "")
    trending = []
    if request.location_id:
        trending.append(location_scope(request.location_id))
    if request.channel:
        trending.append(channel_scope(request.channel))
    trending.append(GLOBAL)
    return MaterialPlan(profiles, [request.sku] if request.sku else [], trending, list(profiles))


def followup_plan(request: RecRequest, material: RecMaterial) -> MaterialPlan:
    """Round trip 2, from round 1's material: neighbours of recent profile SKUs, trending of affine categories.

    >>> profile = {"actor": "u:U-1", "recent": [("SKU-2", 1, 5.0, "toys")], "categories": {"toys": 1.0}, "as_of": 5.0}
    >>> material = RecMaterial({"u:U-1": profile}, {}, {}, None, set())
    >>> followup_plan(RecRequest("U-1", None, "SKU-1"), material)
    MaterialPlan(profiles=[], neighbours=['SKU-2'], trending=['cat:toys'], similar=())
    """
    anchors = _anchors(request, material.profiles)
    neighbours = [sku for sku, _ in anchors if sku not in material.neighbours and sku != request.sku]
    session, profile = _category_weights(request, material.profiles, material.neighbours)
    categories = {c for c, _ in session} | {c for c, _ in profile}
    trending = [category_scope(c) for c in sorted(categories) if category_scope(c) not in material.trending]
    return MaterialPlan([], neighbours, trending)


def candidate_skus(request: RecRequest, material: RecMaterial) -> set[str]:
    """Every SKU `recommend` could return from `material`: the ones to check for stock, in no special order."""
    skus: set[str] = set()
    for sku, _ in _anchors(request, material.profiles):
        skus.update(map(_sku_of, material.neighbours.get(sku, ())))
    for scope_list in material.trending.values():
        skus.update(map(_sku_of, scope_list))
    for similar in material.similar.values():
        skus.update(map(_sku_of, similar))
    if request.include_seen:
        skus.update(sku for sku, _ in _revisits(request, material.profiles))
    else:
        skus.discard(request.sku or "")
    return skus


def recommend(request: RecRequest, material: RecMaterial, variant: Variant, k: int = 10) -> list[RecItem]:
    """The top `k` SKUs for `request`, best first.

    Candidates and their features (each in [0, 1]):
    - `revisit` (only with `request.include_seen`): the SKUs the shopper
      viewed, the current one included, by re-visit likelihood (`_revisits`:
      recency and repeat views), not scaled to the best: on recorded shopper
      sessions a quarter of next clicks repeat the SKU being viewed and one
      in ten goes back to an earlier one;
    - `similar`: the flow's session-kNN list of each of the shopper's actors
      (`operators.recs.session_knn`): what the shoppers whose recent SKUs look
      most like this one's viewed, the whole session counting, newest most;
    - `covisit`: neighbours of the request SKU and of the newest profile SKUs,
      each list scaled to its best, weighted by recency (ANCHOR_DECAY per step);
    - `session_category`: trending in the categories of what the shopper is
      looking at now (the recent SKUs, recency-weighted);
    - `profile_category`: trending in the shopper's decayed category affinities;
    - `trending_location`, `trending_channel`, `trending_global`: the context.
    The score is the variant's weighted sum of features, or the ranker's click
    probability when the variant uses it and one is given. The reason is the source that contributed most, but
    `viewed_again` for every SKU the shopper viewed (with `seen=include`). Then: never the
    request SKU unless `request.include_seen`, never a SKU outside `material.sellable`, at most
    `variant.category_cap` per category (filled from the rest if too few).
    A shopper with no history and no current SKU (nothing personal to go on)
    gets the trending lists of their context in tiers: what trends at their
    location first, then on their channel, then everywhere — the cold start.
    Scores stay in [0, 1] there: (tier + blended score / total weight) / 3.

    >>> from operators.recs.experiments import Variant
    >>> material = RecMaterial(
    ...     profiles={},
    ...     neighbours={"SKU-1": [("SKU-2", 4.0, "toys"), ("SKU-3", 2.0, "toys"), ("SKU-9", 9.0, "toys")]},
    ...     trending={"global": [("SKU-4", 10.0, "books"), ("SKU-2", 1.0, "toys")]},
    ...     ranker=None,
    ...     sellable={"SKU-2", "SKU-3", "SKU-4"},  # SKU-9 is out of stock
    ... )
    >>> [(i.sku, round(i.score, 2), i.reason) for i in recommend(RecRequest(sku="SKU-1"), material, Variant("v"), 3)]
    [('SKU-2', 0.45, 'co_visitation'), ('SKU-3', 0.22, 'co_visitation'), ('SKU-4', 0.1, 'trending_global')]
    """
    if k <= 0:
        return []
    # Accumulated feature values by source (in SOURCES order), then SKU; and each candidate's category.
    # By source rather than by SKU: most candidates have one or two sources, and a dict per candidate
    # was most of this function's time on the API's path.
    values_of: dict[str, dict[str, float]] = {}
    categories: dict[str, str] = {}
    sellable = material.sellable
    exclude = () if request.include_seen or not request.sku else (request.sku,)

    if request.include_seen:
        # What the shopper viewed, by how likely they go back to it: not scaled to the best (a SKU viewed
        # once and one viewed thrice must not both read 1.0), each value already in [0, 1).
        revisit: dict[str, float] = {}
        for sku, value in _revisits(request, material.profiles):
            if sku in sellable:
                revisit[sku] = value
                categories[sku] = ""
        if revisit:
            values_of["revisit"] = revisit

    def add(source: str, scored: Sequence[Scored], weight: float, skip: Container[str] = ()) -> None:
        # Each list is scaled to its best score first, so every list speaks in [0, 1].
        top = max(map(_score_of, scored), default=0.0)
        if top <= 0.0 or weight <= 0.0:
            return
        values = values_of.setdefault(source, {})
        for sku, score, category in scored:
            if score <= 0.0 or sku in exclude or sku in skip:
                continue
            held = categories.get(sku)
            if held is None:
                if sku not in sellable:
                    continue  # filtered before scoring: the stock check is the cheap part
                categories[sku] = category
            elif category and not held:
                categories[sku] = category
            values[sku] = values.get(sku, 0.0) + weight * (score / top)

    # Session kNN: what the shoppers whose recent SKUs look most like this one's viewed.
    viewed = values_of.get("revisit")
    for similar in material.similar.values():
        # With `seen=include`, the order of what the shopper viewed is the re-visit likelihood's alone: similar
        # shoppers' votes for those SKUs would outrank a SKU viewed thrice by one viewed once. (Still scaled to the
        # list's best, the current SKU included: scaled to the best of the rest, the list outranked the SKU being
        # viewed, and MRR fell from 0.37 to 0.28 on the recorded sessions.)
        add("similar", similar, 1.0, viewed or ())
    # Co-visitation: neighbours of what the shopper is on and was just on.
    for sku, weight in _anchors(request, material.profiles):
        add("covisit", material.neighbours.get(sku, ()), weight)
    session, profile = _category_weights(request, material.profiles, material.neighbours)
    for source, weights in (("session_category", session), ("profile_category", profile)):
        for category, weight in weights:
            add(source, material.trending.get(category_scope(category), ()), weight)
    cold = not categories  # only the personal sources above have added anything yet
    if request.location_id:
        add("trending_location", material.trending.get(location_scope(request.location_id), ()), 1.0)
    if request.channel:
        add("trending_channel", material.trending.get(channel_scope(request.channel), ()), 1.0)
    add("trending_global", material.trending.get(GLOBAL, ()), 1.0)

    # Each feature in [0, 1] across the candidates, so blend weights and ranker weights mean the same everywhere.
    for source, values in values_of.items():
        top = max(values.values(), default=0.0)
        if top > 1.0:
            values_of[source] = {sku: value / top for sku, value in values.items()}

    blend_weights = variant.weights
    scores = dict.fromkeys(categories, 0.0)
    best = dict.fromkeys(categories, -1.0)
    reasons = dict.fromkeys(categories, "trending_global")
    for source, values in values_of.items():
        weight = blend_weights.get(source, 0.0)
        for sku, value in values.items():
            contribution = weight * value
            scores[sku] += contribution
            if contribution > best[sku]:
                best[sku], reasons[sku] = contribution, source
    for sku in values_of.get("revisit", ()):
        reasons[sku] = "revisit"  # a SKU the shopper viewed is shown as viewed again, whoever else votes for it

    def features(sku: str) -> dict[str, float]:
        return {source: values[sku] for source, values in values_of.items() if sku in values}

    if cold:
        total_weight = sum(blend_weights.get(source, 0.0) for source in _CONTEXT) or 1.0
        at_location = values_of.get("trending_location", {})
        on_channel = values_of.get("trending_channel", {})
        for sku, score in scores.items():
            tier = 2 if sku in at_location else 1 if sku in on_channel else 0
            reasons[sku] = _TIER_REASON[tier]
            scores[sku] = (tier + min(1.0, score / total_weight)) / 3.0
    elif variant.use_ranker and material.ranker is not None:
        ranker = material.ranker
        scores = {sku: rank_score(ranker, features(sku)) for sku in scores}
    ranked = sorted((-score, sku, reasons[sku]) for sku, score in scores.items())  # sku breaks ties: stable answers
    chosen = _diversify(ranked, categories, variant.category_cap, k)
    return [RecItem(sku, -negative, REASONS[source], features(sku)) for negative, sku, source in chosen]


_sku_of, _score_of = itemgetter(0), itemgetter(1)


def _revisits(request: RecRequest, profiles: Mapping[str, ProfileDoc]) -> list[tuple[str, float]]:
    """(sku, likelihood of a re-visit in [0, 1)) of the SKUs viewed, the current one first, then newest first.

    Two signals, both about this shopper alone: recency (REVISIT_RECENCY_POWER) and how often
    they viewed it (1 - (1 - REVISIT_REPEAT_GAIN)^views). The request SKU counts one view more when the
    profile does not have it newest yet (the view and the request raced).

    >>> profile = {"actor": "s:S-1", "recent": [("B", 1, 9.0, ""), ("A", 1, 5.0, "")], "categories": {},
    ...            "as_of": 9.0, "visits": {"A": 3}}
    >>> [(sku, round(v, 3)) for sku, v in _revisits(RecRequest(None, "S-1", "B"), {"s:S-1": profile})]
    [('B', 0.5), ('A', 0.381)]
    >>> [(sku, round(v, 3)) for sku, v in _revisits(RecRequest(None, "S-1", "A"), {"s:S-1": profile})]
    [('A', 0.938), ('B', 0.218)]
    """
    recent = _recent(request, profiles)
    visits = _visits(request, profiles)
    keep, power = 1.0 - REVISIT_REPEAT_GAIN, -REVISIT_RECENCY_POWER
    out: list[tuple[str, float]] = []
    done: set[str] = set()
    current = request.sku
    if current:
        views = visits.get(current, 1) + (0 if recent and recent[0][0] == current else 1)
        out.append((current, 1.0 - keep**views))
        done.add(current)
    for sku, _, _, _ in recent:
        if sku in done:
            continue
        done.add(sku)
        out.append((sku, (1.0 + len(out)) ** power * (1.0 - keep ** visits.get(sku, 1))))
        if len(out) >= MAX_REVISITS:
            break
    return out


def _visits(request: RecRequest, profiles: Mapping[str, ProfileDoc]) -> dict[str, int]:
    """Views per recent SKU of the shopper's profiles (absent from older documents: every SKU counts once)."""
    visits: dict[str, int] = {}
    for actor in {actor_key(request.user_id, None), actor_key(None, request.session_id)}:
        doc = profiles.get(actor or "")
        counts = doc.get("visits") if doc is not None else None
        if isinstance(counts, dict):
            for sku, count in counts.items():
                if isinstance(count, int) and count > 0 and count > visits.get(sku, 0):
                    visits[sku] = count
    return visits


_PERSONAL = ("similar", "covisit", "session_category", "profile_category")
"""Sources that know something of this shopper or product: without any, the answer is a cold start."""
_CONTEXT = ("trending_location", "trending_channel", "trending_global")
_TIER_REASON = ("trending_global", "trending_channel", "trending_location")


def _anchors(request: RecRequest, profiles: Mapping[str, ProfileDoc]) -> list[tuple[str, float]]:
    """(sku, weight) of the request SKU and the newest profile SKUs, newest first, at most MAX_ANCHORS."""
    anchors: list[tuple[str, float]] = []
    seen: set[str] = set()
    weight = 1.0
    if request.sku:
        anchors.append((request.sku, weight))
        seen.add(request.sku)
        weight *= ANCHOR_DECAY
    for sku, _, _, _ in _recent(request, profiles):
        if sku in seen:
            continue
        seen.add(sku)
        anchors.append((sku, weight))
        weight *= ANCHOR_DECAY
        if len(anchors) >= MAX_ANCHORS:
            break
    return anchors


def _recent(request: RecRequest, profiles: Mapping[str, ProfileDoc]) -> list[tuple[str, int, float, str]]:
    """The recent SKUs of the shopper's profiles (session and user), newest first."""
    recent: list[tuple[str, int, float, str]] = []
    for actor in {actor_key(request.user_id, None), actor_key(None, request.session_id)}:
        doc = profiles.get(actor or "")
        if doc is None:
            continue
        for entry in doc.get("recent") or ():
            # Documents come back from Redis: a malformed entry is skipped, never a crash.
            if isinstance(entry, (list, tuple)) and len(entry) == 4 and isinstance(entry[0], str):
                sku, kind, ts, category = entry
                if isinstance(ts, (int, float)) and isinstance(kind, int):
                    recent.append((sku, kind, float(ts), category if isinstance(category, str) else ""))
    if len(recent) > 1:
        recent.sort(key=lambda entry: -entry[2])
    return recent


def _category_weights(
    request: RecRequest, profiles: Mapping[str, ProfileDoc], neighbours: Mapping[str, Sequence[Scored]]
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(session, long-term) category weights, each summing to 1, at most MAX_CATEGORIES each.

    Session: categories of the recent SKUs (the request SKU's own category is
    not in the material, so its neighbours' majority category stands in when
    it is not among the recent ones), by recency. Long-term: the profiles'
    decayed affinities.
    """
    session: dict[str, float] = {}
    weight = 1.0
    recent = _recent(request, profiles)
    if request.sku and not (recent and recent[0][0] == request.sku):
        votes: dict[str, float] = {}
        for _, score, category in neighbours.get(request.sku, ())[:10]:
            if category:
                votes[category] = votes.get(category, 0.0) + score
        if votes:
            session[max(votes, key=lambda c: votes[c])] = weight
            weight *= ANCHOR_DECAY
    for _, _, _, category in recent[:MAX_ANCHORS]:
        if category:
            session[category] = session.get(category, 0.0) + weight
        weight *= ANCHOR_DECAY
    profile: dict[str, float] = {}
    for actor in {actor_key(request.user_id, None), actor_key(None, request.session_id)}:
        doc = profiles.get(actor or "")
        if doc is not None:
            affinities = doc.get("categories")
            if not isinstance(affinities, dict):
                continue
            valid = {c: float(v) for c, v in affinities.items() if isinstance(v, (int, float)) and v > 0}
            total = sum(valid.values())
            for category, value in valid.items():
                if total > 0:
                    profile[category] = profile.get(category, 0.0) + value / total
    return _normalised_top(session), _normalised_top(profile)


def _normalised_top(weights: dict[str, float]) -> list[tuple[str, float]]:
    top = sorted(weights.items(), key=lambda cw: (-cw[1], cw[0]))[:MAX_CATEGORIES]
    total = sum(w for _, w in top)
    return [(c, w / total) for c, w in top] if total > 0 else []


def _diversify(
    ranked: list[tuple[float, str, str]], categories: Mapping[str, str], cap: int | None, k: int
) -> list[tuple[float, str, str]]:
    """The first `k` of `ranked` (best first, by SKU second), at most `cap` per category, filled from the rest."""
    if cap is None or cap <= 0:
        return ranked[:k]
    chosen: list[tuple[float, str, str]] = []
    held_back: list[tuple[float, str, str]] = []
    per_category: dict[str, int] = {}
    for entry in ranked:
        category = categories.get(entry[1], "")
        if category and per_category.get(category, 0) >= cap:
            held_back.append(entry)
            continue
        per_category[category] = per_category.get(category, 0) + 1
        chosen.append(entry)
        if len(chosen) == k:
            return chosen
    return chosen + held_back[: k - len(chosen)]
