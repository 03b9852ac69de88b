"""`GET /v1/recommendations`: what to show a shopper next, fresh, sellable where they are, and measured.

Two Redis round trips (`state.rec_reader`): the shopper's profiles, the
request SKU's neighbours and the context's trending lists; then the
neighbours of the shopper's recent SKUs, the trending of their categories
and the stock-aware filter of every candidate. The blend is the engine's one
`recommend` function (`operators.recs.blend`), the same the quality harness
measures. Each answer is recorded to `omni.rec_served` (`events.rec_served`; non-blocking) so the
recommend flow can join it with the clicks that follow.

`serving.fast_paths` answers well-formed requests (`FAST_ROUTE`) ahead of FastAPI's
routing (the framework would be most of the cost); this route documents the
endpoint and answers what the fast path declines, with the 422s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Annotated, Literal, NamedTuple

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from events.rec_served import RecServed, ServedContext, ServedItem, encode_served
from operators.recs.blend import (
    RecMaterial,
    RecRequest,
    Scored,
    candidate_skus,
    followup_plan,
    material_plan,
    recommend,
)
from operators.recs.experiments import Variant, assign_variant
from operators.recs.interactions import actor_key
from serving.cold_answers import ColdAnswers
from serving.fast_paths import FastRoute
from serving.rec_served import ServedPublisher
from serving.schemas import error_responses
from state.rec_reader import NEIGHBOURS, RANKER, SIMILAR, TRENDING, RecReader

ROUTE = "/v1/recommendations"
MAX_ID_LENGTH = 256
MAX_K = 100
DEFAULT_K = 10
CHANNELS = ("web", "app", "store")
SEEN = ("include", "exclude")
"""`seen=`: may the answer hold SKUs the shopper already viewed (a "viewed again" slot)? Default `exclude`."""
ANONYMOUS = "anonymous"
"""The actor of a request naming neither user nor session: one shared arm of the experiment."""


class RecParams(NamedTuple):
    """A request's parameters, checked."""

    user_id: str | None = None
    session_id: str | None = None
    sku: str | None = None
    location_id: str | None = None
    channel: str | None = None
    k: int = DEFAULT_K
    include_seen: bool = False


def parse_query(pairs: Sequence[tuple[str, str]]) -> RecParams | None:
    """The parameters of a well-formed query string, or None to let the FastAPI route answer (and 422).

    Blank values count as absent (`?user_id=&sku=SKU-1`). Unknown parameters are ignored, as FastAPI does.

    >>> parse_query([("user_id", "U-1"), ("k", "5"), ("session_id", "")])
    RecParams(user_id='U-1', session_id=None, sku=None, location_id=None, channel=None, k=5, include_seen=False)
    >>> parse_query([("k", "0")]) is None, parse_query([("sku", "A"), ("sku", "B")]) is None
    (True, True)
    >>> parse_query([("seen", "include")]).include_seen, parse_query([("seen", "all")]) is None
    (True, True)
    """
    values: dict[str, str | None] = {}
    k = DEFAULT_K
    include_seen = False
    for name, value in pairs:
        if name in values:
            return None  # repeated: let the route say which value it takes
        if name == "k":
            if not value.isdigit() or not 1 <= int(value) <= MAX_K:
                return None
            k = int(value)
            values["k"] = value
        elif name == "seen":
            if value and value not in SEEN:
                return None
            include_seen = value == "include"
            values["seen"] = value
        elif name in RecParams._fields:
            if len(value) > MAX_ID_LENGTH or (name == "channel" and value and value not in CHANNELS):
                return None
            values[name] = value or None
    return RecParams(values.get("user_id"), values.get("session_id"), values.get("sku"), values.get("location_id"),
                     values.get("channel"), k, include_seen)  # fmt: skip


class Recommender:
    """Answers recommendation requests: assign the arm, read in two round trips, blend, record the answer.

    Parameters
    ----------
    reader
        The recommendation documents in Redis.
    publisher
        Where served answers go (None: not recorded, e.g. tools).
    variants
        The experiment's arms (`Settings.rec.variants`).
    salt
        The experiment's assignment salt.
    similar_lists
        Whether the flow writes session-kNN lists (`Settings.rec.knn_sessions` > 0): when it does
        not, asking Redis for them would only cost every request a key lookup.
    """

    def __init__(
        self,
        reader: RecReader,
        publisher: ServedPublisher | None,
        variants: Sequence[Variant],
        salt: str,
        similar_lists: bool = True,
    ) -> None:
        self.reader = reader
        self.publisher = publisher
        self.similar_lists = similar_lists
        self.variants = tuple(variants)
        self.salt = salt
        self.cold_answers = ColdAnswers()

    async def answer(self, params: RecParams) -> bytes:
        """The response body for `params`; Redis failures propagate (the API answers 503)."""
        request = RecRequest(params.user_id, params.session_id, params.sku, params.location_id, params.channel,
                             params.include_seen)  # fmt: skip
        actor = actor_key(params.user_id, params.session_id) or ANONYMOUS
        variant = assign_variant(actor, self.variants, self.salt)
        reader = self.reader
        plan = material_plan(request)
        # Round 1: the profiles, the lists not cached (with the request SKU's category shelf when its cached
        # neighbours tell it), and the stock check of every candidate known without a profile.
        neighbours: dict[str, Sequence[Scored]] = {}
        trending: dict[str, Sequence[Scored]] = {}
        missing = [*_held(reader, NEIGHBOURS, plan.neighbours, neighbours),
                   *_held(reader, TRENDING, plan.trending, trending)]  # fmt: skip
        without_profile = RecMaterial({}, neighbours, trending, None, ())  # sees the shelves added next
        missing += _held(reader, TRENDING, followup_plan(request, without_profile).trending, trending)
        ranker = reader.cached(RANKER, "") if variant.use_ranker else None
        known = candidate_skus(request, without_profile)
        if self.similar_lists:
            missing += [(SIMILAR, actor) for actor in plan.similar]  # per shopper, never cached
        first = await reader.fetch(params.location_id, missing, known, plan.profiles,
                                   ranker=variant.use_ranker and ranker is None)  # fmt: skip
        neighbours |= first.lists[NEIGHBOURS]
        trending |= first.lists[TRENDING]
        similar = first.lists[SIMILAR]
        ranker = (first.ranker if ranker is None else ranker) or None
        sellable = first.sellable
        # Round 2, when round 1 told more: a returning shopper's recent SKUs and categories, the request SKU's
        # category when its neighbours were not cached; and the stock check of what round 1 did not check.
        # (Without a profile, and with every list cached, round 1 had all there is: the common case.)
        unchecked: set[str] = set()
        if first.profiles or missing:
            round_one = RecMaterial(first.profiles, neighbours, trending, ranker, sellable, similar)
            follow = followup_plan(request, round_one)
            missing = [*_held(reader, NEIGHBOURS, follow.neighbours, neighbours),
                       *_held(reader, TRENDING, follow.trending, trending)]  # fmt: skip
            every = candidate_skus(request, RecMaterial(first.profiles, neighbours, trending, ranker, (), similar))
            unchecked = every - first.checked
        if missing or unchecked:
            second = await reader.fetch(params.location_id, missing, unchecked)
            neighbours |= second.lists[NEIGHBOURS]
            trending |= second.lists[TRENDING]
            sellable = sellable | second.sellable
        material = RecMaterial(first.profiles, neighbours, trending, ranker, sellable, similar)
        cold_key = None if first.profiles or similar else (params.sku, params.location_id, params.channel,
                                                           variant.name, params.k, params.include_seen)  # fmt: skip
        items = self.cold_answers.get(cold_key, material) if cold_key else None
        if items is None:
            items = recommend(request, material, variant, params.k)
            if cold_key:
                self.cold_answers.put(cold_key, material, items)
        request_id = os.urandom(16).hex()  # a random 128-bit id, as uuid4's hex without the object
        body = orjson.dumps({
            "request_id": request_id,
            "variant": variant.name,
            "items": [{"sku": item.sku, "score": round(item.score, 6), "reason": item.reason} for item in items],
        })  # fmt: skip
        if self.publisher is not None:
            served = RecServed(request_id=request_id, variant=variant.name, actor=actor, ts=time.time(),
                               items=[ServedItem(item.sku, item.features) for item in items],
                               context=ServedContext(sku=params.sku, location_id=params.location_id,
                                                     channel=params.channel, k=params.k,
                                                     reasons=[item.reason for item in items]))  # fmt: skip
            self.publisher.publish(encode_served(served), variant.name)
        return body


def _held(
    reader: RecReader, kind: str, names: Sequence[str], into: dict[str, Sequence[Scored]]
) -> list[tuple[str, str]]:
    """Put the cached lists of `names` into `into`; return (kind, name) of those to fetch."""
    missing = []
    for name in names:
        held = reader.cached(kind, name)
        if held is None:
            missing.append((kind, name))
        elif held:
            into[name] = held
    return missing


async def fast_answer(api: FastAPI, _: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    """The answer to a well-formed query, or None to let the route answer it (`serving.fast_paths`)."""
    params = parse_query(pairs)
    if params is None:
        return None
    rec: Recommender = api.state.recommender
    return await rec.answer(params)


FAST_ROUTE = FastRoute(ROUTE, fast_answer)


def recommender(request: Request) -> Recommender:
    """The app's `Recommender` (taken from `request`, as the hot inventory routes do: see `serving.deps`)."""
    rec: Recommender = request.app.state.recommender
    return rec


router = APIRouter(prefix=ROUTE, tags=["recommendations"], responses=error_responses(422, 503))


class RecommendedItem(BaseModel):
    sku: str
    score: float
    reason: str = Field(description="The candidate source that contributed most to the score.")


class Recommendations(BaseModel):
    request_id: str = Field(description="Pass it back as `rec_request_id` on a product view from this answer.")
    variant: str = Field(description="The experiment arm that answered (stable per user, else per session).")
    items: list[RecommendedItem]


@router.get("", responses={200: {"model": Recommendations}})
async def read_recommendations(
    request: Request,
    user_id: Annotated[str | None, Query(max_length=MAX_ID_LENGTH, description="Logged-in shopper.")] = None,
    session_id: Annotated[str | None, Query(max_length=MAX_ID_LENGTH, description="Browser or app session.")] = None,
    sku: Annotated[str | None, Query(max_length=MAX_ID_LENGTH, description="The product page's SKU.")] = None,
    location_id: Annotated[
        str | None,
        Query(max_length=MAX_ID_LENGTH, description="Store or warehouse; nothing unavailable there is returned."),
    ] = None,
    channel: Annotated[Literal["web", "app", "store", ""] | None, Query(description="Where the shopper is.")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many SKUs.")] = DEFAULT_K,
    seen: Annotated[
        Literal["include", "exclude", ""] | None,
        Query(
            description="`include`: SKUs the shopper already viewed (the current one too) may be in the answer,"
            " ranked by how likely a re-visit is; `exclude` (default): never any of them."
        ),
    ] = None,
) -> Response:
    """Up to `k` SKUs for the shopper, best first: `request_id`, `variant`, `items` [{`sku`, `score`, `reason`}].

    `reason` names the source that contributed most (`co_visitation`, `session_category`,
    `profile_category`, `trending_location`, `trending_channel`, `trending_global`, and
    `viewed_again` with `seen=include`). Never an item unavailable at `location_id` (or anywhere,
    without it), never an inactive one. A shopper without history gets what is trending in their context.
    """
    params = RecParams(user_id or None, session_id or None, sku or None, location_id or None, channel or None, k,
                       seen == "include")  # fmt: skip
    return Response(await recommender(request).answer(params), media_type="application/json")
