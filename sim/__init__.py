"""The workload simulator: realistic omnichannel retail traffic for every input topic.

`Workload(seed=...).records(n)` yields `SimRecord`s in publish order, with the
disorder, duplicates and malformed payloads the contract says consumers must
survive, all counted. `sim.publish` sends them to Kafka or to JSONL files; it
is not imported here so that generating events needs no Kafka client.
"""

from sim.catalog import Catalog, Product
from sim.keys import key_for
from sim.malformed import KINDS as MALFORMED_KINDS
from sim.record import SimRecord
from sim.shoppers import Shopper
from sim.workload import DEFAULT_START_TS, Workload

__all__ = [
    "DEFAULT_START_TS",
    "MALFORMED_KINDS",
    "Catalog",
    "Product",
    "Shopper",
    "SimRecord",
    "Workload",
    "key_for",
]
