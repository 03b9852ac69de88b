"""The demand flow's output on a simulated shop log equals the one recorded before the reorders step was made lean.

`demand_golden.json` was written by `python -m tests.unit.flows.test_demand_golden` on the code before
that change (commit 1b272d1): every reorder record in full, a digest of the reorder documents, and one of every other
output (forecasts, rising items, dead letters). Any change to what the flow writes fails here; re-record only
for an intended change of behaviour, and say so in the commit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.suggestions import ReorderSuggestion
from flows.demand import build_flow
from flows.sinks import FlowRecord
from state import keys
from state.doc_writer import FencedDoc
from tests.unit.flows.demand_log import SETTINGS, simulated_log

GOLDEN = Path(__file__).with_name("demand_golden.json")


def outputs(batch_size: int) -> dict[str, Any]:
    """What the flow writes for the simulated log, read `batch_size` records at a time."""
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(simulated_log(), batch_size=batch_size), sink=TestingSink(out)))
    reorder_prefix = keys.reorder("", "").split("{")[0]
    records, docs, others = [], hashlib.sha256(), hashlib.sha256()
    n_docs = 0
    for item in out:
        if isinstance(item, ReorderSuggestion):
            records.append(msgspec.to_builtins(item))
        elif isinstance(item, FencedDoc) and item.key.startswith(reorder_prefix):
            docs.update(orjson.dumps([item.key, item.version, item.doc.decode(), item.flagged]))
            n_docs += 1
        else:
            others.update(msgspec.json.encode(msgspec.to_builtins(item)))
    return {"reorder_records": records, "reorder_docs": n_docs, "reorder_docs_digest": docs.hexdigest(),
            "other_outputs": others.hexdigest()}  # fmt: skip


def test_the_simulated_log_gives_the_recorded_reorders_and_forecasts() -> None:
    golden = orjson.loads(GOLDEN.read_bytes())
    for batch_size in (1, 50):
        got = outputs(batch_size)
        expected = golden[str(batch_size)]
        assert len(expected["reorder_records"]) > 20 and expected["reorder_docs"] > 50  # reorders exercised
        assert got["reorder_records"] == expected["reorder_records"]
        assert got["reorder_docs"] == expected["reorder_docs"]
        assert got["reorder_docs_digest"] == expected["reorder_docs_digest"]
        assert got["other_outputs"] == expected["other_outputs"]


if __name__ == "__main__":
    GOLDEN.write_bytes(orjson.dumps({str(size): outputs(size) for size in (1, 50)}, option=orjson.OPT_INDENT_2))
