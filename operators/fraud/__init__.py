"""Fraud and anomaly engine: pure logic, no I/O (docs/architecture.md, `operators/`).

The flow (`flows/fraud.py`) wires these together:

1. `payment_of(event)` / `till_action_of(event)` normalise events.
2. Features per entity, keyed by the flow: `CardVelocity` (card token), `ShopperHistory` (user),
   `RegisterBehaviour` (store), `OrderChecks` (stateless); the dicts of one payment are merged.
3. `FraudScorer.score_many(features)` gives each payment a `FraudScore` (score, decision, reasons,
   model_version); `learn_many(features)` teaches the anomaly model normal traffic.
4. `PendingPayments` keeps each payment's `FraudScore.model_input` compactly until its `fraud_label`
   arrives (up to the label horizon) or it matures unlabelled (presumed genuine, never earlier);
   `FraudScorer.learn_labels` learns them.
5. `FraudAlerts` turns scores and register behaviour into de-duplicated `Alert`s; `SalesPulse`,
   `ShrinkWatch` and `DeadLetterRate` raise operational `anomaly` alerts.

`RuleBook.from_toml` parses `deploy/fraud/rules.toml`; `reload_rules(text, current)` keeps the current
rules (and says why) when a changed file is not valid. `operators.fraud.shards` holds the state of one
shard of each of the flow's keyed stages and what it does with a batch; `operators.fraud.records` the
typed records travelling between them. There is one pipeline, the flow: the quality harness runs it.
"""

from operators.fraud.alerts import AlertBook, FraudAlerts, card_ref, payment_entity
from operators.fraud.anomaly import HalfSpaceForest
from operators.fraud.features import (
    FEATURE_DEFAULTS,
    FEATURE_NAMES,
    CardVelocity,
    OrderChecks,
    RegisterBehaviour,
    ShopperHistory,
    vectorize,
)
from operators.fraud.operations import DeadLetterRate, SalesPulse, ShrinkWatch
from operators.fraud.payments import Payment, TillAction, payment_of, till_action_of
from operators.fraud.pending import PendingPayments
from operators.fraud.rules import Rule, RuleBook, RuleBookError, reload_rules
from operators.fraud.scorer import MODEL_INPUT_NAMES, MODES, FraudScore, FraudScorer, Mode
from operators.fraud.supervised import OnlineLogit

__all__ = [
    "FEATURE_DEFAULTS",
    "FEATURE_NAMES",
    "MODEL_INPUT_NAMES",
    "MODES",
    "AlertBook",
    "CardVelocity",
    "DeadLetterRate",
    "FraudAlerts",
    "FraudScore",
    "FraudScorer",
    "HalfSpaceForest",
    "Mode",
    "OnlineLogit",
    "OrderChecks",
    "Payment",
    "PendingPayments",
    "RegisterBehaviour",
    "Rule",
    "RuleBook",
    "RuleBookError",
    "SalesPulse",
    "ShopperHistory",
    "ShrinkWatch",
    "TillAction",
    "card_ref",
    "payment_entity",
    "payment_of",
    "reload_rules",
    "till_action_of",
    "vectorize",
]
