"""A/B variants of the recommender, stable assignment, and the join of served answers with what followed."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from events.rec_served import RecServed, decode_served
from operators.recs.interactions import Interaction, InteractionKind

SOURCES = (
    "revisit",
    "similar",
    "covisit",
    "session_category",
    "profile_category",
    "trending_location",
    "trending_channel",
    "trending_global",
)
"""The candidate sources of `blend.recommend`; each is also a ranker feature (its normalised score)."""

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "revisit": 8.0,
    "similar": 3.0,
    "covisit": 1.0,
    "session_category": 0.6,
    "profile_category": 0.3,
    "trending_location": 0.15,
    "trending_channel": 0.05,
    "trending_global": 0.1,
}

_CART, _PURCHASE = InteractionKind.CART, InteractionKind.PURCHASE


@dataclass(frozen=True)
class Variant:
    """One arm of the recommendation experiment.

    `share` is its relative traffic; `weights` blend the candidate sources
    (missing sources weigh 0); `use_ranker` re-ranks with the learned
    `RankerWeights` when the API has them; `category_cap` limits SKUs per
    category in one answer (None: no cap).
    """

    name: str
    share: float = 1.0
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    use_ranker: bool = False
    category_cap: int | None = None


DEFAULT_VARIANTS = (Variant("blend", 0.5), Variant("ranked", 0.5, use_ranker=True))


def parse_variants(config: str | Mapping[str, Mapping[str, Any]]) -> tuple[Variant, ...]:
    """Variants from a compact string or a dict; raises ValueError on a bad config (checked at start).

    The string form is `name:share[:option=value,...]` joined by `;`, options
    being `ranker` (0/1), `cap` (int, 0 for none) and any source name (its
    weight, overriding the default). The dict form maps names to
    `{"share", "use_ranker", "category_cap", "weights"}`.

    >>> [(v.name, v.share, v.use_ranker, v.category_cap, v.weights["covisit"])
    ...  for v in parse_variants("blend:1;ranked:1:ranker=1,cap=4,covisit=2")]
    [('blend', 1.0, False, None, 1.0), ('ranked', 1.0, True, 4, 2.0)]
    >>> parse_variants({"solo": {"share": 1, "weights": {"covisit": 1}}})[0].weights["trending_global"]
    0.0
    """
    variants: list[Variant] = []
    if isinstance(config, str):
        for part in filter(None, (p.strip() for p in config.split(";"))):
            name, _, rest = part.partition(":")
            share_text, _, options_text = rest.partition(":")
            options: dict[str, str] = {}
            for option in filter(None, (o.strip() for o in options_text.split(","))):
                key, sep, value = option.partition("=")
                if not sep:
                    raise ValueError(f"variant {name!r}: option {option!r} is not key=value")
                options[key.strip()] = value.strip()
            weights = dict(DEFAULT_WEIGHTS)
            for source in SOURCES:
                if source in options:
                    weights[source] = _number(name, source, options.pop(source))
            ranker = options.pop("ranker", "0") not in ("0", "false", "")
            cap = int(_number(name, "cap", options.pop("cap", "0")))
            if options:
                raise ValueError(f"variant {name!r}: unknown options {sorted(options)}")
            share = _number(name, "share", share_text or "1")
            variants.append(Variant(name.strip(), share, weights, ranker, cap or None))
    else:
        for name, spec in config.items():
            unknown = set(spec.get("weights", {})) - set(SOURCES)
            if unknown:
                raise ValueError(f"variant {name!r}: unknown sources {sorted(unknown)}")
            weights = dict.fromkeys(SOURCES, 0.0) | {k: float(v) for k, v in spec.get("weights", {}).items()}
            if "weights" not in spec:
                weights = dict(DEFAULT_WEIGHTS)
            cap_spec = spec.get("category_cap")
            share, use_ranker = float(spec.get("share", 1.0)), bool(spec.get("use_ranker", False))
            variants.append(Variant(name, share, weights, use_ranker, int(cap_spec) if cap_spec else None))
    if not variants:
        raise ValueError("no variants configured")
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"variant names must be unique and non-empty: {names}")
    if any(v.share < 0 for v in variants) or sum(v.share for v in variants) <= 0:
        raise ValueError("variant shares must be >= 0 and sum to more than 0")
    return tuple(variants)


def _number(variant: str, option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"variant {variant!r}: {option}={text!r} is not a number") from None


def assign_variant(actor: str, variants: Sequence[Variant], salt: str = "") -> Variant:
    """The variant `actor` sees: stable across processes and restarts, split by `share`.

    blake2b, not Python's `hash()`, which is salted per process: every API
    replica must give a shopper the same arm. Change `salt` to reshuffle
    shoppers for a new experiment.

    >>> variants = parse_variants("a:1;b:1")
    >>> assign_variant("u:U-1", variants).name == assign_variant("u:U-1", variants).name
    True
    >>> sum(assign_variant(f"u:{i}", variants).name == "a" for i in range(10_000)) // 100
    50
    """
    digest = hashlib.blake2b((salt + "\x1f" + actor).encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2.0**64 * sum(v.share for v in variants)
    for variant in variants:
        point -= variant.share
        if point < 0:
            return variant
    return variants[-1]


class ServedRecord(NamedTuple):
    """One answer the API served, as published on the feedback topic.

    `items` are (sku, features) in served order; `actor` is `actor_key` of
    the request (the key the flow joins feedback on).
    """

    request_id: str
    variant: str
    actor: str
    ts: float
    items: tuple[tuple[str, dict[str, float]], ...]

    @classmethod
    def of(cls, served: RecServed) -> ServedRecord:
        """The join's view of a record of the served-recommendations log.

        >>> from events.rec_served import ServedItem
        >>> record = RecServed(request_id="r1", variant="blend", actor="u:U-1", ts=5.0,
        ...                    items=[ServedItem("SKU-1", {"covisit": 1.0})])
        >>> ServedRecord.of(record)
        ServedRecord(request_id='r1', variant='blend', actor='u:U-1', ts=5.0, items=(('SKU-1', {'covisit': 1.0}),))
        """
        items = tuple((item.sku, item.features) for item in served.items)
        return cls(served.request_id, served.variant, served.actor, served.ts, items)


def served_records(
    raw: bytes | None, latest_s: float = math.inf
) -> tuple[list[ServedRecord], tuple[str, bytes | None] | None]:
    """The answers of one `rec_served` message (`events.rec_served`), and (reason, bytes) of what is not an answer.

    An answer dated after `latest_s` (epoch seconds) is not an answer either (`decode_served`).

    >>> good = b'{"request_id": "r1", "variant": "blend", "actor": "u:U-1", "ts": 5.0, "items": []}'
    >>> answers, rejected = served_records(b"[" + good + b", 7]")
    >>> [a.request_id for a in answers], rejected
    (['r1'], ('1 of 2 elements of the batch are not served-recommendation records', b'[7]'))
    """
    records, rejected = decode_served(raw, latest_s)
    return [ServedRecord.of(record) for record in records], rejected


class TallyIncrement(NamedTuple):
    """Add `n` to counter `counter` (requests, impressions, clicks, carts, conversions) of `variant`."""

    variant: str
    counter: str
    n: int
    ts: float


class LabelledExample(NamedTuple):
    """One served SKU and whether the shopper engaged with it: a training example for `RecRanker`."""

    request_id: str
    variant: str
    sku: str
    features: dict[str, float]
    clicked: bool
    ts: float


Feedback = TallyIncrement | LabelledExample


class _Open:
    __slots__ = ("carted", "clicked", "items", "record", "ts")

    def __init__(self, record: ServedRecord) -> None:
        self.record = record
        self.ts = record.ts
        self.items = dict(record.items)
        self.clicked: set[str] = set()
        self.carted: set[str] = set()

    def __getstate__(self) -> tuple[ServedRecord, set[str], set[str]]:
        return self.record, self.clicked, self.carted

    def __setstate__(self, state: tuple[ServedRecord, set[str], set[str]]) -> None:
        record, self.clicked, self.carted = state
        self.record, self.ts, self.items = record, record.ts, dict(record.items)


class FeedbackJoin:
    """Joins the answers served to one actor with what the actor did next.

    Keyed by actor (not by request) so that carts and purchases, which carry
    no `rec_request_id`, can still be attributed: a product view carrying a
    `rec_request_id` of a held answer is a click on it; a cart or purchase of
    a SKU an open answer showed (newest answer first) counts once as a cart
    or a conversion. Each answer stays open `window_s` of event time after it
    was served; when it closes, every served SKU becomes a `LabelledExample`
    (engaged = clicked, carted or bought). Every effect is marked per
    (request, sku), so a redelivered event changes nothing. A click that
    arrives before its served record is held (up to `max_requests`) and
    applied when the record comes.

    Returns `TallyIncrement`s as they happen and examples as answers close.

    Parameters
    ----------
    window_s
        Event-time seconds after serving that feedback counts.
    max_requests
        Open answers (and early clicks) held; the oldest closes first.

    Examples
    --------
    >>> from operators.recs.interactions import InteractionKind as K
    >>> join = FeedbackJoin(window_s=600.0)
    >>> served = ServedRecord("r1", "blend", "u:U-1", 0.0, (("SKU-1", {"covisit": 1.0}), ("SKU-2", {})))
    >>> [(t.counter, t.n) for t in join.apply_served(served)]
    [('requests', 1), ('impressions', 2)]
    >>> click = Interaction("e1", 10.0, "u:U-1", "s:S-1", "SKU-1", K.VIEW, "web", rec_request_id="r1")
    >>> [(t.counter, t.n) for t in join.apply(click)], join.apply(click)
    ([('clicks', 1)], [])
    >>> [(t.counter, t.n) for t in join.apply(click._replace(event_id="e2", kind=K.CART, rec_request_id=None))]
    [('carts', 1)]
    >>> [(x.sku, x.clicked) for x in join.apply(click._replace(event_id="e3", ts=900.0, rec_request_id=None))]
    [('SKU-1', True), ('SKU-2', False)]
    """

    def __init__(self, window_s: float = 1_800.0, max_requests: int = 32) -> None:
        self.window_s = window_s
        self.max_requests = max_requests
        # Plain dicts, though both close from the front: they hold at most `max_requests` (+1), so the dummy
        # slots front deletes leave stay few and go at the next resize. An OrderedDict would take two to
        # three times the bytes, and the recommend flow keeps a join per shopper (`rec_shards.Shopper`).
        self._open: dict[str, _Open] = {}  # request_id -> answer, in serving (arrival) order
        self._early_clicks: dict[str, tuple[float, set[str]]] = {}  # request_id -> (ts, skus)
        self._newest = float("-inf")

    def apply_served(self, record: ServedRecord) -> list[Feedback]:
        """Open a served answer; returns its tally increments (and any closed answers' examples)."""
        if record.request_id in self._open:
            return []  # a redelivered record
        out: list[Feedback] = [
            TallyIncrement(record.variant, "requests", 1, record.ts),
            TallyIncrement(record.variant, "impressions", len(record.items), record.ts),
        ]
        answer = self._open[record.request_id] = _Open(record)
        early = self._early_clicks.pop(record.request_id, None)
        if early is not None:
            for sku in early[1]:
                out += self._click(answer, sku, early[0])
        out += self._advance(record.ts)
        return out

    def apply(self, interaction: Interaction) -> list[Feedback]:
        """Attribute one interaction of this actor; returns tally increments and closed answers' examples."""
        out: list[Feedback] = []
        request_id, sku, ts = interaction.rec_request_id, interaction.sku, interaction.ts
        if request_id:
            answer = self._open.get(request_id)
            if answer is not None:
                out += self._click(answer, sku, ts)
            elif ts >= self._newest - self.window_s:
                held = self._early_clicks.setdefault(request_id, (ts, set()))
                held[1].add(sku)
        kind = interaction.kind
        if kind in (_CART, _PURCHASE):
            counter = "carts" if kind == _CART else "conversions"
            marker = sku if kind == _CART else "\x1f" + sku  # a cart and a purchase of a SKU both count
            for answer in reversed(self._open.values()):
                if sku in answer.items and ts - answer.ts <= self.window_s and ts >= answer.ts:
                    if marker not in answer.carted:
                        answer.carted.add(marker)
                        out.append(TallyIncrement(answer.record.variant, counter, 1, ts))
                    break
        out += self._advance(ts)
        return out

    def _click(self, answer: _Open, sku: str, ts: float) -> list[Feedback]:
        if sku not in answer.items or sku in answer.clicked or ts - answer.ts > self.window_s:
            return []
        answer.clicked.add(sku)
        return [TallyIncrement(answer.record.variant, "clicks", 1, ts)]

    def _advance(self, ts: float) -> list[Feedback]:
        if ts > self._newest:
            self._newest = ts
        horizon = self._newest - self.window_s
        out: list[Feedback] = []
        while self._open:
            request_id, answer = next(iter(self._open.items()))
            if answer.ts >= horizon and len(self._open) <= self.max_requests:
                break
            del self._open[request_id]
            out += _examples(answer)
        if self._early_clicks:
            for request_id, (held_ts, _) in list(self._early_clicks.items()):
                if held_ts < horizon:
                    del self._early_clicks[request_id]
            while len(self._early_clicks) > self.max_requests:
                del self._early_clicks[next(iter(self._early_clicks))]
        return out

    def close_all(self) -> list[Feedback]:
        """Close every open answer now (end of a bounded run); returns their examples."""
        out: list[Feedback] = []
        for answer in self._open.values():
            out += _examples(answer)
        self._open.clear()
        return out

    def __len__(self) -> int:
        return len(self._open)


def _examples(answer: _Open) -> list[Feedback]:
    record, engaged = answer.record, answer.clicked | {m.lstrip("\x1f") for m in answer.carted}
    return [
        LabelledExample(record.request_id, record.variant, sku, features, sku in engaged, record.ts)
        for sku, features in record.items
    ]


class ExperimentTally:
    """Counters of one variant and the rates derived from them.

    Examples
    --------
    >>> tally = ExperimentTally("blend")
    >>> tally.update(TallyIncrement("blend", "impressions", 10, 0.0))
    >>> tally.update(TallyIncrement("blend", "clicks", 2, 1.0))
    >>> tally.get()["ctr"]
    0.2
    """

    COUNTERS = ("requests", "impressions", "clicks", "carts", "conversions")

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.counts: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.as_of = float("-inf")

    def update(self, increment: TallyIncrement) -> None:
        if increment.counter in self.counts:
            self.counts[increment.counter] += increment.n
            self.as_of = max(self.as_of, increment.ts)

    def get(self) -> dict[str, Any]:
        counts = self.counts
        impressions, requests = counts["impressions"], counts["requests"]
        return {
            "variant": self.variant,
            **counts,
            "ctr": counts["clicks"] / impressions if impressions else 0.0,
            "cart_rate": counts["carts"] / impressions if impressions else 0.0,
            "conversion_rate": counts["conversions"] / impressions if impressions else 0.0,
            "clicks_per_request": counts["clicks"] / requests if requests else 0.0,
            "as_of": self.as_of,
        }
