"""The dead-letter record of CONTRACT.md ("Output streams": `omni.dlq`)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from events.reasons import Reason, reason_of
from events.timestamps import rfc3339_ms

RAW_KEPT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input event that broke the contract, with the reason and where it came from.

    `dlq_id` names the source position (`topic/partition/offset`), so a record
    re-emitted after a crash recovery is recognisably the same record: the
    Redis stream writer adds each id once, and Kafka consumers can drop repeats.
    `raw` keeps the first 4 KiB, base64-encoded when not UTF-8 (`raw_encoding`).
    """

    dlq_id: str
    source_topic: str
    partition: int
    offset: int
    error: str
    raw: str
    raw_encoding: str
    ts: str

    @classmethod
    def of(cls, source_topic: str, partition: int, offset: int, error: str, raw: bytes | None) -> DeadLetter:
        """Build the record for `raw`, read at (`source_topic`, `partition`, `offset`)."""
        kept = (raw or b"")[:RAW_KEPT_BYTES]
        try:
            text, encoding = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as ex:
            if ex.start >= len(kept) - 3 and len(raw or b"") > RAW_KEPT_BYTES:
                # UTF-8 text whose 4 KiB cut split a character: keep it as text, cut at the boundary.
                text, encoding = kept[: ex.start].decode("utf-8"), "utf-8"
            else:
                text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
        return cls(
            dlq_id=f"{source_topic}/{partition}/{offset}",
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            error=error,
            raw=text,
            raw_encoding=encoding,
            ts=rfc3339_ms(time.time()),
        )

    @property
    def reason(self) -> Reason:
        """The class of failure (`missing_field`, `not_json`, ...): a low-cardinality label for metrics.

        `error` keeps the full message; `events.reasons` lists the codes.
        """
        return reason_of(self.error)
