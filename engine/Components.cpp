#include "engine/Components.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

namespace segnode::engine {
namespace {

struct Piece {
  int64_t start, size;
  int label;
};

// Flood fill of the 6-connected piece of `label` that holds `start`, marking `seen`; calls
// visit(at) once per voxel. Returns the piece's size.
template <class T, class Visit>
int64_t fill(const T* v, std::vector<uint8_t>& seen, const std::array<int64_t, 3>& dims, int64_t start, Visit&& visit) {
  const auto [nk, nj, ni] = dims;
  const T label = v[start];
  std::vector<int64_t> stack{start};
  seen[size_t(start)] = 1;
  int64_t size = 0;
  while (!stack.empty()) {
    const int64_t at = stack.back();
    stack.pop_back();
    ++size;
    visit(at);
    const int64_t i = at % ni, j = (at / ni) % nj, k = at / (ni * nj);
    auto next = [&](bool inside, int64_t n) {
      if (inside && !seen[size_t(n)] && v[n] == label) seen[size_t(n)] = 1, stack.push_back(n);
    };
    next(i > 0, at - 1), next(i + 1 < ni, at + 1);
    next(j > 0, at - ni), next(j + 1 < nj, at + ni);
    next(k > 0, at - ni * nj), next(k + 1 < nk, at + ni * nj);
  }
  return size;
}

// Every piece of every non-zero label, in scan order.
template <class T>
std::vector<Piece> pieces(const T* v, const std::array<int64_t, 3>& dims) {
  const int64_t n = dims[0] * dims[1] * dims[2];
  std::vector<uint8_t> seen(size_t(n), 0);
  std::vector<Piece> out;
  for (int64_t start = 0; start < n; ++start)
    if (v[start] != 0 && !seen[size_t(start)]) out.push_back({start, fill(v, seen, dims, start, [](int64_t) {}), int(v[start])});
  return out;
}

PieceSummary summarise(const std::vector<Piece>& all, std::map<int, size_t>* largestOf = nullptr) {
  std::map<int, size_t> largest;  // label -> index of its largest piece
  PieceSummary s;
  for (size_t p = 0; p < all.size(); ++p) {
    s.labelled += all[p].size;
    auto [it, fresh] = largest.emplace(all[p].label, p);
    if (!fresh && all[p].size > all[it->second].size) it->second = p;
  }
  for (const auto& [label, p] : largest) s.inLargest += all[p].size;
  if (largestOf) *largestOf = std::move(largest);
  return s;
}

std::array<int64_t, 3> dimsOf(const torch::Tensor& t) { return {t.size(0), t.size(1), t.size(2)}; }

}  // namespace

torch::Tensor storedLabelValues(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return (type == torch::kByte || type == torch::kShort ? t : t.to(torch::kShort)).contiguous();
}

PieceSummary summarisePieces(const Volume& labels) {
  const auto values = storedLabelValues(labels.data);
  return withLabelPointer(values, [&](const auto* v) { return summarise(pieces(v, dimsOf(values))); });
}

PieceSummary keepLargestPieces(Volume& labels, const std::vector<int>& values) {
  labels.data = storedLabelValues(labels.data);
  return withLabelPointer(labels.data, [&](auto* v) {
    const auto dims = dimsOf(labels.data);
    const auto all = pieces(v, dims);
    std::map<int, size_t> largest;
    PieceSummary s = summarise(all, &largest);
    std::vector<uint8_t> seen(size_t(labels.data.numel()), 0);
    for (size_t p = 0; p < all.size(); ++p) {
      if (largest[all[p].label] == p || std::find(values.begin(), values.end(), all[p].label) == values.end()) continue;
      std::vector<int64_t> at;  // cleared after the fill, which compares values as it goes
      fill(v, seen, dims, all[p].start, [&](int64_t i) { at.push_back(i); });
      for (int64_t i : at) v[i] = 0;
      s.removed += int64_t(at.size());
    }
    return s;
  });
}

}  // namespace segnode::engine
