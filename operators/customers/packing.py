"""A customer's state as the few bytes a shard holds between the batches that touch it.

A shard holds every customer it has seen, a million and more, and decodes one only while
a batch touches it (`operators.customers.shard`), so the bytes per customer at rest are
most of the flow's memory. Encoding `CustomerState` field by field costs ~175 bytes for a
customer with one purchase; most of that says what other fields already say:

- first purchase, newest purchase walked and the decayed sums' time are usually the last
  purchase's time: `None` stands for "the same as `last`";
- after one purchase (the most common customer) every window's decayed count and spend
  are `orders` and `spend`: the window count alone stands for them;
- the spend the VIP rule walked is usually `spend`; the RFM recency bucket is usually the
  last purchase's hour: stored as the difference;
- the country scope of the population histograms is usually the customer's country;
- the stage is its index, consent and VIP are bits of one small integer, a time or amount
  that is zero is MessagePack's one-byte integer, and the lists of open moments (carts,
  failed payments, views, ...) are one `None` while all are empty.

Nothing is rounded: `unpack(pack(state)) == state`, float for float (`tests/unit/customers`).
The document version is not stored: it is `applied + walks + changes` after every batch
(`CustomerShard.apply`).
"""

from __future__ import annotations

import msgspec

from operators.customers.lifecycle import STAGES
from operators.customers.profile import CustomerState

_STAGE_INDEX = {stage.value: i for i, stage in enumerate(STAGES)}
_STAGE_VALUES = tuple(stage.value for stage in STAGES)
_HOUR = 3600
_CONSENT_BITS = {None: 0, False: 2, True: 4}
_CONSENT_OF = {0: None, 2: False, 4: True}


class _Open(msgspec.Struct, array_like=True, gc=False):
    """The open moments of `CustomerState`, in its field order (all empty for most customers)."""

    ahead: list[tuple[float, float, str]]
    bought: list[tuple[str, float]]
    carts: list[tuple[str, float, str]]
    uncarts: list[tuple[str, float]]
    fails: list[tuple[str, float, str]]
    approved: list[tuple[str, float]]
    views: list[tuple[str, float, str]]


class _Packed(msgspec.Struct, array_like=True, gc=False):
    applied: int
    walks: int
    changes: int
    last: float
    first: float | None  # None: `last`
    walked: float | None  # None: `last`
    seen: float | None  # None: `last`
    stage: int  # index in `STAGES`
    stage_ts: float
    orders: int
    spend: float
    decay_ts: float | None  # None: `last`
    sums: list[float] | int  # the windows' counts then spends; an int n: n windows of (`orders`, `spend`)
    channels: list[int]
    stores: list[tuple[str, int]]
    country: str | None
    vip_spend: float | None  # None: `spend`
    won_back_at: float
    flags: int  # 1: vip; consent 0 unknown, 2 no, 4 yes
    buckets: tuple[int, int, int] | None  # recency as hours after `last`'s hour
    scope: str | int | None  # 0: the customer's country scope (None without a country)
    open: _Open | None  # None: nothing open


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Packed)


def _scope_of(country: str | None) -> str | None:
    return f"country:{country}" if country else None


def pack(state: CustomerState) -> bytes:
    """The bytes of `state` (see the module docstring).

    >>> state = CustomerState(version=3, applied=2, walks=1, first=1e9, last=1e9, walked=1e9, seen=1e9 + 0.5,
    ...                       stage="new", orders=1, spend=42.5, decay_ts=1e9, freq=[1.0, 1.0], money=[42.5, 42.5],
    ...                       vip_spend=42.5, country="DE", buckets=(277777, 1138, 1213), bucket_scope="country:DE")
    >>> len(pack(state)) < 75 and unpack(pack(state)) == state
    True
    """
    last, first, walked, seen, decay = state.last, state.first, state.walked, state.seen, state.decay_ts
    freq, money, orders, spend = state.freq, state.money, state.orders, state.spend
    n = len(freq)
    sums: list[float] | int = n if n and freq == [orders] * n and money == [spend] * n else freq + money
    buckets = state.buckets
    if buckets is not None:
        buckets = (buckets[0] - int(last // _HOUR), buckets[1], buckets[2])
    scope, country = state.bucket_scope, state.country
    if scope is None:
        stored_scope: str | int | None = 0 if country is None or not country else None
    else:
        stored_scope = 0 if country and scope == "country:" + country else scope
    vip_spend = state.vip_spend
    opened = None
    if state.ahead or state.bought or state.carts or state.uncarts or state.fails or state.approved or state.views:
        opened = _Open(state.ahead, state.bought, state.carts, state.uncarts, state.fails, state.approved, state.views)
    return _ENCODER.encode(
        _Packed(
            state.applied, state.walks, state.changes, last or 0,
            None if first == last else first or 0,
            None if walked == last else walked or 0,
            None if seen == last else seen or 0,
            _STAGE_INDEX[state.stage], state.stage_ts or 0, orders, spend or 0,
            None if decay == last else decay or 0,
            sums, state.channels, state.stores, country,
            None if vip_spend == spend else vip_spend or 0,
            state.won_back_at or 0, (1 if state.vip else 0) | _CONSENT_BITS[state.consent], buckets, stored_scope,
            opened,
        )
    )  # fmt: skip


def unpack(data: bytes) -> CustomerState:
    """The `CustomerState` that `pack` gave `data` for."""
    p = _DECODER.decode(data)
    last = p.last
    sums = p.sums
    if type(sums) is int:
        freq, money = [float(p.orders)] * sums, [p.spend] * sums
    else:
        half = len(sums) // 2  # type: ignore[arg-type]
        freq, money = sums[:half], sums[half:]  # type: ignore[index]
    buckets = p.buckets
    if buckets is not None:
        buckets = (buckets[0] + int(last // _HOUR), buckets[1], buckets[2])
    scope = p.scope
    state = CustomerState(
        p.applied + p.walks + p.changes, p.applied, p.walks, p.changes,
        last if p.first is None else p.first, last,
        last if p.walked is None else p.walked,
        last if p.seen is None else p.seen,
        _STAGE_VALUES[p.stage], p.stage_ts, p.orders, p.spend,
        last if p.decay_ts is None else p.decay_ts,
        freq, money, p.channels, p.stores, p.country,
        p.spend if p.vip_spend is None else p.vip_spend,
        p.won_back_at, bool(p.flags & 1), _CONSENT_OF[p.flags & 6], buckets,
        _scope_of(p.country) if scope == 0 else scope,  # type: ignore[arg-type]
    )  # fmt: skip
    opened = p.open
    if opened is not None:
        state.ahead, state.bought, state.carts = opened.ahead, opened.bought, opened.carts
        state.uncarts = opened.uncarts
        state.fails, state.approved, state.views = opened.fails, opened.approved, opened.views
    return state
