# Sourced by the CLI end-to-end tests (after `set -euo pipefail`).

# A test whose input is absent is a skip (exit 77, which ctest reports as skipped), except under
# CI's SEGNODE_TESTS_REQUIRE_ALL, where it fails.
#   require_file FILE
require_file() {
  [[ -f $1 ]] && return 0
  echo "SKIPPED: $1 is absent (../shared/data not laid out)"
  [[ -n ${SEGNODE_TESTS_REQUIRE_ALL:-} ]] && exit 1
  exit 77
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# A small network from the real brain template, so that a test with a random-weight bundle stays
# quick on 2 cores.
#   tiny_brain_template SOURCE_DIR OUT.yaml
tiny_brain_template() {
  sed -e 's/features_per_stage: .*/features_per_stage: [4, 8, 16]/' -e 's/n_stages: 6/n_stages: 3/' \
      -e 's/kernel_sizes: .*/kernel_sizes: [[3, 3, 3], [3, 3, 3], [3, 3, 3]]/' \
      -e 's/strides: .*/strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2]]/' \
      -e 's/n_conv_per_stage: .*/n_conv_per_stage: [2, 2, 2]/' -e 's/n_conv_per_stage_decoder: .*/n_conv_per_stage_decoder: [2, 2]/' \
      -e 's/patch_size: .*/patch_size: [96, 96, 96]/' \
      "$1/etc/templates/brain-mr-synthseg.yaml" > "$2"
}
