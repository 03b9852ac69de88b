"""The attribution answer for a range of days: conversions, revenue and credit share per channel.

Sums the flow's per-day documents (`operators.attribution.shards.DayTotals.doc`): heuristic
models add up their credited conversions and revenue; the Markov model is computed over the
range's path counts (`operators.attribution.models.markov_shares`), its shares applied to the
range's conversions and revenue. Pure: the API reads the documents and calls this.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from operators.attribution.models import markov_shares
from operators.attribution.shards import OTHER_PATHS


def report(days: Iterable[dict[str, Any]], model: str, by: str) -> dict[str, Any]:
    """Totals and per-channel credit of `model` under dimension `by`, strongest channel first.

    >>> day = {"conversions": 2, "revenue": 30.0, "credits": {"campaign": {"linear": {"a": [1.5, 20.0],
    ...        "b": [0.5, 10.0]}}}, "paths": {"campaign": {"a>b": [1, 0, 20.0], "a": [1, 1, 10.0]}}}
    >>> report([day], "linear", "campaign")["channels"][0]
    {'channel': 'a', 'conversions': 1.5, 'revenue': 20.0, 'share': 0.75}
    >>> [c["channel"] for c in report([day], "markov", "campaign")["channels"]]
    ['a', 'b']
    """
    conversions = 0
    revenue = 0.0
    credited: dict[str, list[float]] = {}
    paths: dict[str, list[float]] = {}
    for day in days:
        conversions += int(day.get("conversions", 0))
        revenue += float(day.get("revenue", 0.0))
        if model == "markov":
            for key, (conv, nulls, value) in day.get("paths", {}).get(by, {}).items():
                cell = paths.setdefault(key, [0.0, 0.0, 0.0])
                cell[0] += conv
                cell[1] += nulls
                cell[2] += value
        else:
            for channel, (conv, value) in day.get("credits", {}).get(by, {}).get(model, {}).items():
                cell = credited.setdefault(channel, [0.0, 0.0])
                cell[0] += conv
                cell[1] += value
    if model == "markov":
        shares = markov_shares((key.split(">"), c, n) for key, (c, n, _) in paths.items() if key != OTHER_PATHS)
        credited = {channel: [share * conversions, share * revenue] for channel, share in shares.items()}
    total = sum(conv for conv, _ in credited.values())
    channels = [
        {"channel": channel, "conversions": round(conv, 4), "revenue": round(value, 2),
         "share": round(conv / total, 6) if total else 0.0}
        for channel, (conv, value) in sorted(credited.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]  # fmt: skip
    return {"model": model, "by": by, "conversions": conversions, "revenue": round(revenue, 2), "channels": channels}
