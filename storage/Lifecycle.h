#pragma once
// The node's three state machines (DESIGN §3) in one place: their states, the one SQL spelling of
// each (the migrations' CHECK constraints list the same words; a test holds them together), and
// every transition as a named constant: the states it may start from and the state it ends in.
// storage/Index.cpp and storage/Jobs.cpp change a state only through these.
//
//   series  receiving -> ready (quiet period) -> processing (job made) -> done (job finished) -> purged
//           ready -> done (no route); any -> receiving (an instance arrives; one leaves: not purged)
//   job     queued -> running -> done | failed | rejected | superseded (a newer job meanwhile)
//           running -> queued (restart after a crash), or failed after max attempts;
//           queued, done, failed, rejected -> superseded
//   outbox  pending -> sent | pending (retry later) | dead; pending, dead -> pending (segnode retry)
#include <string>
#include <vector>

namespace segnode::storage {

enum class SeriesState { Receiving, Ready, Processing, Done, Purged };
enum class JobState { Queued, Running, Done, Failed, Rejected, Superseded };
enum class OutboxState { Pending, Sent, Dead };

const char* sqlName(SeriesState s);
const char* sqlName(JobState s);
const char* sqlName(OutboxState s);
// The state a stored (or typed) word names. Throws Error(BadInput) listing the valid words.
template <class State>
State stateFromSql(const std::string& word);
template <class State>
std::vector<State> allStates();

template <class State>
struct Transition {
  std::vector<State> from;
  State to;
  // "'a', 'b'": the from-states for a SQL IN (...) list.
  std::string fromList() const;
  bool allows(State s) const;
};

// "UPDATE <table> SET state = '<to>'<set> WHERE <where> AND state IN (<from>)": how storage applies
// a transition (set: further ", column = ?" assignments).
template <class State>
std::string sqlMove(const char* table, const Transition<State>& t, const std::string& set, const std::string& where);
// "CASE WHEN state IN (<from>) THEN '<to>' ELSE state END": the state column's value in an upsert.
template <class State>
std::string sqlMoveValue(const Transition<State>& t);

namespace transition {
using S = SeriesState;
using J = JobState;
using O = OutboxState;
// A new or changed instance (re)starts the quiet period, whatever the state (a purged series too).
inline const Transition<S> kSeriesReceives{{S::Receiving, S::Ready, S::Processing, S::Done, S::Purged}, S::Receiving};
// An instance moved to another series: the old series changed too (a purged one stays purged).
inline const Transition<S> kSeriesLosesInstance{{S::Receiving, S::Ready, S::Processing, S::Done}, S::Receiving};
inline const Transition<S> kSeriesQuiet{{S::Receiving}, S::Ready};
inline const Transition<S> kSeriesRouted{{S::Ready}, S::Processing};
inline const Transition<S> kSeriesNotProcessed{{S::Ready}, S::Done};  // no route, or refused
inline const Transition<S> kSeriesFinished{{S::Processing}, S::Done};
inline const Transition<S> kSeriesPurged{{S::Done}, S::Purged};

inline const Transition<J> kJobClaimed{{J::Queued}, J::Running};
inline const Transition<J> kJobRequeued{{J::Running}, J::Queued};
inline const Transition<J> kJobReleased{{J::Running}, J::Queued};  // stopped at shutdown: the attempt does not count
inline const Transition<J> kJobGivenUp{{J::Running}, J::Failed};  // the process ended during each of its attempts
inline const Transition<J> kJobSupersededWaiting{{J::Queued, J::Done, J::Failed, J::Rejected}, J::Superseded};
// A running job ends in one of these (superseded when its series got a newer job meanwhile).
inline const std::vector<Transition<J>> kJobFinished{
    {{J::Running}, J::Done}, {{J::Running}, J::Failed}, {{J::Running}, J::Rejected}, {{J::Running}, J::Superseded}};

inline const Transition<O> kOutboxSent{{O::Pending}, O::Sent};
inline const Transition<O> kOutboxFailed{{O::Pending}, O::Pending};
inline const Transition<O> kOutboxDead{{O::Pending}, O::Dead};
inline const Transition<O> kOutboxRetried{{O::Pending, O::Dead}, O::Pending};  // one job's deliveries
inline const Transition<O> kOutboxRevived{{O::Dead}, O::Pending};                // every dead one
}  // namespace transition

}  // namespace segnode::storage
