#include "storage/Lifecycle.h"

#include <algorithm>

#include "common/Error.h"

namespace segnode::storage {

namespace {
// The SQL words, in enum order (the migrations' CHECK constraints list the same).
constexpr const char* kSeriesNames[] = {"receiving", "ready", "processing", "done", "purged"};
constexpr const char* kJobNames[] = {"queued", "running", "done", "failed", "rejected", "superseded"};
constexpr const char* kOutboxNames[] = {"pending", "sent", "dead"};

template <class State, size_t N>
std::vector<State> statesOf(const char* const (&)[N]) {
  std::vector<State> all;
  for (size_t i = 0; i < N; ++i) all.push_back(State(i));
  return all;
}
}  // namespace

const char* sqlName(SeriesState s) { return kSeriesNames[size_t(s)]; }
const char* sqlName(JobState s) { return kJobNames[size_t(s)]; }
const char* sqlName(OutboxState s) { return kOutboxNames[size_t(s)]; }

template <>
std::vector<SeriesState> allStates() { return statesOf<SeriesState>(kSeriesNames); }
template <>
std::vector<JobState> allStates() { return statesOf<JobState>(kJobNames); }
template <>
std::vector<OutboxState> allStates() { return statesOf<OutboxState>(kOutboxNames); }

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

template <class State>
std::string sqlMove(const char* table, const Transition<State>& t, const std::string& set, const std::string& where) {
  return std::string("UPDATE ") + table + " SET state = '" + sqlName(t.to) + "'" + set + " WHERE " + where +
         " AND state IN (" + t.fromList() + ")";
}

template <class State>
std::string sqlMoveValue(const Transition<State>& t) {
  return "CASE WHEN state IN (" + t.fromList() + ") THEN '" + sqlName(t.to) + "' ELSE state END";
}

#define SEGNODE_LIFECYCLE(State)                                                                               \
  template struct Transition<State>;                                                                           \
  template std::string sqlMove(const char*, const Transition<State>&, const std::string&, const std::string&); \
  template std::string sqlMoveValue(const Transition<State>&);
SEGNODE_LIFECYCLE(SeriesState)
SEGNODE_LIFECYCLE(JobState)
SEGNODE_LIFECYCLE(OutboxState)
#undef SEGNODE_LIFECYCLE

}  // namespace segnode::storage
