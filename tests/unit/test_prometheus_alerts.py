"""`deploy/prometheus/alerts.yml` is well formed and every expression names metrics and labels the code defines.

Runs everywhere (no promtool needed); `benchmarks/check_deploy.sh` adds `promtool check rules`
where Prometheus is installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import flows.metrics  # noqa: F401  (registers the flows' metrics)
from serving.metrics import ApiMetrics

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SEVERITIES = {"warning", "attention", "emergency"}
_SELECTOR = re.compile(r"\b(omnistream_[a-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"")


def _defined() -> dict[str, set[str]]:
    """Every sample name the code exposes, with the label names it carries."""
    names: dict[str, set[str]] = {}
    for name, collector in list(REGISTRY._names_to_collectors.items()):  # sample names -> collector
        if name.startswith("omnistream_"):
            names[name] = set(getattr(collector, "_labelnames", ()))
    api = ApiMetrics()
    api.observe("/v1/alerts", "GET", 200, 0.001)
    for family in api.collect():
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("groups"), list) and doc["groups"]
    found = [rule for group in doc["groups"] for rule in group["rules"]]
    assert all(isinstance(group.get("name"), str) for group in doc["groups"])
    return found


def test_every_rule_has_a_name_an_expression_a_routable_severity_and_a_summary(rules: list[dict[str, Any]]) -> None:
    names = [rule.get("alert") for rule in rules]
    assert len(names) == len(set(names)) and all(isinstance(n, str) and n for n in names)
    for rule in rules:
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_every_expression_names_metrics_and_labels_the_code_defines(rules: list[dict[str, Any]]) -> None:
    defined = _defined()
    used: set[str] = set()
    for rule in rules:
        selectors = _SELECTOR.findall(rule["expr"])
        assert selectors, f"{rule['alert']}: names no omnistream metric"
        for metric, matchers in selectors:
            assert metric in defined, f"{rule['alert']}: {metric} is not a metric the code defines"
            used.add(metric)
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            labels = defined[metric] | defined.get(base, set()) | ({"le"} if metric.endswith("_bucket") else set())
            for label, _ in _MATCHER.findall(matchers or ""):
                assert label in labels, f"{rule['alert']}: {metric} has no label {label!r} (has {sorted(labels)})"
        for label in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            for name in (n.strip() for n in label.split(",")):
                assert any(name in defined[m] or name == "le" for m, _ in selectors), f"{rule['alert']}: by {name}"
    # The fraud metrics that alerting depends on are all wired to a rule.
    for metric in ("omnistream_flow_alerts_total", "omnistream_fraud_decisions_total",
                   "omnistream_fraud_rules_reloads_total", "omnistream_fraud_labels_total"):  # fmt: skip
        assert metric in used


def test_a_misspelt_metric_would_be_caught() -> None:
    assert "omnistream_fraud_decisionz_total" not in _defined()


def test_grafana_dashboard_queries_name_defined_metrics() -> None:
    import json

    dashboard = json.loads((ALERTS.parents[1] / "grafana" / "omnistream.json").read_text())
    defined = _defined()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert dashboard["uid"] and len(exprs) >= 10
    for expr in exprs:
        for metric, _ in _SELECTOR.findall(expr):
            assert metric in defined, f"dashboard: {metric} is not a metric the code defines"
