#include "engine/Safetensors.h"

#include <cstring>
#include <fstream>
#include <vector>

#include <torch/torch.h>

#include "common/Error.h"
#include <nlohmann/json.hpp>

namespace segnode::engine {
namespace {

struct DType {
  const char* name;
  torch::ScalarType type;
  int64_t bytes;
};
constexpr DType kTypes[] = {{"F64", torch::kDouble, 8}, {"F32", torch::kFloat, 4}, {"F16", torch::kHalf, 2},
                            {"BF16", torch::kBFloat16, 2}, {"I64", torch::kLong, 8}, {"I32", torch::kInt, 4},
                            {"I16", torch::kShort, 2},    {"I8", torch::kChar, 1},  {"U8", torch::kByte, 1},
                            {"BOOL", torch::kBool, 1}};

const DType* byName(const std::string& n) {
  for (const auto& t : kTypes)
    if (n == t.name) return &t;
  return nullptr;
}
const DType* byType(torch::ScalarType s) {
  for (const auto& t : kTypes)
    if (s == t.type) return &t;
  return nullptr;
}

}  // namespace

TensorMap readSafetensors(const std::filesystem::path& path) {
  auto bad = [&](const std::string& what) -> Error { return Error(ErrorCode::BadBundle, path.string() + ": " + what); };
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::BadBundle, path.string() + ": cannot open (missing weights file?)");
  in.seekg(0, std::ios::end);
  const uint64_t fileSize = uint64_t(in.tellg());
  in.seekg(0);
  uint8_t lenBytes[8];
  if (fileSize < 8 || !in.read(reinterpret_cast<char*>(lenBytes), 8)) throw bad("shorter than a safetensors header");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i) headerLen = (headerLen << 8) | lenBytes[i];
  if (headerLen == 0 || headerLen > 100'000'000 || 8 + headerLen > fileSize)
    throw bad("header length " + std::to_string(headerLen) + " does not fit a file of " + std::to_string(fileSize) + " bytes (truncated?)");
  std::string headerText(headerLen, '\0');
  in.read(headerText.data(), std::streamsize(headerLen));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(headerText);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  const uint64_t dataSize = fileSize - 8 - headerLen;

  struct Entry {
    std::string name;
    const DType* dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [name, desc] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      const std::string dtype = desc.at("dtype").get<std::string>();
      Entry e{name, byName(dtype), {}, 0, 0};
      if (!e.dtype) throw bad("tensor '" + name + "': unknown dtype '" + dtype + "'");
      int64_t count = 1;
      for (const auto& d : desc.at("shape")) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0)
          throw bad("tensor '" + name + "': a dimension is not a non-negative integer");
        e.shape.push_back(d.get<int64_t>());
        count *= e.shape.back();
      }
      const auto& off = desc.at("data_offsets");
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw bad("tensor '" + name + "': data_offsets needs two non-negative integers");
      e.begin = off[0].get<uint64_t>();
      e.end = off[1].get<uint64_t>();
      if (e.end < e.begin || e.end > dataSize)
        throw bad("tensor '" + name + "': bytes [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  ") lie outside the " + std::to_string(dataSize) + " data bytes (truncated file?)");
      if (uint64_t(count * e.dtype->bytes) != e.end - e.begin)
        throw bad("tensor '" + name + "': shape needs " + std::to_string(count * e.dtype->bytes) + " bytes, offsets give " +
                  std::to_string(e.end - e.begin));
      entries.push_back(std::move(e));
    } catch (const nlohmann::json::exception& err) {
      throw bad("tensor '" + name + "': " + err.what());
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].begin < entries[i - 1].end)
      throw bad("tensors '" + entries[i - 1].name + "' and '" + entries[i].name + "' overlap");

  TensorMap out;
  for (const auto& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    in.seekg(std::streamoff(8 + headerLen + e.begin));
    if (!in.read(static_cast<char*>(t.data_ptr()), std::streamsize(e.end - e.begin)))
      throw bad("tensor '" + e.name + "': short read");
    out[e.name] = t;
  }
  return out;
}

void writeSafetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata, torch::ScalarType storeAs) {
  const DType* dt = byType(storeAs);
  if (!dt) throw Error(ErrorCode::InvalidArgument, "safetensors: cannot store dtype " + std::string(c10::toString(storeAs)));
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).to(storeAs).contiguous();
    uint64_t bytes = uint64_t(c.numel()) * uint64_t(dt->bytes);
    header[name] = {{"dtype", dt->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // align data to 8 bytes, as the reference writer does
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorCode::Io, path.string() + ": cannot open for writing");
    uint64_t len = text.size();
    uint8_t lenBytes[8];
    for (int i = 0; i < 8; ++i) lenBytes[i] = uint8_t(len >> (8 * i));
    out.write(reinterpret_cast<const char*>(lenBytes), 8);
    out.write(text.data(), std::streamsize(text.size()));
    for (const auto& c : data) out.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.numel() * dt->bytes));
    if (!out.flush()) throw Error(ErrorCode::Io, path.string() + ": write failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace segnode::engine
