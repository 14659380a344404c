// glassbox serve: an OpenAI-compatible HTTP server (cpp-httplib) over one
// model, with token traces, the exposure policy and the audit chain.
//
//   POST /v1/chat/completions, POST /v1/completions    (stream: server-sent events)
//   GET  /v1/models[/{id}], GET /health, GET /metrics
//   GET  /v1/traces, GET /v1/traces/{id}, POST /v1/traces/{id}/analyze,
//   GET  /v1/traces/{id}/export?format=json|otel
//   GET  /v1/audit/verify, GET /v1/audit/export?since=...&format=jsonl|otel
//
// Concurrency: `parallel` worker threads, each with its own ChatSession
// (KV cache), fed by a bounded queue; a request that finds the queue full is
// answered 429. A client that disconnects cancels its generation. Every
// generation is appended to the audit store before the response completes
// (the last SSE event, or the body of a non-streaming response), so a
// client that received a complete response can find its trace after a crash.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/audit_store.h"
#include "model/model.h"
#include "server/config.h"
#include "server/openai_api.h"
#include "session/chat_session.h"

namespace glassbox::server {

// What an analyzer is given: a finished generation (live, or rebuilt from a
// stored record), the level asked for, and a context of its own on the same
// model for any forward passes (never the session's context: that one holds
// the session's KV cache).
struct AnalysisInput {
  const ChatResult& result;
  const nlohmann::ordered_json&
      messages;                // the conversation as rendered (for a raw completion: the prompt as one user message)
  const ChatOptions& options;  // the settings it was generated with
  AnalysisLevel level = AnalysisLevel::Full;
  const Model& model;
  const std::string& model_path;
  Context& context;
  bool stored_trace = false;  // true for POST /v1/traces/{id}/analyze
};

// Produces the report attached to a trace ("steps" with "text" and
// "confidence" members feed the summary exposure when present). May throw;
// the trace is then stored with {"error": message} as its report.
using TraceAnalyzer = std::function<nlohmann::ordered_json(const AnalysisInput&)>;

// The built-in report used when no analyzer is plugged in: the steps of the
// summary with the confidence of each, and overall confidence statistics.
nlohmann::ordered_json builtin_report(const ChatResult& result);

struct ModelInfo {
  std::string id;                    // the name clients use
  std::vector<std::string> aliases;  // also accepted as "model"
  std::string path;
  std::string sha256;  // of the model file
};

class Server {
 public:
  // Creates `config.parallel` sessions up front (errors surface at start).
  // Throws glassbox::Error, e.g. for a non-loopback host without keys.
  Server(const Model& model, ServerConfig config, ModelInfo info, audit::AuditStore& store,
         TraceAnalyzer analyzer = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (config.port 0: a free one).
  int bind();
  // Serves until stop(); then lets running generations end and returns.
  void run();
  // Thread-safe; cancels running generations (their traces are still stored).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace glassbox::server
