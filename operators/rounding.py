"""Python's `round(x, ndigits)` for many floats at once, with the very same results.

Documents with daily figures (a forecast names 84 of them) round each value for
JSON; Python's `round(x, 3)` is a correctly rounded decimal conversion, about a
quarter of a microsecond per value. Scaling, rounding to an integer and scaling
back in numpy gives the same double whenever the scaled value is not within
the multiplication's rounding error of a half: then the integer is the one
exact arithmetic gives, and the IEEE division returns the double nearest to
it over 10**ndigits, which is what `round` returns. The few values near a
half, and any too large for that bound, are rounded by `round` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_NEAR_HALF = 1e-6
"""Scaled values this close to a half go to `round`: far above the multiplication's error for |value| < 1e9."""
_LARGEST = 1e9


def round_all(values: Sequence[float], ndigits: int) -> list[float]:
    """`[round(v, ndigits) for v in values]`, equal float for float (signs of zero and NaNs included).

    >>> values = [2.675, 0.0005, 0.0015, 1.23456, -0.0004, 1e300]  # 2.675 is 2.67499999..., 0.0005 a hair above
    >>> round_all(values, 3)
    [2.675, 0.001, 0.002, 1.235, -0.0, 1e+300]
    >>> round_all(values, 3) == [round(v, 3) for v in values]
    True
    """
    scale = 10.0**ndigits
    with np.errstate(all="ignore"):  # infinities and NaNs: `round` takes them below
        scaled = np.asarray(values, dtype=np.float64) * scale
        whole = np.rint(scaled)
        # Not surely right: near a half (by distance to the nearest integer), too large, or not finite.
        doubtful = ~((np.abs(scaled - whole) < 0.5 - _NEAR_HALF) & (np.abs(scaled) < _LARGEST))
        out: list[float] = (whole / scale).tolist()
    if doubtful.any():
        for index in np.flatnonzero(doubtful).tolist():
            out[index] = round(values[index], ndigits)
    return out
