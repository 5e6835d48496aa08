#include "engine/TinyBundle.h"

namespace segnode::test {

engine::BundleSpec tinySpec(int classes) {
  engine::BundleSpec s;
  s.name = "tiny";
  s.version = {0, 0, 1};
  s.created = "2026-11-25T00:00:00Z";
  s.modality = engine::Modality::MR;
  s.bodyPart = "BRAIN";
  s.description = "test bundle";
  for (int c = 0; c < classes; ++c) {
    engine::LabelInfo l;
    l.value = c == 0 ? 0 : 10 * c;
    l.name = c == 0 ? "background" : "structure " + std::to_string(c);
    s.labels.push_back(l);
  }
  s.architecture = engine::ArchitectureSpec::nnunetDefault(3, classes);
  s.architecture.features = {4, 8, 16};
  s.inference.patchSize = {32, 32, 32};
  s.provenance = {{"untrained", true}};
  return s;
}

}  // namespace segnode::test
