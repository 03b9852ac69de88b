"""The customer document the API serves (`GET /v1/customers/{id}`), shaped once in the flow."""

from __future__ import annotations

import math
from typing import Any

from events.timestamps import rfc3339_ms
from operators.customers.lifecycle import DAY_S, VIP
from operators.customers.profile import CHANNELS, CustomerConfig, CustomerState, expected_value


def _time(ts: float) -> str | None:
    return rfc3339_ms(ts) if ts else None


def segments_of(state: CustomerState) -> frozenset[str]:
    """The segments a customer is in: their lifecycle stage, and `vip` once reached."""
    return segments_of_stage(state.stage, state.vip)


def segments_of_stage(stage: str, vip: bool) -> frozenset[str]:
    """The segments of a customer at `stage`, VIP or not.

    >>> sorted(segments_of_stage("active", True))
    ['active', 'vip']
    """
    return frozenset((stage, VIP)) if vip else frozenset((stage,))


def customer_doc(customer_id: str, state: CustomerState, config: CustomerConfig, now: float) -> dict[str, Any]:
    """The document of one customer as of event time `now` (the flow's watermark, or their newest event).

    RFM inputs are as of the newest purchase (`rfm.as_of`): the decayed sums are then the
    same whatever order the purchases arrived in. Recency and expected value are as of `as_of`.

    >>> state = CustomerState(orders=1, first=0.0, last=0.0, seen=0.0, stage="new")
    >>> state.add_spend((90 * DAY_S,), 0.0, 1, 40.0)
    >>> doc = customer_doc("C1", state, CustomerConfig(windows_s=(90 * DAY_S,)), now=DAY_S)
    >>> doc["lifecycle"], doc["rfm"]["recency_days"], doc["rfm"]["monetary"], doc["segments"]
    ('new', 1.0, {'90d': 40.0}, ['new'])
    """
    as_of = max(state.seen, now) if math.isfinite(now) else state.seen
    labels = [f"{round(w / DAY_S)}d" for w in config.windows_s]
    freq, money = state.decayed(config.windows_s, state.decay_ts)
    bought = state.orders > 0
    recency_days = round((as_of - state.last) / DAY_S, 3) if bought else None
    since = f": last purchase {recency_days:g} days ago" if bought else ": no purchase yet"
    reasons = [f"lifecycle {state.stage}{since}"]
    if state.vip:
        reasons.append(f"vip: spend over {labels[-1]} reached {config.vip_spend:g}")
    preferred = state.preferred_store
    if preferred is not None:
        reasons.append(f"preferred store {preferred} ({state.stores[0][1]} of {state.channels[0]} store visits)")
    return {
        "customer_id": customer_id,
        "lifecycle": state.stage,
        "segments": sorted(segments_of(state)),
        "rfm": {
            "last_purchase_at": _time(state.last),
            "first_purchase_at": _time(state.first),
            "recency_days": recency_days,
            "orders": state.orders,
            "spend": round(state.spend, 2),
            "frequency": {label: round(f, 4) for label, f in zip(labels, freq, strict=True)},
            "monetary": {label: round(m, 2) for label, m in zip(labels, money, strict=True)},
            "as_of": _time(state.decay_ts),
            "buckets": list(state.buckets) if state.buckets else None,  # where the population histograms count them
        },
        "channels": dict(zip(CHANNELS, state.channels, strict=True)),
        "preferred_store": preferred,
        "country": state.country,
        "expected_value": round(expected_value(state, config, as_of), 2),
        "marketing_consent": state.consent,
        "reasons": reasons,
        "as_of": _time(as_of),
    }


_RFM = b'"rfm":{'
_BUCKETS = b'"buckets":'


def scores_slot(doc: bytes) -> tuple[list[int] | None, int] | None:
    """The customer's RFM buckets in a stored document, and the offset where `rfm.scores` goes; None if not found.

    `customer_doc` writes `rfm.buckets` (three integers, or null) last in `rfm`, so the document the
    API serves is the stored bytes with `,"scores":{...}` put in after them: no parse and re-encode
    of the whole document per read. None for a document of another shape (the caller then parses it).

    >>> stored = b'{"customer_id":"C1","rfm":{"orders":2,"buckets":[10,-3,7]},"channels":{}}'
    >>> buckets, at = scores_slot(stored)
    >>> buckets, stored[:at] + b',"scores":{}' + stored[at:]
    ([10, -3, 7], b'{"customer_id":"C1","rfm":{"orders":2,"buckets":[10,-3,7],"scores":{}},"channels":{}}')
    >>> scores_slot(b'{"rfm":{"buckets":null}}'), scores_slot(b'{"rfm":{"buckets":[1],"orders":2}}')
    ((None, 22), None)
    """
    start = doc.find(_BUCKETS)
    if start < 0 or doc.rfind(_RFM, 0, start) < 0:
        return None
    value_at = start + len(_BUCKETS)
    end = doc.find(b"}", value_at)
    if end < 0:
        return None
    value = doc[value_at:end]
    if value == b"null":
        return None, end
    if value[:1] != b"[" or value[-1:] != b"]":
        return None
    try:
        buckets = [int(part) for part in value[1:-1].split(b",")]
    except ValueError:
        return None
    return (buckets, end) if len(buckets) == 3 else None
