// Prometheus metrics of the server (text exposition format 0.0.4).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace glassbox::server {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1,     2.5,  5,     10,   30,  60,   120};
  void observe(double value);
  // Appends the _bucket/_sum/_count lines; `labels` like `endpoint="chat"` or "".
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<uint64_t, kBounds.size() + 1> counts_{};  // last: +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct QueueState {
  int queue_depth = 0;  // waiting for a sequence
  int in_flight = 0;    // being generated
  int parallel = 0;
  int queue_capacity = 0;
};

class Metrics {
 public:
  void request(const std::string& endpoint, int status, double seconds);
  void tokens(int64_t prompt, int64_t reasoning, int64_t answer, int64_t completion);
  void time_to_first_token(double seconds);
  void queue_wait(double seconds);
  void generation_finished(const std::string& finish_reason);
  void rejected(const std::string& reason);
  std::string render(const QueueState& q) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, uint64_t> finishes_;
  std::map<std::string, uint64_t> rejections_;
  Histogram ttft_, queue_wait_;
  int64_t prompt_tokens_ = 0, reasoning_tokens_ = 0, answer_tokens_ = 0, completion_tokens_ = 0;
};

}  // namespace glassbox::server
