"""A sink worker's heartbeat: its writes, dead letters, consumer lag and last epoch, told every second.

The sink updates the figures of its writes as it goes (`update`, a dict update per
batch); a thread of the heartbeat's own adds the worker's Kafka progress
(`flows.kafka_source.source_progress`: lag against the partitions' high watermarks,
the last epoch's close) and writes the whole document once a second
(`state.flow_health`), whether or not the flow wrote anything: a flow catching up on
a backlog, or one whose output is rare (merchandising suggestions), still shows its
lag falling, and an idle flow shows lag 0 and its epochs going on. The same figures
go to the flow's Prometheus gauges.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from flows.kafka_source import source_progress
from flows.metrics import CONSUMER_LAG, EPOCHS, LAST_SNAPSHOT
from state.flow_health import write_heartbeat

log = logging.getLogger(__name__)


class Heartbeat:
    """Writes one sink worker's health document every `interval_s` from a daemon thread, and once more on `close`.

    Build it on the worker's thread (the sink's `build` runs there): that thread is how it
    finds the worker's Kafka partitions. Writing never fails the flow: an error is logged.
    """

    def __init__(self, client: redis.Redis, flow: str, worker: int, interval_s: float = 1.0) -> None:
        self._client = client
        self._flow = flow
        self._worker = worker
        self._worker_thread = threading.get_ident()
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._fields: dict[str, Any] = {"last_write_at": None, "event_lag_s": None, "records": 0, "dead_letters": {}}
        self._topics: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{flow}-{worker}", daemon=True)
        self._thread.start()

    def update(self, **fields: Any) -> None:
        """Figures of the sink's latest write (`last_write_at`, `event_lag_s`, `records`, `dead_letters`)."""
        with self._lock:
            self._fields.update(fields)

    def doc(self) -> dict[str, Any]:
        """The document the next beat writes: the sink's figures, the worker's Kafka progress, the beat's time."""
        with self._lock:
            doc = dict(self._fields)
        progress = source_progress(self._worker_thread)
        doc["consumer_lag"] = None if progress is None else progress.lag
        doc["consumer_lag_by_topic"] = {} if progress is None else progress.lag_by_topic
        doc["last_epoch_at"] = None if progress is None else progress.last_snapshot_at
        doc["epochs"] = 0 if progress is None else progress.epochs
        doc["beat_at"] = time.time()
        return doc

    def beat(self) -> None:
        """Write the document now, and set the gauges."""
        doc = self.doc()
        for topic, lag in doc["consumer_lag_by_topic"].items():
            CONSUMER_LAG.labels(self._flow, str(self._worker), topic).set(lag)
            self._topics.add(topic)
        if doc["last_epoch_at"] is not None:
            LAST_SNAPSHOT.labels(self._flow, str(self._worker)).set(doc["last_epoch_at"])
        EPOCHS.labels(self._flow, str(self._worker)).set(doc["epochs"])
        try:
            write_heartbeat(self._client, self._flow, self._worker, doc)
        except Exception as ex:  # health reporting must never stop the flow
            log.warning("flow %s: heartbeat not written (%s)", self._flow, type(ex).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()

    def close(self) -> None:
        """Stop the thread and write the last figures (the flow's final lag, usually 0)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.beat()
