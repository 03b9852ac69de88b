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
