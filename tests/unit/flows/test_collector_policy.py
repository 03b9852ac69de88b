"""The flow processes' collector policy: state that outlives a young collection is never walked again.

Run in a child process: the policy installs a `gc.callbacks` hook for the life of the process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_CHILD = """
import gc, weakref
from flows.collector import frozen_objects, tune_for_tailing_flow
from flows.metrics import GC_FROZEN
from prometheus_client import REGISTRY

class Node:
    pass

tune_for_tailing_flow()
frozen_at_start = gc.get_freeze_count()
kept = [Node() for _ in range(1_000)]  # long-lived state: tracked objects that survive
gc.collect(0)
after_young = gc.get_freeze_count()

dying = Node()
dying.self = dying  # a cycle that dies before the next young collection
probe = weakref.ref(dying)
del dying
gc.collect(0)
GC_FROZEN.labels("demo").set_function(frozen_objects)
scraped = REGISTRY.get_sample_value("omnistream_flow_gc_frozen_objects", {"flow": "demo"})
print(frozen_at_start, after_young, probe() is None, gc.get_count()[1], int(scraped) >= after_young)
"""


def test_what_survives_a_young_collection_is_frozen_and_a_young_cycle_is_still_freed() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, check=True)
    frozen_at_start, after_young, cycle_freed, middle_count, scraped_ok = done.stdout.split()
    assert int(after_young) >= int(frozen_at_start) + 1_000  # the kept objects left the walks
    assert cycle_freed == "True"
    assert middle_count == "0"  # nothing waits in the middle generation for a walk
    assert scraped_ok == "True"  # the flow metric reads the frozen count when scraped
