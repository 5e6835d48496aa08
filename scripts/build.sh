#!/usr/bin/env bash
# Configures (once) and builds into build/ with the default preset. Programs land in build/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/build.ninja ]] || cmake --preset default "$@"
cmake --build build -j"$(nproc)"
