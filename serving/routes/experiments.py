"""`GET /v1/experiments`: the recommendation experiment's arms and their live counts and rates.

The recommend flow keeps the tallies (requests, impressions, clicks, carts,
conversions, and CTR, cart and conversion rates per impression) from the
served answers joined with what shoppers did next; this route returns them
beside each arm's configuration. The same counts are Prometheus counters of
the flow (`omnistream_rec_experiment_events_total`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from operators.recs.experiments import ExperimentTally
from serving.routes.recommendations import Recommender, recommender
from serving.schemas import error_responses

router = APIRouter(prefix="/v1/experiments", tags=["recommendations"], responses=error_responses(503))


def _arm(rec: Recommender, index: int, stored: bytes | None) -> dict[str, Any]:
    variant = rec.variants[index]
    tally = orjson.loads(stored) if stored else ExperimentTally(variant.name).get()
    if tally.get("as_of") == float("-inf"):
        tally["as_of"] = None
    return {
        "variant": variant.name,
        "share": variant.share,
        "use_ranker": variant.use_ranker,
        "category_cap": variant.category_cap,
        "weights": dict(variant.weights),
        "metrics": tally,
    }


@router.get("")
async def read_experiments(request: Request) -> Response:
    """Every arm: its share, blend weights, ranker use, and live metrics (zeros before its first answer)."""
    rec = recommender(request)
    stored = await rec.reader.experiments([v.name for v in rec.variants])
    body = {"salt": rec.salt, "variants": [_arm(rec, i, doc) for i, doc in enumerate(stored)]}
    return Response(orjson.dumps(body), media_type="application/json")
