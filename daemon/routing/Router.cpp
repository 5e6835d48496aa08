#include "daemon/routing/Router.h"

#include <regex>

#include "common/Log.h"
#include "common/Uid.h"

namespace segnode::routing {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string mismatch(const config::RouteMatch& m, const storage::SeriesAttributes& s) {
  if (!m.modality.empty() && upper(m.modality) != upper(s.modality)) return "modality " + s.modality + " is not " + m.modality;
  if (!m.bodyPart.empty() && upper(m.bodyPart) != upper(s.bodyPart))
    return "body part '" + s.bodyPart + "' is not " + m.bodyPart;
  if (!m.seriesDescriptionRegex.empty() &&
      !std::regex_search(s.description, std::regex(m.seriesDescriptionRegex, std::regex::icase | std::regex::ECMAScript)))
    return "description '" + s.description + "' does not match /" + m.seriesDescriptionRegex + "/";
  if (!m.imageTypeContains.empty()) {
    bool found = false;
    std::string type = upper(s.imageType) + "\\";
    size_t start = 0;
    for (size_t end = type.find('\\'); end != std::string::npos; start = end + 1, end = type.find('\\', start))
      found |= type.substr(start, end - start) == upper(m.imageTypeContains);
    if (!found) return "image type " + s.imageType + " lacks " + m.imageTypeContains;
  }
  if (!m.sopClassUid.empty() && m.sopClassUid != s.sopClassUid) return "SOP class " + s.sopClassUid + " is not " + m.sopClassUid;
  if (s.slices < m.minSlices) return std::to_string(s.slices) + " slices, fewer than " + std::to_string(m.minSlices);
  if (!m.callingAe.empty() && m.callingAe != s.callingAe) return "sent by " + s.callingAe + ", not " + m.callingAe;
  return "";
}

Router::Router(Options options, storage::Index& index, storage::Jobs& jobs, std::function<void()> jobCreated)
    : options_(std::move(options)), index_(index), jobs_(jobs), jobCreated_(std::move(jobCreated)) {}

void Router::onSeriesReady(const std::string& seriesUid, int64_t generation) {
  log::Scope scope{{"series", seriesUid}};
  std::string error;
  if (!storage::recordWithRetry([&] { route(seriesUid, generation); }, error))
    SEGNODE_LOG(Error, Route, "series " << seriesUid << " could not be routed: " << error
                                        << "; it stays ready and is routed at the next start");
}

void Router::route(const std::string& seriesUid, int64_t generation) {
  auto attrs = index_.seriesAttributes(seriesUid);
  if (!attrs) return;
  std::string reasons;
  for (const auto& route : options_.routes) {
    std::string why = mismatch(route.match, *attrs);
    if (!why.empty()) {
      reasons += (reasons.empty() ? "" : "; ") + route.name + ": " + why;
      continue;
    }
    if (attrs->voxels > options_.maxVoxels) {
      std::string note = "refused: " + std::to_string(attrs->voxels) + " voxels (route " + route.name +
                         ") exceed processing.max_voxels (" + std::to_string(options_.maxVoxels) + ")";
      jobs_.closeUnprocessed(seriesUid, note);
      SEGNODE_LOG(Warn, Route, "series " << seriesUid << ": " << note);
      return;
    }
    auto job = jobs_.create(seriesUid, generation, route.name, route.model, route.destinations,
                            newDicomUid(options_.uidRoot), newDicomUid(options_.uidRoot), route.sendImplausible);
    SEGNODE_LOG(Info, Route, "series " << seriesUid << " (generation " << generation << ") -> route " << route.name
                                       << ", job " << job.id << ", model " << route.model);
    if (jobCreated_) jobCreated_();
    return;
  }
  std::string note = "no route: " + (reasons.empty() ? std::string("no routes configured") : reasons);
  jobs_.closeUnprocessed(seriesUid, note);
  SEGNODE_LOG(Info, Route, "series " << seriesUid << ": " << note);
}

}  // namespace segnode::routing
