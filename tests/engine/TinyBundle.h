#pragma once
#include "engine/BundleSpec.h"

namespace segnode::test {

// A small but complete bundle spec: 3 stages (4, 8, 16 features), patch 32^3, `classes` labels.
engine::BundleSpec tinySpec(int classes = 3);

}  // namespace segnode::test
