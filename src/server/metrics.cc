#include "server/metrics.h"

#include <cstdio>

namespace glassbox::server {

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string with_label(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return "{" + labels + "," + extra + "}";
}

}  // namespace

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < kBounds.size() && value > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket" + with_label(labels, "le=\"" + number(kBounds[i]) + "\"") + " " +
           std::to_string(cumulative) + "\n";
  }
  cumulative += counts_[kBounds.size()];
  out += name + "_bucket" + with_label(labels, "le=\"+Inf\"") + " " + std::to_string(cumulative) + "\n";
  const std::string plain = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + plain + " " + number(sum_) + "\n";
  out += name + "_count" + plain + " " + std::to_string(count_) + "\n";
}

void Metrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
  latency_[endpoint].observe(seconds);
}

void Metrics::tokens(int64_t prompt, int64_t reasoning, int64_t answer, int64_t completion) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += prompt;
  reasoning_tokens_ += reasoning;
  answer_tokens_ += answer;
  completion_tokens_ += completion;
}

void Metrics::time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(seconds);
}

void Metrics::queue_wait(double seconds) {
  std::lock_guard lock(mutex_);
  queue_wait_.observe(seconds);
}

void Metrics::generation_finished(const std::string& finish_reason) {
  std::lock_guard lock(mutex_);
  ++finishes_[finish_reason];
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++rejections_[reason];
}

std::string Metrics::render(const QueueState& q) const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP glassbox_requests_total HTTP requests by endpoint and status code.\n";
  out += "# TYPE glassbox_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "glassbox_requests_total{endpoint=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  out += "# HELP glassbox_request_duration_seconds Time from request to complete response.\n";
  out += "# TYPE glassbox_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_)
    h.render(out, "glassbox_request_duration_seconds", "endpoint=\"" + endpoint + "\"");
  out += "# HELP glassbox_time_to_first_token_seconds Time from request to the first generated text.\n";
  out += "# TYPE glassbox_time_to_first_token_seconds histogram\n";
  ttft_.render(out, "glassbox_time_to_first_token_seconds", "");
  out += "# HELP glassbox_queue_wait_seconds Time a request waited for a free sequence.\n";
  out += "# TYPE glassbox_queue_wait_seconds histogram\n";
  queue_wait_.render(out, "glassbox_queue_wait_seconds", "");
  auto counter = [&](const char* name, const char* help, int64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
  };
  counter("glassbox_prompt_tokens_total", "Prompt tokens processed.", prompt_tokens_);
  counter("glassbox_reasoning_tokens_total", "Reasoning (thinking) tokens generated.", reasoning_tokens_);
  counter("glassbox_answer_tokens_total", "Answer tokens generated.", answer_tokens_);
  counter("glassbox_completion_tokens_total", "All generated tokens (reasoning, answer, markers).", completion_tokens_);
  out += "# HELP glassbox_generations_total Finished generations by finish reason.\n";
  out += "# TYPE glassbox_generations_total counter\n";
  for (const auto& [reason, n] : finishes_)
    out += "glassbox_generations_total{finish_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  out += "# HELP glassbox_rejected_requests_total Requests refused before generation, by reason.\n";
  out += "# TYPE glassbox_rejected_requests_total counter\n";
  for (const auto& [reason, n] : rejections_)
    out += "glassbox_rejected_requests_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  auto gauge = [&](const char* name, const char* help, int v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
           std::to_string(v) + "\n";
  };
  gauge("glassbox_queue_depth", "Requests waiting for a free sequence.", q.queue_depth);
  gauge("glassbox_sequences_in_flight", "Sequences being generated.", q.in_flight);
  gauge("glassbox_parallel_sequences", "Sequences the server generates at once.", q.parallel);
  gauge("glassbox_queue_capacity", "Requests that may wait before 429.", q.queue_capacity);
  return out;
}

}  // namespace glassbox::server
