"""Ground truth for fraud and the `fraud_label` events that reveal it later.

Chargebacks and reviews arrive long after the payment (CONTRACT.md: "arrives
days later"); a stream of minutes or hours cannot wait days, so labels follow
their payment by 2 to 30 minutes of event time. Not every fraud is ever
labelled, and a few legitimate payments are confirmed by manual review, as in
real feedback loops.
"""

from __future__ import annotations

from events.topics import Topic
from sim.run import Run

FRAUD_COUNTRIES = ("NG", "RU", "BR", "VN", "ID", "RO", "UA", "PH")
_FRAUD_SOURCES = ("chargeback", "chargeback", "chargeback", "customer_claim", "manual_review")


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

    def stolen_card(self) -> tuple[str, str, str]:
        """A real shopper's card token, BIN and home country, now in a fraudster's hands."""
        victim = self.run.pick(self.run.shoppers)
        return victim.card_token, victim.card_bin, victim.country

    def paid(self, id_field: str, payment_id: str, ts: float, fraud: bool) -> None:
        """Record a payment (`txn_id` or `order_id`) and maybe schedule its label."""
        run = self.run
        if fraud:
            self.fraud_ids.add(payment_id)
            if run.random() >= self.fraud_label_rate:
                return
            label, source = "fraud", run.pick(_FRAUD_SOURCES)
        elif run.random() < self.legit_label_rate:
            label, source = "legit", "manual_review"
        else:
            return
        fields = {id_field: payment_id, "label": label, "source": source}
        run.emit(Topic.LABELS, payment_id.encode(), "fraud_label", ts + run.uniform(120.0, 1800.0), fields)
