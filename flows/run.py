"""Runs one flow in this process: `python -m flows.run NAME [--process-id I --addresses A,B]`.

Without `--process-id`, a process with `OMNISTREAM_CLUSTER_ADDRESS_TEMPLATE` set is one member of a
cluster spread over hosts and finds its id and peers itself (`flows.cluster_member`).

`flows.launcher` starts one of these per cluster process. Running Bytewax
through `cli_main` here (rather than `python -m bytewax.run`) lets epochs be
shorter than a second and reads every setting from `OMNISTREAM_*`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import uuid
from datetime import timedelta

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from flows.cluster_member import agree_on_resume_epoch, ensure_member_recovery, member
from flows.collector import frozen_objects, tune_for_tailing_flow
from flows.launcher import ensure_recovery, flow_recovery_dir
from flows.metrics import GC_FROZEN, metrics_port, serve_metrics
from flows.registry import FLOWS, GENERATION_ENV, STATE_FORMATS, flow_ordinal
from omnistream.settings import settings_or_exit


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.run", description=__doc__)
    parser.add_argument("flow", choices=sorted(FLOWS))
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--addresses", default=None, help="comma-separated host:port of every process")
    parser.add_argument("--no-recovery", action="store_true")
    args = parser.parse_args()

    settings = settings_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A member of a cluster spread over hosts (a StatefulSet pod) finds its id and peers itself.
    me = member(settings) if args.process_id is None else None
    if me is not None:
        args.process_id, args.addresses = me.process_id, ",".join(me.addresses)
    recovery = None
    if not args.no_recovery and settings.recovery.dir is not None:
        directory = flow_recovery_dir(settings.recovery.dir, args.flow)
        if me is not None:
            generation = ensure_member_recovery(directory, settings, me, STATE_FORMATS[args.flow])
            agree_on_resume_epoch(directory, settings, me, args.flow, generation)
        else:
            generation = ensure_recovery(directory, settings.recovery.partitions, STATE_FORMATS[args.flow])
        recovery = RecoveryConfig(directory, timedelta(seconds=settings.backup_interval_s))
    else:
        generation = os.environ.get(GENERATION_ENV) or settings.cluster.generation or uuid.uuid4().hex[:12]
    tune_for_tailing_flow()
    GC_FROZEN.labels(args.flow).set_function(frozen_objects)  # read at each scrape, nothing per event
    flow = importlib.import_module(FLOWS[args.flow]).build_flow(settings, generation)
    # A spread cluster's member has a host (a pod) of its own: every member serves on the port of process 0,
    # the one its pod template's scrape annotation names.
    index = 0 if me is not None else (args.process_id or 0)
    serve_metrics(metrics_port(settings.flow.metrics_port, flow_ordinal(args.flow), index))
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
