#!/usr/bin/env bash
# Installs what is missing, builds from scratch if needed, and runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
scripts/build.sh
ctest --test-dir build --output-on-failure -j2
