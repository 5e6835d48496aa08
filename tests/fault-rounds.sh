#!/usr/bin/env bash
# The full fault run with a real PACS (docs/reliability.md): ROUNDS kill -9s of segnoded at random
# points across ingest, inference and sending, with Orthanc as source and destination. ctest runs
# the same test with 3 rounds.   tests/fault-rounds.sh [ROUNDS]   (default 20; about 25 s a round)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/bin/node_tests ]] || scripts/build.sh
SEGNODE_FAULT_ROUNDS=${1:-20} build/bin/node_tests "[fault]" 2>&1 | grep -v "^W: \|^E: "
