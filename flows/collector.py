"""The garbage-collection policy of a flow process: one place, so the rest of the flows read as plain Bytewax.

A tailing flow keeps many small long-lived objects (seen event ids, order
lines, till transactions, ledgers); CPython's default young-generation
threshold (700 allocations) makes the cycle collector rescan them constantly,
and each pass is a pause of the whole flow (docs/performance.md, "Garbage collection").
"""

from __future__ import annotations

import gc
from typing import Any

YOUNG_THRESHOLD = 100_000
"""Allocations between two young collections: a pass every ~100k objects instead of every 700."""
OLDER_THRESHOLDS = (50, 100)
"""Young passes per generation-1 pass, generation-1 passes per full pass (CPython's defaults are 10, 10)."""


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """After each young collection, move what survived it out of every later walk (`gc.freeze`)."""
    if phase == "stop" and info["generation"] == 0:
        gc.freeze()


def frozen_objects() -> int:
    """Objects frozen out of the walks so far (startup objects and every young collection's survivors).

    It follows the flow's long-lived tracked state; a steady climb while the state does not grow
    is what leaked cycles would look like (`omnistream_flow_gc_frozen_objects`, `flows.metrics`).
    """
    return gc.get_freeze_count()


def tune_for_tailing_flow() -> None:
    """Collect rarely, and walk each object at most once: in the first young collection after it was made.

    Call it once, after imports and before the dataflow is built. What exists then (modules, settings,
    clients) is frozen, and so is whatever outlives a young collection: a flow's state is long-lived, and
    an older generation's walk visited all of it to free nothing (one pass over a demand flow's 300,000
    events' state took ~1 s, a pause of the whole flow). Safe because nothing the flows keep per event
    forms reference cycles (per-event state is made of `gc=False` msgspec Structs and tuples:
    `tests/unit/test_collector_load.py`); garbage that forms a cycle is still freed when it dies young,
    which is how transient cycles die (an exception and its traceback). The price: a cycle still referenced
    at a young collection and dropped later is never freed. docs/performance.md, "Garbage collection".
    """
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    gc.freeze()
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)
