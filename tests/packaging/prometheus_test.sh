#!/usr/bin/env bash
# The example Prometheus configuration and alert rules of docs/admin.md are valid for promtool,
# and every segnode_ metric they name is one the node exports (common/Metrics.cpp's table).
#   prometheus_test.sh SOURCE_DIR
set -euo pipefail
src=$1
command -v promtool >/dev/null || { echo "SKIPPED: promtool (Debian's prometheus package) is not installed"; exit 0; }
promtool check config "$src/packaging/prometheus/prometheus.yml"
for name in $(grep -o 'segnode_[a-z_]*' "$src/packaging/prometheus/segnode-alerts.yml" | sort -u); do
  grep -q "\"$name\"" "$src/common/Metrics.cpp" || { echo "FAIL: the alert rules name $name, which the node does not export"; exit 1; }
done
echo "prometheus_test: ok"
