"""The omnichannel workload: every input topic's traffic, in publish order, for one seed.

The stream opens with the catalog and opening stock, then interleaves web
sessions, till transactions, stock-room events, price changes and fraud, with the faults the
contract says consumers must survive: out-of-order arrival, duplicates
(byte-identical re-deliveries) and malformed payloads. Every fault is counted,
so a test can compare what the flow dropped or dead-lettered with what was sent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from heapq import heappop
from itertools import accumulate, islice

from events.topics import INPUT_TOPICS, Topic
from sim.catalog import Catalog
from sim.demand_history import DemandHistory
from sim.fraud import FraudCase, FraudDesk
from sim.incidents import IncidentPlan, IncidentWindow
from sim.journeys import CustomerJourneys
from sim.keys import key_for
from sim.loyalty import Campaigns, Members
from sim.malformed import KINDS, corrupt
from sim.merchandising import Merchandising
from sim.record import SimRecord
from sim.run import Run
from sim.shoppers import Shopper, make_shoppers
from sim.stockroom import Stockroom
from sim.tills import Tills
from sim.weather import WeatherDesk
from sim.web import WebShop

DEFAULT_START_TS = 1795305600.0
"""2026-11-22T00:00:00Z: a fixed default, so the same seed gives the same bytes on any day."""

_EVENTS_PER_ACTIVITY = 3.5
"""Mean events one activity publishes (a session is ~7, a till sale ~1): converts events/s into activities/s."""
_ORDERS_PER_ACTIVITY = 0.1
_ORDERS_PER_FRAUD_BURST = 4.5


class Workload:
    """A deterministic stream of retail events with the disorder and faults of production.

    The same parameters always yield the same records, byte for byte, so a
    benchmark or a failing test can be replayed exactly. `records(n)` is a
    prefix of `records(m)` for `n < m`.

    Cost: roughly 12-20 us of CPU per record (50-80k records/s on one core of a
    busy 2-core machine), so benchmarks are not simulator-bound. The opening is
    one `product_upsert` per SKU plus one receipt per SKU per warehouse and per
    store-carried SKU per store: ~40k records with the defaults.

    Parameters
    ----------
    seed
        Seed of the catalog, the shoppers and every choice in the stream.
    n_skus
        Catalog size.
    n_stores
        Stores (`STORE-01` ...).
    n_warehouses
        Warehouses (`WH-01` ...).
    n_users
        Registered shoppers (`U-000001` ...).
    start_ts
        Event time (epoch seconds) of the first event.
    events_per_s
        Roughly how many events per second of *event time* the stream holds;
        this sets the `ts` spacing, not the publishing rate.
    duplicate_rate
        Share of records delivered a second time, byte-identical, up to 30 s later.
    malformed_rate
        Share of valid records followed by a contract-breaking variant of themselves.
    late_count_rate
        Share of cycle counts published after a movement they predate.
    early_order_rate
        Share of online orders whose fulfilment or cancel is published before the purchase.
    void_rate
        Share of till sales voided.
    early_void_rate
        Share of voids published before their sale.
    fraud_rate
        Roughly the share of online orders and card sales made with stolen cards.
    currency
        ISO 4217 code of every price.
    takeover_rate
        Account takeovers per activity (a known shopper's account used from a new device and
        country for big orders). The scenario rates below are 0 by default: with all of them
        off, the stream is byte for byte what it always was.
    refund_abuse_rate
        Refund-abuse sprees per activity (one cashier, many returns without receipt).
    manual_fraud_rate
        High-value manual-entry sales with stolen cards per activity.
    legit_manual_rate
        Share of honest card sales at the till keyed in by hand (chip not read).
    loyalty_scan_miss_rate
        Share of registered shoppers' till sales without their loyalty id (own card, no `customer_id`).
    amount_outlier_rate, compromised_terminal_rate, compromised_card_rate
        The card-fraud benchmark's three scenarios, per activity: a shopper's card paying an
        amount far above any habit; a register skimmed (all its card sales fraud for
        `terminal_compromise_s`, 28 days); a card compromised (a third of its till sales for
        `card_compromise_s`, 14 days, are a fraudster's, at 5 times the basket). Labelled late
        like every fraud (`sim.fraud.FraudDesk`).
    incidents
        Inject the operational incidents of `sim.incidents.IncidentPlan` (dark store, silent
        register, shrink spike, dead-letter burst), the first `incident_start_s` into the stream.
    incident_start_s
        Event-time seconds after the start at which the incidents begin.
    customer_journey_rate
        Cross-channel customer journeys per activity (`sim.journeys`: carts bought in store or
        left, declined payments recovered or not, shoppers who lapse and come back).
    consent_rate
        Marketing-consent changes per activity.
    campaign_rate
        Share of web sessions arriving from a campaign (UTM tags) or a referral (`sim.loyalty.Campaigns`).
    campaign_lift
        How much more often sessions of the planted campaign (`sim.loyalty.PLANTED_CAMPAIGN`) buy.
    hold_share
        Share of stock-room activities that are a checkout hold (`reservation`). Holds are
        decided in arrival order, not as a function of the event set: runs that compare two
        independent runs' stock (recovery, scale-out) set it to 0.
    demand_history_days
        Days of store sales before `start_ts` published after the opening (`sim.demand_history`: weekly and
        yearly seasonality, holidays, a few SKUs that take off), so the demand flow has closed days to
        forecast from at once. 0 (the default) leaves the stream byte for byte as it was.

    Examples
    --------
    >>> workload = Workload(seed=1, n_skus=50, n_stores=2, n_warehouses=1, n_users=100)
    >>> records = list(workload.records(2000))
    >>> records[0].topic, records[0].key
    (<Topic.CATALOG: 'catalog'>, b'SKU-00001')
    >>> sum(r.malformed for r in records) == sum(workload.malformed_count.values())
    True
    """

    def __init__(
        self,
        seed: int = 7,
        n_skus: int = 5000,
        n_stores: int = 20,
        n_warehouses: int = 3,
        n_users: int = 10_000,
        start_ts: float = DEFAULT_START_TS,
        events_per_s: float = 100.0,
        duplicate_rate: float = 0.01,
        malformed_rate: float = 0.005,
        late_count_rate: float = 0.2,
        early_order_rate: float = 0.05,
        void_rate: float = 0.02,
        early_void_rate: float = 0.3,
        fraud_rate: float = 0.02,
        currency: str = "USD",
        takeover_rate: float = 0.0,
        refund_abuse_rate: float = 0.0,
        manual_fraud_rate: float = 0.0,
        legit_manual_rate: float = 0.0,
        loyalty_scan_miss_rate: float = 0.0,
        amount_outlier_rate: float = 0.0,
        compromised_terminal_rate: float = 0.0,
        compromised_card_rate: float = 0.0,
        terminal_compromise_s: float = 28 * 86_400.0,
        card_compromise_s: float = 14 * 86_400.0,
        incidents: bool = False,
        incident_start_s: float = 1800.0,
        customer_journey_rate: float = 0.0,
        consent_rate: float = 0.0,
        campaign_rate: float = 0.45,
        campaign_lift: float = 0.6,
        hold_share: float = 0.05,
        demand_history_days: int = 0,
    ) -> None:
        if events_per_s <= 0:
            raise ValueError(f"events_per_s must be positive, got {events_per_s}")
        self.seed = seed
        self.n_skus = n_skus
        self.n_stores = n_stores
        self.n_warehouses = n_warehouses
        self.n_users = n_users
        self.start_ts = start_ts
        self.events_per_s = events_per_s
        self.duplicate_rate = duplicate_rate
        self.malformed_rate = malformed_rate
        self.late_count_rate = late_count_rate
        self.early_order_rate = early_order_rate
        self.void_rate = void_rate
        self.early_void_rate = early_void_rate
        self.fraud_rate = fraud_rate
        self.currency = currency
        self.takeover_rate = takeover_rate
        self.refund_abuse_rate = refund_abuse_rate
        self.manual_fraud_rate = manual_fraud_rate
        self.legit_manual_rate = legit_manual_rate
        self.loyalty_scan_miss_rate = loyalty_scan_miss_rate
        self.amount_outlier_rate = amount_outlier_rate
        self.compromised_terminal_rate = compromised_terminal_rate
        self.compromised_card_rate = compromised_card_rate
        self.terminal_compromise_s = terminal_compromise_s
        self.card_compromise_s = card_compromise_s
        self.incidents = incidents
        self.hold_share = hold_share
        self.incident_start_s = incident_start_s
        self.customer_journey_rate = customer_journey_rate
        self.consent_rate = consent_rate
        self.campaign_rate = campaign_rate
        self.campaign_lift = campaign_lift
        self.demand_history_days = demand_history_days

        self.catalog = Catalog(seed=seed, n_skus=n_skus, n_stores=n_stores, n_warehouses=n_warehouses)
        self.shoppers: list[Shopper] = make_shoppers(seed, n_users, self.catalog)
        self._reset_counts()

    def records(self, limit: int | None = None) -> Iterator[SimRecord]:
        """The stream in publish order: endless, or its first `limit` records.

        Each call starts the stream afresh and resets the counters below (so
        consume one stream at a time), which then describe exactly the records
        yielded so far:
        `published`, `malformed_count`, `duplicate_count` (per topic),
        `malformed_kinds` (per kind of break) and the ground truth: `fraud_ids`,
        `fraud_by_scenario` (scenario -> payment ids), `fraud_cases` (one per incident,
        with the entity to alert on and the time of its first fraudulent event) and
        `incident_windows` (operational incidents, when `incidents` is on). Cases and
        windows are known from the start of the stream; ids appear as they are generated.
        """
        stream = self._stream()
        return stream if limit is None else islice(stream, limit)

    def _reset_counts(self) -> None:
        self.published: dict[Topic, int] = dict.fromkeys(INPUT_TOPICS, 0)
        self.malformed_count: dict[Topic, int] = dict.fromkeys(INPUT_TOPICS, 0)
        self.duplicate_count: dict[Topic, int] = dict.fromkeys(INPUT_TOPICS, 0)
        self.malformed_kinds: dict[str, int] = {}
        self.fraud_ids: set[str] = set()
        self.fraud_by_scenario: dict[str, set[str]] = {}
        self.fraud_cases: list[FraudCase] = []
        self.incident_windows: list[IncidentWindow] = []
        self.demand_history: DemandHistory | None = None

    def _stream(self) -> Iterator[SimRecord]:
        self._reset_counts()
        run = Run(self.seed, self.start_ts, self.catalog, self.shoppers, self.currency)
        fraud = FraudDesk(run)
        self.fraud_ids = fraud.fraud_ids
        self.fraud_by_scenario = fraud.fraud_by_scenario
        self.fraud_cases = fraud.cases
        plan = IncidentPlan(self.seed, self.catalog, self.start_ts + self.incident_start_s) if self.incidents else None
        self.incident_windows = list(plan.windows) if plan is not None else []
        stockroom = Stockroom(run, self.late_count_rate, self.hold_share)
        tills = Tills(
            run,
            fraud,
            self.void_rate,
            self.early_void_rate,
            legit_manual_rate=self.legit_manual_rate,
            incidents=plan,
            loyalty_scan_miss_rate=self.loyalty_scan_miss_rate,
            members=(members := Members(run)),
            terminal_compromise_s=self.terminal_compromise_s,
            card_compromise_s=self.card_compromise_s,
        )
        web = WebShop(run, stockroom, fraud, self.early_order_rate, members=members,
                      campaigns=Campaigns(self.seed, self.campaign_rate, self.campaign_lift))  # fmt: skip
        journeys = CustomerJourneys(run, tills)

        merchandising = Merchandising(run)
        # The catalog and the opening stock come first, clean: every SKU is known before it sells.
        merchandising.publish_catalog(self.start_ts)
        stockroom.seed_stock(self.start_ts + 1.0)
        run.clock = self.start_ts + 1.0
        published = self.published
        while (due := run.pop_due()) is not None:
            record, effects = due
            stockroom.apply(effects)
            published[record.topic] += 1
            yield record
        if self.demand_history_days > 0:
            self.demand_history = DemandHistory(self.seed, self.catalog, self.demand_history_days, self.start_ts,
                                                currency=self.currency)  # fmt: skip
            for record in self.demand_history.records():
                published[record.topic] += 1
                yield record

        activities: list[tuple[float, Callable[[float], None]]] = [
            (0.45, web.session),
            (0.35, tills.sale),
            (0.02, tills.return_goods),
            (0.15, stockroom.activity),
            (0.002, merchandising.price_change),
            (self.fraud_rate * _ORDERS_PER_ACTIVITY / _ORDERS_PER_FRAUD_BURST, web.fraud_burst),
            (self.fraud_rate * 0.3 * 0.5, tills.fraud_sale),
        ]
        # Scenarios join the mix only when switched on: a zero-weight entry would still shift nothing,
        # but leaving them out keeps the default stream's code path exactly as it was.
        for rate, scenario in (
            (self.takeover_rate, web.account_takeover),
            (self.refund_abuse_rate, tills.refund_abuse),
            (self.manual_fraud_rate, tills.manual_high_value),
            (self.customer_journey_rate, journeys.journey),
            (self.consent_rate, journeys.consent),
            (self.amount_outlier_rate, tills.amount_outlier),
            (self.compromised_terminal_rate, tills.compromise_terminal),
            (self.compromised_card_rate, tills.compromise_card),
        ):
            if rate > 0:
                activities.append((rate, scenario))
        burst_start = burst_end = 0.0
        burst_left = burst_per_record = 0
        if plan is not None:
            stockroom.shrink_spike(plan.shrink_location, *plan.shrink_window, plan.shrink_adjustments)
            burst_start, burst_end = plan.burst_window
            burst_left = plan.dead_letters
            # Spread over the window whatever the rate: the topic carries at least a tenth of the events.
            burst_per_record = 1 + int(burst_left / max(1.0, (burst_end - burst_start) * self.events_per_s * 0.1))
        weather = WeatherDesk(self.seed, self.catalog.locations, self.start_ts)
        cum = list(accumulate(weight for weight, _ in activities))
        actions = [action for _, action in activities]
        last = len(actions) - 1
        mean_gap_s = _EVENTS_PER_ACTIVITY / self.events_per_s
        random, uniform = run.random, run.uniform
        duplicate_rate, malformed_rate = self.duplicate_rate, self.malformed_rate
        # A kind of break chosen but not applicable to its record waits for one it applies to.
        pending: str | None = None
        schedule = run.schedule
        total_weight = cum[-1]
        clock = run.clock
        while True:
            clock += mean_gap_s * 2.0 * random()
            run.clock = clock
            if clock >= weather.next_report_ts:  # hourly, from its own generator: the rest is unchanged
                for report in weather.due(clock):
                    published[report.topic] += 1
                    yield report
            actions[bisect_right(cum, random() * total_weight, 0, last)](clock)
            while schedule and schedule[0][0] <= clock:  # Run.pop_due, inlined: once per record
                _, _, record, effects = heappop(schedule)
                if effects:
                    stockroom.apply(effects)
                topic = record.topic
                published[topic] += 1
                if record.duplicate:
                    self.duplicate_count[topic] += 1
                elif random() < duplicate_rate:
                    run.redeliver(record, run.clock + uniform(0.2, 30.0))  # the producer's retry
                yield record
                if pending is None and random() < malformed_rate:
                    pending = KINDS[int(random() * len(KINDS))]
                if pending is not None:
                    malformed = self._malformed(run, pending, record)
                    if malformed is not None:
                        pending = None
                        yield malformed
                if burst_left and plan is not None and topic is plan.burst_topic and burst_start <= clock < burst_end:
                    # A producer's bad release: its events come with broken twins until it is rolled back.
                    for _ in range(min(burst_left, burst_per_record)):
                        malformed = self._malformed(run, KINDS[int(random() * len(KINDS))], record)
                        if malformed is not None:
                            burst_left -= 1
                            yield malformed

    def _malformed(self, run: Run, kind: str, template: SimRecord) -> SimRecord | None:
        value = corrupt(kind, template.topic, template.value, run.rng)
        if value is None:
            return None
        self.malformed_kinds[kind] = self.malformed_kinds.get(kind, 0) + 1
        self.malformed_count[template.topic] += 1
        self.published[template.topic] += 1
        return SimRecord(template.topic, key_for(template.topic, value), value, malformed=True)
