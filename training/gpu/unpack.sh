#!/usr/bin/env bash
# Joins the bundles.tar.partNN files a device call returned and unpacks them into DEST.
set -euo pipefail
src=$1 dest=${2:-gpu-bundles}
mkdir -p "$dest"
cat "$src"/bundles.tar.part* | tar xf - -C "$dest"
find "$dest" -name bundle.yaml
