#!/usr/bin/env bash
# Validates the Prometheus alert rules and config with promtool (apt-get install -y prometheus),
# and the Grafana dashboard's JSON. The unit suite checks the metric names without promtool.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool not installed (apt-get install -y prometheus)" >&2; exit 2; }
promtool check rules deploy/prometheus/alerts.yml
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
cp deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml "$workdir"/
promtool check config "$workdir/prometheus.yml"
python3 -m json.tool deploy/grafana/omnistream.json >/dev/null && echo "deploy/grafana/omnistream.json: valid JSON"
