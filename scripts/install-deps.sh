#!/usr/bin/env bash
# Installs (as root, from Debian 12's archive) what segnode needs and is missing. Idempotent:
# nothing is downloaded when everything is present.  Usage: install-deps.sh [--tests]
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config zlib1g-dev
  libtorch-dev libdcmtk-dev dcmtk libsqlitecpp-dev libsqlite3-dev libyaml-cpp-dev
  libboost-dev libboost-system-dev libssl-dev libsystemd-dev libopenjp2-7-dev libdnnl-dev nlohmann-json3-dev libcli11-dev help2man)
if [[ ${1:-} == --tests ]]; then
  # catch2: unit tests; python3-nibabel/yaml: NIfTI output checks; python3-pydicom: a CT series
  # made from a NIfTI (bench/nifti-to-ct-dicom.py); orthanc: the real PACS of the
  # end-to-end tests; dicom3tools: dciodvfy; curl: Orthanc's REST API; clang + compiler-rt:
  # libFuzzer and the sanitizers of tests/fuzz/fuzz.sh; prometheus: promtool checks /metrics;
  # lintian: the Debian package test.
  packages+=(catch2 python3-nibabel python3-yaml python3-numpy python3-pydicom orthanc dicom3tools curl clang libclang-rt-14-dev prometheus lintian)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "install-deps: installing ${missing[*]}"
  if [[ $(id -u) != 0 ]]; then echo "install-deps: run as root (apt-get) or install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
