#!/usr/bin/env bash
# Installs what is missing, builds from scratch if needed, and runs every test (ctest), then
# fuzzes DICOM input for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
scripts/build.sh
ctest --test-dir build --output-on-failure -j2
# The short form of the fuzzer (tests/fuzz/fuzz.sh; the report's runs are 10 minutes and more).
tests/fuzz/fuzz.sh 60
