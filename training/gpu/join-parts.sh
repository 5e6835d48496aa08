#!/usr/bin/env bash
# Rebuilds, here, the runs' tree that training/gpu/students.sh packed on the GPU machine, from the
# pieces that one or more device calls brought back (their files_at folders, in any order):
# 00-small.tar is unpacked, each large file is joined from its NN-<path>.pMM pieces ('__' in the
# name is '/' in the path), and every large file is checked against the pack's SHA256SUMS. A file
# whose pieces did not all come back is named, with exit 65 (EX_DATAERR); the rest is kept.
#   bash training/gpu/join-parts.sh DIR FILES_AT...
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,7p "$0" >&2; exit 64; }
out=$1
shift
mkdir -p "$out"
small=$(ls "$@" 2>/dev/null | grep -c '^00-small\.tar$' || true)
[ "$small" -ge 1 ] || { echo "join-parts: no 00-small.tar in $*: the pack's first call is missing" >&2; exit 65; }
for d in "$@"; do [ -f "$d/00-small.tar" ] && tar xf "$d/00-small.tar" -C "$out"; done
# Each large file: its pieces from every folder, in piece order.
for base in $(for d in "$@"; do ls "$d"; done | sed -n 's/^[0-9][0-9]-\(.*\)\.p[0-9][0-9]$/\1/p' | sort -u); do
  path=${base//__//}
  mkdir -p "$out/$(dirname "$path")"
  for d in "$@"; do ls "$d"/[0-9][0-9]-"$base".p[0-9][0-9] 2>/dev/null || true; done |
    awk -F. '{print $NF "\t" $0}' | sort -u -k1,1 | cut -f2 | xargs cat >"$out/$path"
done
cd "$out"
[ -s SHA256SUMS ] || { echo "join-parts: no large files in this pack"; exit 0; }
if sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1; then
  echo "join-parts: $(wc -l <SHA256SUMS) large files joined and checked in $out"
else
  { sha256sum -c SHA256SUMS 2>&1 || true; } | grep -v -e ': OK$' -e WARNING | sed 's/^/join-parts: not (all) back: /' >&2
  exit 65
fi
