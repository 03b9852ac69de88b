"""`round_all` gives `round`'s very floats: the forecast documents' bytes depend on it."""

from __future__ import annotations

import math
import random
import struct

import pytest

from operators.rounding import round_all


def _values(seed: int) -> list[float]:
    """Ordinary figures, values at or a hair off a half of the last digit, tiny, huge and any bit pattern."""
    rng = random.Random(seed)
    values: list[float] = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e-300, 5e-324, 2.675, 0.0005, 1.0005]
    for _ in range(20_000):
        kind = rng.randrange(6)
        if kind == 0:
            values.append(rng.uniform(-10.0, 10.0))
        elif kind == 1:
            values.append(rng.randrange(-100_000, 100_000) / 1000 + rng.choice([0.0005, -0.0005, 0.0, 1e-12, -1e-12]))
        elif kind == 2:
            values.append(rng.uniform(0.0, 1e-3))
        elif kind == 3:
            values.append(rng.uniform(-1e10, 1e10))
        elif kind == 4:
            values.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
        else:
            values.append(rng.expovariate(1.0))
    return values


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))


@pytest.mark.parametrize("ndigits", [0, 1, 3, 6])
def test_every_value_rounds_to_what_round_gives(ndigits: int) -> None:
    values = _values(ndigits)
    got = round_all(values, ndigits)
    expected = [round(v, ndigits) for v in values]
    wrong = [(v, a, b) for v, a, b in zip(values, got, expected, strict=True) if not _same(a, b)]
    assert wrong == []
    assert len(got) == len(values)


def test_nothing_in_nothing_out() -> None:
    assert round_all([], 3) == []
