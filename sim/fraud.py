"""Ground truth for fraud and the `fraud_label` events that reveal it later.

Chargebacks and reviews arrive long after the payment (CONTRACT.md: "arrives
days later"); a stream of minutes or hours cannot wait days, so labels follow
their payment by 2 to 30 minutes of event time. Not every fraud is ever
labelled, and a few legitimate payments are confirmed by manual review, as in
real feedback loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.topics import Topic
from sim.run import Run

FRAUD_COUNTRIES = ("NG", "RU", "BR", "VN", "ID", "RO", "UA", "PH")
_FRAUD_SOURCES = ("chargeback", "chargeback", "chargeback", "customer_claim", "manual_review")


@dataclass
class FraudCase:
    """One fraud incident as an investigator would file it: which scenario, against whom, since when.

    `entity_type` / `entity_id` name what the engine should alert on: `card` (the raw token here;
    the engine pseudonymises it), `user` or `cashier` (`store_id/cashier_id`). `first_ts` is the
    event time of the first fraudulent event, from which detection delay is measured.
    """

    scenario: str
    entity_type: str
    entity_id: str
    first_ts: float
    payment_ids: list[str] = field(default_factory=list)


class FraudDesk:
    """Knows which payments were fraudulent and publishes the labels that come back.

    Parameters
    ----------
    run
        The stream's shared state.
    fraud_label_rate
        Share of fraudulent payments that are eventually labelled `fraud`.
    legit_label_rate
        Share of legitimate payments confirmed `legit` by manual review.
    """

    def __init__(self, run: Run, fraud_label_rate: float = 0.8, legit_label_rate: float = 0.005) -> None:
        self.run = run
        self.fraud_label_rate = fraud_label_rate
        self.legit_label_rate = legit_label_rate
        self.fraud_ids: set[str] = set()
        self.fraud_by_scenario: dict[str, set[str]] = {}
        self.cases: list[FraudCase] = []
        # The card-fraud benchmark's scenarios (README of ../shared/data/card-fraud-dev/ describes them):
        # a compromised terminal's payments are all fraud until `until`; a compromised card's are a third of the time.
        self.terminals: dict[str, tuple[float, FraudCase]] = {}
        self.cards: dict[str, tuple[float, FraudCase]] = {}

    def compromise_terminal(self, store_id: str, register_id: str, t: float, duration_s: float) -> FraudCase:
        """A terminal (register) skimmed from `t`: every card payment on it is fraud for `duration_s`."""
        case = self.open_case("compromised_terminal", "register", register_id, t)
        self.terminals[register_id] = (t + duration_s, case)
        return case

    def terminal_case(self, register_id: str, t: float) -> FraudCase | None:
        """The open compromise of `register_id` at `t`, if any."""
        found = self.terminals.get(register_id)
        return found[1] if found is not None and found[1].first_ts <= t < found[0] else None

    def compromise_card(self, token: str, t: float, duration_s: float) -> FraudCase:
        """A card's details leaked at `t`: for `duration_s` a third of its payments are a fraudster's, 5x the amount."""
        case = self.open_case("compromised_card", "card", token, t)
        self.cards[token] = (t + duration_s, case)
        return case

    def card_case(self, token: str, t: float) -> FraudCase | None:
        """The open compromise of card `token` at `t`, if any."""
        found = self.cards.get(token)
        return found[1] if found is not None and found[1].first_ts <= t < found[0] else None

    def open_case(self, scenario: str, entity_type: str, entity_id: str, first_ts: float) -> FraudCase:
        """Start the ground-truth record of one incident; its payments are added by `paid`."""
        case = FraudCase(scenario, entity_type, entity_id, first_ts)
        self.cases.append(case)
        return case

    def stolen_card(self) -> tuple[str, str, str]:
        """A real shopper's card token, BIN and home country, now in a fraudster's hands."""
        victim = self.run.pick(self.run.shoppers)
        return victim.card_token, victim.card_bin, victim.country

    def paid(
        self,
        id_field: str,
        payment_id: str,
        ts: float,
        fraud: bool,
        scenario: str = "other",
        case: FraudCase | None = None,
    ) -> None:
        """Record a payment (`txn_id` or `order_id`) and maybe schedule its label.

        `scenario` files a fraudulent payment under its kind of fraud; `case` under its incident.
        """
        run = self.run
        if fraud:
            self.fraud_ids.add(payment_id)
            self.fraud_by_scenario.setdefault(scenario, set()).add(payment_id)
            if case is not None:
                case.payment_ids.append(payment_id)
            if run.random() >= self.fraud_label_rate:
                return
            label, source = "fraud", run.pick(_FRAUD_SOURCES)
        elif run.random() < self.legit_label_rate:
            label, source = "legit", "manual_review"
        else:
            return
        fields = {id_field: payment_id, "label": label, "source": source}
        run.emit(Topic.LABELS, payment_id.encode(), "fraud_label", ts + run.uniform(120.0, 1800.0), fields)
