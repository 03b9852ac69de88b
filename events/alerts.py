"""The alert record of CONTRACT.md ("Output streams": `omni.alerts`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How alerting rules route an alert: automation, on-call, incident."""

    WARNING = "warning"
    ATTENTION = "attention"
    EMERGENCY = "emergency"


class AlertStatus(StrEnum):
    """An alert opens once per entity and kind, and is followed by one `resolved` when the condition clears."""

    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Entity:
    """What an alert is about: `type` is e.g. `stock`, `card`, `store`."""

    type: str
    id: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as published to `omni.alerts` and the Redis stream of that name.

    `alert_id` is derived from what raised it, never random, so an alert
    re-emitted after a crash recovery is recognisably the same alert. `status`
    (additive to the contract's fields) tells an opening alert from the
    `resolved` one that closes it; stock alerts are only ever `open`.
    """

    alert_id: str
    kind: str
    severity: Severity
    entity: Entity
    reasons: list[str]
    ts: str
    source_event_ids: list[str] = field(default_factory=list)
    score: float | None = None
    status: AlertStatus = AlertStatus.OPEN
