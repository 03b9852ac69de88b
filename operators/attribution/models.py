"""Credit models: how one conversion's credit is shared among the touchpoints of its path.

Heuristic models credit one path at a time (`credit`): last non-direct touch, first touch,
linear, time decay (a touch's weight halves every `half_life_s` before the conversion) and
position-based (40 % first, 40 % last, 20 % shared by the middle). The data-driven model
(`markov_shares`) needs every path, converting or not: a first-order Markov chain of the
channels, from `(start)` to `(conversion)` or `(null)`; a channel's share is its *removal
effect* (how much the probability of converting drops when the channel is removed and its
visitors are lost), normalised over the channels. It is solved exactly (a linear system of the
absorbing chain), not simulated.

Pure functions: no I/O; numpy only for the linear algebra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

DIRECT = "(direct)"
HEURISTIC_MODELS = ("last_non_direct", "first_touch", "linear", "time_decay", "position_based")
MODELS = (*HEURISTIC_MODELS, "markov")


def credit(model: str, channels: Sequence[str], ages_s: Sequence[float], half_life_s: float) -> dict[str, float]:
    """Shares (summing to 1) of one conversion per channel under a heuristic `model`.

    `channels[i]` is the i-th touch of the path (oldest first); `ages_s[i]` how long before
    the conversion it happened.

    >>> credit("position_based", ["a", "b", "c", "b"], [30, 20, 10, 0], 7.0)
    {'a': 0.4, 'b': 0.5, 'c': 0.1}
    >>> credit("last_non_direct", ["a", "(direct)"], [5, 0], 7.0)
    {'a': 1.0}
    >>> credit("time_decay", ["a", "b"], [10.0, 0.0], 10.0)
    {'a': 0.3333333333333333, 'b': 0.6666666666666666}
    """
    n = len(channels)
    if n == 0:
        return {}
    if model == "last_non_direct":
        chosen = next((c for c in reversed(channels) if c != DIRECT), channels[-1])
        return {chosen: 1.0}
    if model == "first_touch":
        return {channels[0]: 1.0}
    if model == "linear":
        weights = [1.0] * n
    elif model == "time_decay":
        weights = [0.5 ** (age / half_life_s) for age in ages_s]
    elif model == "position_based":
        if n == 1:
            weights = [1.0]
        elif n == 2:
            weights = [0.5, 0.5]
        else:
            weights = [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    else:
        raise ValueError(f"unknown model {model!r}; models: {', '.join(HEURISTIC_MODELS)}")
    total = sum(weights)
    shares: dict[str, float] = {}
    for channel, weight in zip(channels, weights, strict=True):
        shares[channel] = shares.get(channel, 0.0) + weight / total
    return shares


def markov_shares(paths: Iterable[tuple[Sequence[str], float, float]]) -> dict[str, float]:
    """Each channel's share of conversions under the first-order Markov removal-effect model.

    `paths` are (channels, conversions, nulls): how many journeys took that path and converted,
    and how many took it and did not. Shares sum to 1 (empty without any conversion).

    >>> shares = markov_shares([(["a", "b"], 1, 0), (["b"], 0, 1), (["a"], 1, 1)])
    >>> {k: round(v, 4) for k, v in shares.items()}
    {'a': 0.6, 'b': 0.4}
    """
    index: dict[str, int] = {}
    counts: dict[tuple[int, int], float] = {}
    START, CONV, NULL = 0, 1, 2

    def state(channel: str) -> int:
        found = index.get(channel)
        if found is None:
            found = index[channel] = len(index) + 3
        return found

    total_conversions = 0.0
    for channels, conversions, nulls in paths:
        if not channels or (conversions <= 0 and nulls <= 0):
            continue
        total_conversions += conversions
        weight = conversions + nulls
        prev = START
        for channel in channels:
            s = state(channel)
            counts[prev, s] = counts.get((prev, s), 0.0) + weight
            prev = s
        if conversions > 0:
            counts[prev, CONV] = counts.get((prev, CONV), 0.0) + conversions
        if nulls > 0:
            counts[prev, NULL] = counts.get((prev, NULL), 0.0) + nulls
    if total_conversions <= 0 or not index:
        return {}
    size = len(index) + 3
    transitions = np.zeros((size, size))
    for (a, b), count in counts.items():
        transitions[a, b] += count
    rows = transitions.sum(axis=1, keepdims=True)
    rows[rows == 0] = 1.0
    transitions /= rows
    base = _conversion_probability(transitions, removed=None)
    if base <= 0:
        return {}
    effects = {channel: max(0.0, 1.0 - _conversion_probability(transitions, removed=s) / base)
               for channel, s in index.items()}  # fmt: skip
    total = sum(effects.values())
    return {channel: effect / total for channel, effect in effects.items()} if total > 0 else {}


def _conversion_probability(transitions: np.ndarray, removed: int | None) -> float:
    """P(reaching the conversion state from the start) in the absorbing chain, with `removed` sent to null."""
    t = transitions.copy()
    if removed is not None:
        t[:, 2] += t[:, removed]  # whoever would have gone to the removed channel is lost
        t[:, removed] = 0.0
    transient = [0, *range(3, t.shape[0])]
    q = t[np.ix_(transient, transient)]
    r = t[transient, 1]
    try:
        x = np.linalg.solve(np.eye(len(transient)) - q, r)
    except np.linalg.LinAlgError:
        x = np.linalg.lstsq(np.eye(len(transient)) - q, r, rcond=None)[0]
    return float(x[0])
