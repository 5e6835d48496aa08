#include "common/Metrics.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace segnode::metrics {
namespace {

enum class Type { Counter, Gauge, Histogram };

struct Descriptor {
  const char* name;
  Type type;
  const char* help;
  std::vector<std::string> labels;
};

// Job and inference durations run from a second (a small student on a small series) to tens of
// minutes (the teacher on a large CT on two cores).
const std::vector<double> kSecondsBuckets{1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560};

// The one table of the node's metrics, in the order of Family.
const std::vector<Descriptor>& table() {
  static const std::vector<Descriptor> t{
      {"segnode_instances_received_total", Type::Counter, "DICOM instances stored and acknowledged.", {}},
      {"segnode_received_bytes_total", Type::Counter, "Bytes of the instances stored and acknowledged.", {}},
      {"segnode_instances_refused_total", Type::Counter, "C-STOREs refused or aborted, by reason.", {"reason"}},
      {"segnode_associations_accepted_total", Type::Counter, "DICOM associations accepted.", {}},
      {"segnode_associations_refused_total", Type::Counter, "DICOM associations refused, by reason.", {"reason"}},
      {"segnode_jobs_finished_total", Type::Counter, "Segmentation jobs finished, by model and outcome.", {"model", "outcome"}},
      {"segnode_structures_omitted_total", Type::Counter,
       "Structures left out of a sent SEG because they alone fell outside their volume range.", {"model", "structure"}},
      {"segnode_send_attempts_total", Type::Counter, "C-STOREs of results attempted, by destination.", {"destination"}},
      {"segnode_send_failures_total", Type::Counter, "Failed C-STOREs of results (retried or dead-lettered).", {"destination"}},
      {"segnode_dead_letters_total", Type::Counter, "Deliveries given up after the last retry.", {"destination"}},
      {"segnode_config_reloads_total", Type::Counter, "Configuration reloads (SIGHUP), by result.", {"result"}},
      {"segnode_io_handler_failures_total", Type::Counter,
       "Handlers of the io thread (quiet periods, retention, signals, HTTP) that threw; the thread went on.", {}},
      {"segnode_job_duration_seconds", Type::Histogram, "Seconds from claiming a job to its SEG on disk.", {"model"}},
      {"segnode_inference_seconds", Type::Histogram, "Seconds of network inference per job.", {"model"}},
      {"segnode_series", Type::Gauge, "Series in the database, by state.", {"state"}},
      {"segnode_jobs", Type::Gauge, "Jobs in the database, by state.", {"state"}},
      {"segnode_deliveries", Type::Gauge, "Result deliveries (outbox rows), by state.", {"state"}},
      {"segnode_oldest_queued_job_age_seconds", Type::Gauge, "Age of the oldest queued job; 0 when none waits.", {}},
      {"segnode_disk_free_bytes", Type::Gauge, "Free bytes on the file system of a node directory.", {"path"}},
      {"segnode_config_loaded", Type::Gauge, "1 when the running configuration is the file's; 0 after a refused reload.", {}},
      {"segnode_build_info", Type::Gauge, "Build of the running node.", {"version", "backend"}},
  };
  return t;
}

struct Series {
  double value = 0;               // counter, gauge; histogram: the sum
  std::vector<uint64_t> buckets;  // histogram: counts per upper bound (not cumulative), then +Inf
};

std::mutex g_mutex;
std::map<int, std::map<std::vector<std::string>, Series>> g_series;

Series& seriesOf(Family f, Labels labels, Type expected) {
  const Descriptor& d = table().at(size_t(f));
  if (d.type != expected || labels.size() != d.labels.size())
    throw std::logic_error(std::string("metric ") + d.name + " used with the wrong type or labels");
  return g_series[int(f)][std::vector<std::string>(labels)];
}

std::string escaped(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string labelText(const Descriptor& d, const std::vector<std::string>& values, const std::string& extra = "") {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) s += (s.empty() ? "" : ",") + d.labels[i] + "=\"" + escaped(values[i]) + "\"";
  if (!extra.empty()) s += (s.empty() ? "" : ",") + extra;
  return s.empty() ? "" : "{" + s + "}";
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void add(Family counter, Labels labels, double amount) {
  std::lock_guard<std::mutex> lock(g_mutex);
  seriesOf(counter, labels, Type::Counter).value += amount;
}

void set(Family gauge, Labels labels, double value) {
  std::lock_guard<std::mutex> lock(g_mutex);
  seriesOf(gauge, labels, Type::Gauge).value = value;
}

void clear(Family gauge) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_series.erase(int(gauge));
}

void observe(Family histogram, Labels labels, double value) {
  std::lock_guard<std::mutex> lock(g_mutex);
  Series& s = seriesOf(histogram, labels, Type::Histogram);
  s.buckets.resize(kSecondsBuckets.size() + 1);
  size_t i = 0;
  while (i < kSecondsBuckets.size() && value > kSecondsBuckets[i]) ++i;
  ++s.buckets[i];
  s.value += value;
}

std::string render() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string out;
  static const char* typeNames[] = {"counter", "gauge", "histogram"};
  for (size_t f = 0; f < table().size(); ++f) {
    const Descriptor& d = table()[f];
    out += std::string("# HELP ") + d.name + " " + d.help + "\n# TYPE " + d.name + " " + typeNames[int(d.type)] + "\n";
    auto found = g_series.find(int(f));
    if (found == g_series.end() || found->second.empty()) {
      if (d.labels.empty() && d.type != Type::Histogram) out += std::string(d.name) + " 0\n";
      continue;
    }
    for (const auto& [values, s] : found->second) {
      if (d.type != Type::Histogram) {
        out += d.name + labelText(d, values) + " " + number(s.value) + "\n";
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= kSecondsBuckets.size(); ++b) {
        cumulative += s.buckets[b];
        std::string le = b < kSecondsBuckets.size() ? number(kSecondsBuckets[b]) : "+Inf";
        out += std::string(d.name) + "_bucket" + labelText(d, values, "le=\"" + le + "\"") + " " + std::to_string(cumulative) + "\n";
      }
      out += std::string(d.name) + "_sum" + labelText(d, values) + " " + number(s.value) + "\n";
      out += std::string(d.name) + "_count" + labelText(d, values) + " " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

}  // namespace segnode::metrics
