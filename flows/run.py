"""Runs one flow in this process: `python -m flows.run NAME [--process-id I --addresses A,B]`.

`flows.launcher` starts one of these per cluster process. Running Bytewax
through `cli_main` here (rather than `python -m bytewax.run`) lets epochs be
shorter than a second and reads every setting from `OMNISTREAM_*`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import uuid
from datetime import timedelta

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from flows.metrics import metrics_port, serve_metrics
from omnistream.settings import settings_or_exit

FLOWS: dict[str, str] = {"inventory": "flows.inventory", "recommend": "flows.recommend", "fraud": "flows.fraud"}
"""Every flow by name and module, in a fixed order: a flow's position sets its metrics ports (flows.metrics)."""
STATE_FORMATS: dict[str, int] = {"inventory": 2, "recommend": 2, "fraud": 1}
"""The layout of each flow's recovery snapshots. Bump it when a flow's keyed state changes
shape, so that recovery state written by an older release is refused with a clear message, not misread.
inventory 2: ledgers in shards of SKUs (`flows.inventory.LEDGER_SHARDS`), till journals in MessagePack."""
PROCESS_INDEX_ENV = "OMNISTREAM_FLOW_PROCESS_INDEX"
GENERATION_ENV = "OMNISTREAM_FLOW_GENERATION"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.run", description=__doc__)
    parser.add_argument("flow", choices=sorted(FLOWS))
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--addresses", default=None, help="comma-separated host:port of every process")
    parser.add_argument("--no-recovery", action="store_true")
    args = parser.parse_args()

    settings = settings_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    recovery = None
    if not args.no_recovery and settings.recovery_dir is not None:
        from flows.launcher import ensure_recovery, flow_recovery_dir  # the launcher imports this module

        directory = flow_recovery_dir(settings.recovery_dir, args.flow)
        generation = ensure_recovery(directory, settings.recovery_partitions, STATE_FORMATS[args.flow])
        recovery = RecoveryConfig(directory, timedelta(seconds=settings.backup_interval_s))
    else:
        generation = os.environ.get(GENERATION_ENV) or uuid.uuid4().hex[:12]
    # Flow state is many small long-lived objects (seen ids, order lines, till
    # transactions); CPython's default young-generation threshold (700) makes
    # the collector rescan them constantly. Nothing in the flows builds cycles.
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()
    flow = importlib.import_module(FLOWS[args.flow]).build_flow(settings, generation)
    serve_metrics(metrics_port(settings.flow_metrics_port, list(FLOWS).index(args.flow), args.process_id or 0))
    os.environ[PROCESS_INDEX_ENV] = str(args.process_id or 0)
    # Stopping is always safe to do abruptly: every write is flushed within its
    # batch and recovery resumes from the last snapshot. Exiting here avoids
    # the panic Bytewax shows when KeyboardInterrupt lands inside a callback.
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    cli_main(
        flow,
        workers_per_process=settings.workers,
        process_id=args.process_id,
        addresses=args.addresses.split(",") if args.addresses else None,
        epoch_interval=timedelta(seconds=settings.snapshot_interval_s),
        recovery_config=recovery,
    )


if __name__ == "__main__":
    main()
