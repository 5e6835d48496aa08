#!/usr/bin/env bash
# Stages .gpu-carry/ (git-ignored) for training/gpu/students.sh: for brain runs every brain label
# map as int16 in one xz tar (about a third of the gzip size; 18 and 19 are the validation maps,
# used only for the validation curves) and the generation table; for FLARE22 runs (DATA=flare) its
# 50 maps in one tar; state/<run>/ for each run that continues
# (training/state/<run>/ in the repo, or DIR given as RUN=DIR), and prefix/ with Debian's
# nlohmann-json and CLI11 headers and CMake packages and OpenSSL 3 headers (the GPU box has none).
# A device call carries at most 64 MiB: training/gpu/device-tree.sh moves the bundles the call
# does not need out of the work tree for the call, and back.
#   [BUNDLES="etc/models/NAME/VERSION ..."] [REF=COMMIT] bash training/gpu/stage-students.sh [RUN[=DIR] ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
src=../shared/data/brain_mr/synthseg_label_maps
rm -rf .gpu-carry && mkdir -p .gpu-carry/maps .gpu-carry/state .gpu-carry/prefix/include .gpu-carry/prefix/share/cmake
cp -r /usr/include/nlohmann .gpu-carry/prefix/include/
# OpenSSL 3 headers (the box has libcrypto.so.3 but maybe no headers); EVP is stable within 3.x.
cp -r /usr/include/openssl .gpu-carry/prefix/include/
cp /usr/include/x86_64-linux-gnu/openssl/*.h .gpu-carry/prefix/include/openssl/
cp -r /usr/share/cmake/nlohmann_json .gpu-carry/prefix/share/cmake/
cp -r /usr/include/CLI .gpu-carry/prefix/include/
cp -r /usr/share/cmake/CLI11 .gpu-carry/prefix/share/cmake/
# Which label maps the runs need (DATA in each run's .env: brain, the default, or flare).
need_brain='' need_flare=''
for spec in "$@"; do
  DATA=brain
  # shellcheck source=/dev/null
  source "training/gpu/runs/${spec%%=*}.env"
  [ "$DATA" = flare ] && need_flare=1 || need_brain=1
done
if [ -n "$need_brain" ]; then
/usr/bin/python3 - "$src" .gpu-carry/maps <<'PY'
import glob, os, sys
import nibabel as nib, numpy as np
src, dst = sys.argv[1:]
for f in sorted(glob.glob(os.path.join(src, "training_seg_*.nii.gz"))):
    im = nib.load(f)
    labels = np.asanyarray(im.dataobj)
    assert np.all(labels == np.round(labels)) and labels.max() < 32768
    header = im.header.copy()
    header.set_data_dtype(np.int16)
    header.set_slope_inter(1, 0)
    out = os.path.join(dst, os.path.basename(f)[:-3])
    nib.save(nib.Nifti1Image(labels.astype(np.int16), im.affine, header), out)
PY
cp "$src"/synthseg_generation_label_table.tsv .gpu-carry/maps/
tar cf - -C .gpu-carry/maps . | xz -9 -T2 >.gpu-carry/brain-maps.tar.xz
rm -rf .gpu-carry/maps
fi
# FLARE22 (issue 15): the gzip maps as they are, in one tar (the held-out split is in the tree).
# and the body context of the two TotalSegmentator subjects, one label map each (--context-maps).
if [ -n "$need_flare" ]; then
  tar cf .gpu-carry/flare-maps.tar -C ../shared/data/abdomen_ct/flare22_label_maps .
  mkdir -p .gpu-carry/context
  for s in s0327 s0328; do
    /usr/bin/python3 training/ct/totalseg-context.py ../shared/data/abdomen_ct/totalseg_dataset_masks/$s .gpu-carry/context/$s.nii.gz
  done
fi
for spec in "$@"; do
  run=${spec%%=*} dir=training/state/${spec%%=*}
  [[ $spec == *=* ]] && dir=${spec#*=}
  [ -d "$dir" ] || continue  # a new run: nothing to continue
  mkdir -p ".gpu-carry/state/$run" && cp -r "$dir/." ".gpu-carry/state/$run/"
done
# BUNDLES: bundle folders to carry apart from the tree (a run's teacher that does not fit one call
# beside another run's), under .gpu-carry/bundles/NAME/VERSION; `students.sh receive` keeps them.
for b in ${BUNDLES:-}; do
  b=${b%/}
  name=$(basename "$(dirname "$b")")
  [ -f "$b/bundle.yaml" ] || { echo "BUNDLES: $b is not a bundle folder" >&2; exit 64; }
  mkdir -p ".gpu-carry/bundles/$name" && cp -r "$b" ".gpu-carry/bundles/$name/"
  # Weights larger than a call carries beside the tree (a CT teacher's 66 MB) travel as 32 MiB
  # pieces over several `receive` calls, each carrying some (`carry` names them one by one);
  # students.sh joins them on the machine once their sha256 matches.
  w=.gpu-carry/bundles/$name/$(basename "$b")/weights.safetensors
  if [ "$(stat -c %s "$w")" -gt $(( 48 * 1024 * 1024 )) ]; then
    (cd "$(dirname "$w")" && sha256sum weights.safetensors >weights.safetensors.sha256)
    split -b 32M -d -a 2 "$w" "$w.p" && rm "$w"
  fi
done
# REF: a commit whose code `students.sh start` builds beside the tree's and probes the first run
# with first (the engine and training sources: about 150 kB).
if [ -n "${REF:-}" ]; then
  git rev-parse --short "$REF^{commit}" >.gpu-carry/ref-commit
  git archive "$REF" -- CMakeLists.txt CMakePresets.json common engine training ':!training/state' | gzip >.gpu-carry/ref-src.tar.gz
fi
du -sh .gpu-carry .gpu-carry/*
