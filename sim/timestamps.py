"""Event timestamps as the contract spells them: the one formatter of `events.timestamps`.

Kept as a module so `from sim.timestamps import rfc3339_ms` goes on working; the
simulator and the flows format timestamps with the same code, so a time the
simulator writes is the time a flow writes back for it.
"""

from __future__ import annotations

from events.timestamps import MILLIS, SECOND_PREFIXES, rfc3339_ms, second_prefix

__all__ = ["MILLIS", "SECOND_PREFIXES", "rfc3339_ms", "second_prefix"]
