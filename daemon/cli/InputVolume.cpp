#include "daemon/cli/InputVolume.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "common/Error.h"
#include "daemon/dicom/SeriesLoader.h"
#include "engine/Nifti.h"

namespace segnode::cli {
namespace fs = std::filesystem;

engine::Volume readInputVolume(const std::string& path) {
  if (!fs::is_directory(path)) return engine::readNifti(path);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(path))
    if (entry.is_regular_file()) files.push_back(entry.path());
  if (files.empty()) throw Error(ErrorCode::NotFound, path + ": folder holds no files (expected one DICOM series)");
  std::sort(files.begin(), files.end());
  dicom::SeriesImage image = dicom::loadSeries(files);
  engine::Volume volume;
  volume.geometry = image.geometry;
  const auto& s = image.geometry.size;
  volume.data = torch::from_blob(image.voxels.data(), {s[2], s[1], s[0]}, torch::kFloat).clone();
  return volume;
}

}  // namespace segnode::cli
