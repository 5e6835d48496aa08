#include "storage/Lifecycle.h"

#include <algorithm>

#include "common/Error.h"

namespace segnode::storage {

const char* sqlName(SeriesState s) {
  switch (s) {
    case SeriesState::Receiving: return "receiving";
    case SeriesState::Ready: return "ready";
    case SeriesState::Processing: return "processing";
    case SeriesState::Done: return "done";
    case SeriesState::Purged: return "purged";
  }
  return "?";
}

const char* sqlName(JobState s) {
  switch (s) {
    case JobState::Queued: return "queued";
    case JobState::Running: return "running";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Rejected: return "rejected";
    case JobState::Superseded: return "superseded";
  }
  return "?";
}

const char* sqlName(OutboxState s) {
  switch (s) {
    case OutboxState::Pending: return "pending";
    case OutboxState::Sent: return "sent";
    case OutboxState::Dead: return "dead";
  }
  return "?";
}

template <>
std::vector<SeriesState> allStates() {
  using S = SeriesState;
  return {S::Receiving, S::Ready, S::Processing, S::Done, S::Purged};
}
template <>
std::vector<JobState> allStates() {
  using J = JobState;
  return {J::Queued, J::Running, J::Done, J::Failed, J::Rejected, J::Superseded};
}
template <>
std::vector<OutboxState> allStates() {
  return {OutboxState::Pending, OutboxState::Sent, OutboxState::Dead};
}

template <class State>
State stateFromSql(const std::string& word) {
  std::string valid;
  for (State s : allStates<State>()) {
    if (word == sqlName(s)) return s;
    valid += (valid.empty() ? "" : ", ") + std::string(sqlName(s));
  }
  throw Error(ErrorCode::BadInput, "unknown state '" + word + "' (one of: " + valid + ")");
}
template SeriesState stateFromSql<SeriesState>(const std::string&);
template JobState stateFromSql<JobState>(const std::string&);
template OutboxState stateFromSql<OutboxState>(const std::string&);

template <class State>
std::string Transition<State>::fromList() const {
  std::string out;
  for (State s : from) out += (out.empty() ? "'" : ", '") + std::string(sqlName(s)) + "'";
  return out;
}

template <class State>
bool Transition<State>::allows(State s) const {
  return std::find(from.begin(), from.end(), s) != from.end();
}

template struct Transition<SeriesState>;
template struct Transition<JobState>;
template struct Transition<OutboxState>;

}  // namespace segnode::storage
