#!/usr/bin/env bash
# A device call carries the work tree (64 MiB at most), and the committed bundles alone are more.
# `aside` moves every bundle but the brain teacher (which distillation reads) and the committed
# training state out of the tree, to ../segnode-aside; `back` returns them. Run `back` as soon as
# the device calls are over: tests and the node need the bundles.
# `aside all` moves the brain teacher too (a call that carries only a large training state, which
# `students.sh receive` keeps on the machine for the next call). KEEP names bundles that stay
# (a run whose TEACHER is another bundle: KEEP=brain-mr-student-w2 for brain-kd-ta).
#   [KEEP="NAME ..."] bash training/gpu/device-tree.sh aside [all] | back
set -euo pipefail
cd "$(dirname "$0")/../.."
aside=../segnode-aside
case $1 in
aside)
  mkdir -p $aside/models
  for d in etc/models/*/; do
    name=$(basename "$d")
    [ "$name" = brain-mr-teacher ] && [ "${2:-}" != all ] && continue
    [[ " ${KEEP:-} " == *" $name "* ]] && continue
    mv "$d" $aside/models/
  done
  [ -d training/state ] && mv training/state $aside/state
  du -sh --exclude=.git --exclude=build --exclude='build-*' . ;;
back)
  [ -d $aside/models ] && for d in $aside/models/*/; do mv "$d" etc/models/; done
  [ -d $aside/state ] && mv $aside/state training/state
  rmdir $aside/models 2>/dev/null; rmdir $aside 2>/dev/null
  git status --short | head ;;
esac
