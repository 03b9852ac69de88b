"""The credit models against references: the `channelattribution` package, and plain formulas where it has none.

`channelattribution` (a test-only dependency) implements first touch, last touch, linear and the
Markov removal-effect model. Its Markov model simulates journeys and by default stops a simulated
journey after as many steps as the longest observed path; ours solves the chain exactly (no step
limit), so the package runs here with a step limit far above any path (200) and a million
simulations. Time decay and position-based are not in the package: `_reference_*` below
re-derive them from their definitions, sharing no code with `operators.attribution.models`.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Sequence

import ChannelAttribution as ca
import pandas as pd
import pytest

from operators.attribution.models import credit, markov_shares

CHANNELS = ("email", "search", "social", "display", "affiliate", "(direct)")
Paths = dict[tuple[str, ...], tuple[int, int, float]]


def journeys(seed: int, n: int = 4000, repeats: bool = True) -> Paths:
    """Paths with conversions, non-conversions and revenue; `search` lifts conversion (a planted effect)."""
    rng = random.Random(seed)
    paths: Paths = {}
    for _ in range(n):
        length = rng.randint(1, 6)
        path: list[str] = []
        while len(path) < length:
            channel = rng.choice(CHANNELS[:-1] if not path else CHANNELS)
            if repeats or not path or path[-1] != channel:
                path.append(channel)
        key = tuple(path)
        converted = rng.random() < 0.08 + 0.25 * ("search" in key) + 0.05 * len(key) / 6
        conv, nulls, value = paths.get(key, (0, 0, 0.0))
        paths[key] = (conv + converted, nulls + (not converted), value + converted * rng.uniform(5, 200))
    return paths


def frame(paths: Paths) -> pd.DataFrame:
    return pd.DataFrame([{"path": ">".join(p), "conv": c, "null": n, "value": v} for p, (c, n, v) in paths.items()])


def quiet(call: object, *args: object, **kwargs: object) -> object:
    with contextlib.redirect_stdout(io.StringIO()):
        return call(*args, **kwargs)  # type: ignore[operator]


def ours(paths: Paths, model: str) -> dict[str, float]:
    """Conversions credited per channel by summing per-path credit (as the flow does per conversion)."""
    totals: dict[str, float] = {}
    for path, (conv, _, _) in paths.items():
        for channel, share in credit(model, path, [0.0] * len(path), 1.0).items():
            totals[channel] = totals.get(channel, 0.0) + share * conv
    return totals


def close(actual: dict[str, float], expected: dict[str, float], rel: float = 0.01) -> list[str]:
    return [f"{c}: ours {actual.get(c)} vs reference {v}" for c, v in expected.items()
            if abs(actual.get(c, 0.0) - v) > rel * abs(v)]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_first_last_and_linear_agree_with_channelattribution(seed: int) -> None:
    paths = {p: v for p, v in journeys(seed).items() if "(direct)" not in p}  # last touch == last non-direct here
    reference = quiet(ca.heuristic_models, frame(paths), "path", "conv", flg_pro=False)
    by_channel = reference.set_index("channel_name")  # type: ignore[attr-defined]
    for ours_name, theirs in (("first_touch", "first_touch"), ("last_non_direct", "last_touch"),
                              ("linear", "linear_touch")):  # fmt: skip
        expected = {str(c): float(v) for c, v in by_channel[theirs].items()}
        assert not close(ours(paths, ours_name), expected), ours_name


@pytest.mark.parametrize(("seed", "repeats"), [(3, True), (4, False)])
def test_markov_removal_effects_agree_with_channelattribution_within_one_percent(seed: int, repeats: bool) -> None:
    paths = journeys(seed, repeats=repeats)
    result = quiet(ca.markov_model, frame(paths), "path", "conv", var_null="null", nsim_start=1e6, max_step=200,
                   conv_par=0.005, seed=7, verbose=False, flg_pro=False)  # fmt: skip
    total = float(result["total_conversions"].sum())  # type: ignore[index]
    expected = {str(row.channel_name): float(row.total_conversions) / total
                for row in result.itertuples()}  # type: ignore[attr-defined]  # fmt: skip
    shares = markov_shares((p, c, n) for p, (c, n, _) in paths.items())
    assert not close(shares, expected), (shares, expected)
    assert max(shares, key=lambda c: shares[c]) == "search"  # the planted channel leads


def _reference_time_decay(ages: Sequence[float], half_life: float) -> list[float]:
    raw = [2.0 ** (-a / half_life) for a in ages]
    return [w / sum(raw) for w in raw]


def _reference_position_based(n: int) -> list[float]:
    if n <= 2:
        return [1.0 / n] * n
    return [0.4 if i in (0, n - 1) else 0.2 / (n - 2) for i in range(n)]


def test_time_decay_and_position_based_follow_their_definitions() -> None:
    rng = random.Random(9)
    for _ in range(500):
        n = rng.randint(1, 7)
        path = [f"c{i}" for i in range(n)]  # distinct channels: per-touch weights are per-channel shares
        ages = sorted((rng.uniform(0, 30 * 86_400) for _ in range(n)), reverse=True)
        decay = credit("time_decay", path, ages, 7 * 86_400)
        assert [decay[c] for c in path] == pytest.approx(_reference_time_decay(ages, 7 * 86_400))
        position = credit("position_based", path, ages, 1.0)
        assert [position[c] for c in path] == pytest.approx(_reference_position_based(n))
