#pragma once
// The node's Prometheus metrics: every family is declared once, in Metrics.cpp's table (name,
// type, help, label names), and updated from any thread by its enum; render() writes the text
// exposition format (0.0.4) that /metrics serves. Debian 12 packages no Prometheus client for
// C++, so this is the small part of one the node needs: counters, gauges, histograms with labels.
#include <initializer_list>
#include <string>

namespace segnode::metrics {

enum class Family {
  // counters
  InstancesReceived,     // stored and acknowledged
  BytesReceived,         // of those instances
  InstancesRefused,      // {reason}: no_room, unreadable, invalid, store_failed, aborted
  AssociationsAccepted,  //
  AssociationsRefused,   // {reason}: called_ae, calling_ae, host
  JobsFinished,          // {model, outcome}: done, failed, rejected
  StructuresOmitted,     // {model, structure}: left out of a sent SEG, alone outside its volume range
  SendAttempts,          // {destination}
  SendFailures,          // {destination}: attempts that failed (retried or dead-lettered)
  DeadLetters,           // {destination}
  ConfigReloads,         // {result}: applied, rejected
  IoHandlerFailures,     // handlers of the io thread that threw (app/IoLoop.h); the thread goes on
  // histograms
  JobSeconds,        // {model}: claimed -> SEG written
  InferenceSeconds,  // {model}: the network's share of it
  // gauges (set just before rendering, from the database and the file system)
  Series,               // {state}
  Jobs,                 // {state}
  Deliveries,           // {state}
  OldestQueuedJobAge,   // seconds; 0 when none waits
  DiskFreeBytes,        // {path}: spool
  ConfigLoaded,         // 1 when the running config is the file's, 0 when the last reload was refused
  BuildInfo,            // {version, backend} = 1
};

// Label values in the order of the family's label names (Metrics.cpp).
using Labels = std::initializer_list<std::string>;

void add(Family counter, Labels labels = {}, double amount = 1);
void set(Family gauge, Labels labels, double value);
void clear(Family gauge);  // before a gauge's label sets are set again (a state that emptied)
void observe(Family histogram, Labels labels, double value);
std::string render();

}  // namespace segnode::metrics
