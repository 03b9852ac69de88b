"""The garbage-collection policy of a flow process: one place, so the rest of the flows read as plain Bytewax.

A tailing flow keeps many small long-lived objects (seen event ids, order
lines, till transactions, ledgers); CPython's default young-generation
threshold (700 allocations) makes the cycle collector rescan them constantly,
and each pass is a pause of the whole flow (docs/performance.md, "Garbage collection").
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000
"""Allocations between two young collections: a pass every ~100k objects instead of every 700."""
OLDER_THRESHOLDS = (50, 100)
"""Young passes per generation-1 pass, generation-1 passes per full pass (CPython's defaults are 10, 10)."""


def tune_for_tailing_flow() -> None:
    """Collect rarely and never walk what was built before the flow starts (modules, settings, clients).

    Call it once, after imports and before the dataflow is built. Safe because
    nothing the flows keep per event forms reference cycles (per-event state is
    made of `gc=False` msgspec Structs and tuples: `tests/unit/test_collector_load.py`),
    so a rarer collection frees the same objects, only later; the frozen
    startup objects are never freed anyway. docs/performance.md, "Garbage
    collection", gives what it buys.
    """
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    gc.freeze()
