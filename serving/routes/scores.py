"""`/v1/scores`: the fraud score of one payment (a till `txn_id` or an online `order_id`).

The fraud flow stores each score already shaped as this route serves it, with a time to live
(`OMNISTREAM_FRAUD_SCORE_TTL_S`); the handler returns the stored bytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from serving.deps import FraudReaderDep
from serving.errors import NotFound
from serving.schemas import FraudScore, error_responses

MAX_ID_LENGTH = 256

router = APIRouter(prefix="/v1/scores", tags=["fraud"], responses=error_responses(422, 503))

PaymentId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="A till sale's txn_id or an online order_id.")
]


@router.get("/{payment_id}", responses={200: {"model": FraudScore}, **error_responses(404)})
async def read_score(payment_id: PaymentId, reader: FraudReaderDep) -> Response:
    """The fraud score, decision, reasons and model version of one payment."""
    doc = await reader.score(payment_id)
    if doc is None:
        raise NotFound(f"no score for payment {payment_id!r} (not scored yet, not a card payment, or expired)")
    return Response(doc, media_type="application/json")
