# Sourced by the CLI end-to-end tests: a small network from the real brain template, so that a
# test with a random-weight bundle stays quick on 2 cores.
#   tiny_brain_template SOURCE_DIR OUT.yaml
tiny_brain_template() {
  sed -e 's/features_per_stage: .*/features_per_stage: [4, 8, 16]/' -e 's/n_stages: 6/n_stages: 3/' \
      -e 's/kernel_sizes: .*/kernel_sizes: [[3, 3, 3], [3, 3, 3], [3, 3, 3]]/' \
      -e 's/strides: .*/strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2]]/' \
      -e 's/n_conv_per_stage: .*/n_conv_per_stage: [2, 2, 2]/' -e 's/n_conv_per_stage_decoder: .*/n_conv_per_stage_decoder: [2, 2]/' \
      -e 's/patch_size: .*/patch_size: [96, 96, 96]/' \
      "$1/etc/templates/brain-mr-synthseg.yaml" > "$2"
}
