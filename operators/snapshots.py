"""Reading state pickled by earlier releases, so that an upgrade resumes from its recovery snapshots."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


def with_ordered_dicts(state: dict[str, Any], *names: str) -> dict[str, Any]:
    """`state` (an object's pickled `__dict__`) with the attributes `names` as OrderedDicts.

    Several bounded containers moved from plain dicts to OrderedDicts (for
    `move_to_end` and `popitem(last=False)`); snapshots from before hold plain
    dicts in the same order, least recent first, which converts as it is.

    >>> state = with_ordered_dicts({"_open": {"a": 1, "b": 2}, "n": 3}, "_open")
    >>> type(state["_open"]).__name__, list(state["_open"]), state["n"]
    ('OrderedDict', ['a', 'b'], 3)
    """
    for name in names:
        if not isinstance(state[name], OrderedDict):
            state[name] = OrderedDict(state[name])
    return state
