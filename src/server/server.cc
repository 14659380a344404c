#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "audit/canonical_json.h"
#include "audit/otel.h"
#include "audit/sha256.h"
#include "base/error.h"
#include "chat/chat_template.h"
#include "chat/reasoning.h"
#include "server/metrics.h"
#include "server/policy.h"
#include "server/reasoning_summary.h"
#include "server/trace_record.h"
#include "web/web_assets.h"

namespace glassbox::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxJsonDepth = 64;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// JSON text of a response; invalid UTF-8 can only come from model output and
// is replaced rather than failing the response.
std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string sse(const ojson& j) { return "data: " + dump(j) + "\n\n"; }

void set_json(httplib::Response& res, int status, const ojson& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void set_error(httplib::Response& res, const ApiError& e) { set_json(res, e.status, error_body(e)); }

// The route a path belongs to, for metrics labels (no ids in label values).
std::string route_of(const std::string& path) {
  static const char* kFixed[] = {"/v1/chat/completions", "/v1/completions",  "/v1/models",      "/health", "/metrics",
                                 "/v1/traces",           "/v1/audit/verify", "/v1/audit/export"};
  for (const char* r : kFixed)
    if (path == r) return r;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  if (path.rfind("/v1/traces/", 0) == 0) {
    if (path.size() > 8 && path.compare(path.size() - 8, 8, "/analyze") == 0) return "/v1/traces/{id}/analyze";
    if (path.size() > 7 && path.compare(path.size() - 7, 7, "/export") == 0) return "/v1/traces/{id}/export";
    return "/v1/traces/{id}";
  }
  return "other";
}

thread_local Clock::time_point t_request_start{};

// One OpenAI logprob entry: {token, logprob, bytes, top_logprobs}.
ojson logprob_entry(const TraceToken& t, int top_n, const Tokenizer& tok) {
  auto bytes_of = [](const std::string& s) {
    ojson b = ojson::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
  };
  auto finite = [](float v) { return std::isfinite(v) ? ojson(v) : ojson(-9999.0); };
  ojson e;
  e["token"] = audit::sanitize_utf8(t.text);
  e["logprob"] = finite(t.logprob);
  e["bytes"] = bytes_of(t.text);
  ojson top = ojson::array();
  for (int i = 0; i < top_n && i < static_cast<int>(t.top.size()); ++i) {
    const std::string text = tok.token_bytes(t.top[static_cast<size_t>(i)].id, true);
    top.push_back({{"token", audit::sanitize_utf8(text)},
                   {"logprob", finite(t.top[static_cast<size_t>(i)].logprob)},
                   {"bytes", bytes_of(text)}});
  }
  e["top_logprobs"] = top;
  return e;
}

// Legacy /v1/completions logprobs: parallel arrays.
ojson legacy_logprobs(const std::vector<const TraceToken*>& tokens, int top_n, const Tokenizer& tok) {
  ojson out;
  ojson texts = ojson::array(), lps = ojson::array(), tops = ojson::array(), offsets = ojson::array();
  size_t offset = 0;
  for (const TraceToken* t : tokens) {
    texts.push_back(audit::sanitize_utf8(t->text));
    lps.push_back(std::isfinite(t->logprob) ? ojson(t->logprob) : ojson(-9999.0));
    ojson top = ojson::object();
    for (int i = 0; i < top_n && i < static_cast<int>(t->top.size()); ++i)
      top[audit::sanitize_utf8(tok.token_bytes(t->top[static_cast<size_t>(i)].id, true))] =
          t->top[static_cast<size_t>(i)].logprob;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += t->text.size();
  }
  out["tokens"] = texts;
  out["token_logprobs"] = lps;
  out["top_logprobs"] = tops;
  out["text_offset"] = offsets;
  return out;
}

std::vector<const TraceToken*> pointers(const std::vector<TraceToken>& tokens) {
  std::vector<const TraceToken*> out;
  out.reserve(tokens.size());
  for (const TraceToken& t : tokens) out.push_back(&t);
  return out;
}

// Turns reasoning/content pieces into the raw text of reasoning_format
// "none": the thinking block written out with its markers.
class RawFormatter {
 public:
  RawFormatter(const chat::ReasoningMarkers& m) : m_(m) {}
  std::string reasoning(const std::string& text) {
    std::string out;
    if (!opened_) {
      opened_ = true;
      if (!m_.prompt_opens_block) out += m_.open + "\n";
    }
    return out + text;
  }
  std::string content(const std::string& text, bool block_seen) { return close(block_seen) + text; }
  // End of output: close a block that was shown (unless it never closed).
  std::string finish(bool block_seen, bool unclosed) { return unclosed ? "" : close(block_seen); }

 private:
  std::string close(bool block_seen) {
    if (closed_ || !(opened_ || block_seen || m_.prompt_opens_block)) return "";
    closed_ = true;
    std::string out;
    if (!opened_ && !m_.prompt_opens_block) out += m_.open + "\n";
    opened_ = true;
    return out + "\n" + m_.close + "\n\n";
  }
  chat::ReasoningMarkers m_;
  bool opened_ = false, closed_ = false;
};

}  // namespace

ojson builtin_report(const ChatResult& result) {
  const std::vector<StepSummary> steps = summarize_thinking(thinking_tokens(result.trace));
  ojson report;
  report["analyzer"] = "glassbox-builtin";
  ojson s = ojson::array();
  for (const StepSummary& step : steps)
    s.push_back({{"step", step.step},
                 {"first_line", step.title},
                 {"tokens", step.tokens},
                 {"confidence", step.confidence},
                 {"mean_logprob", step.mean_logprob}});
  report["steps"] = s;
  double sum = 0, lowest = 0;
  int n = 0, lowest_step = 0;
  for (const TraceToken& t : result.trace)
    if (is_thinking_token(t)) {
      sum += t.confidence;
      ++n;
    }
  for (const StepSummary& step : steps)
    if (step.tokens > 0 && (lowest_step == 0 || step.confidence < lowest)) {
      lowest = step.confidence;
      lowest_step = step.step;
    }
  report["reasoning_tokens"] = n;
  report["mean_confidence"] = n ? sum / n : 0.0;
  report["least_confident_step"] = lowest_step ? ojson(lowest_step) : ojson(nullptr);
  return report;
}

// ---------------------------------------------------------------- jobs

struct Job {
  enum class Kind { Generate, Analyze };
  Kind kind = Kind::Generate;
  Principal principal;
  Clock::time_point received = Clock::now();
  std::atomic<bool> cancelled{false};

  // Generate
  GenerationRequest req;
  ojson request_body;
  std::string trace_id, response_id;
  int64_t created_ms = 0;
  chat::ReasoningMarkers markers;

  // Analyze
  audit::StoredRecord stored;
  AnalysisLevel level = AnalysisLevel::Full;

  // Results, handed to the HTTP thread.
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::string> out;  // SSE events
  bool finished = false;
  int status = 200;
  std::string body;
  // Set by the worker running the job: frees its admission slot. Called once,
  // by finish(), before the response is handed over, so that a client that
  // has its answer and sends the next request at once finds the slot free.
  std::function<void()> release_slot;

  void push(std::string event) {
    std::lock_guard lock(m);
    out.push_back(std::move(event));
    cv.notify_all();
  }
  void finish(int s, std::string b) {
    if (release_slot) std::exchange(release_slot, nullptr)();
    std::lock_guard lock(m);
    status = s;
    body = std::move(b);
    finished = true;
    cv.notify_all();
  }
};

struct Worker {
  std::unique_ptr<ChatSession> session;
  std::unique_ptr<Context> analysis_context;  // created on first use
  std::thread thread;
};

// ---------------------------------------------------------------- impl

struct Server::Impl {
  Impl(const Model& m, ServerConfig c, ModelInfo i, audit::AuditStore& s, TraceAnalyzer a)
      : model(m), config(std::move(c)), info(std::move(i)), store(s), analyzer(std::move(a)), keys(config.keys) {}

  const Model& model;
  ServerConfig config;
  ModelInfo info;
  audit::AuditStore& store;
  TraceAnalyzer analyzer;
  KeyRing keys;
  Metrics metrics;
  RequestDefaults defaults;
  std::string model_template;  // tokenizer.chat_template
  ContextOptions context_options;
  int n_ctx = 0;
  int64_t started_at = 0;
  std::string fingerprint;

  httplib::Server http;
  int port = -1;

  std::vector<Worker> workers;
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<std::shared_ptr<Job>> queue;
  int in_flight = 0;
  bool stopping = false;
  std::atomic<bool> cancel_all{false};

  std::thread retention_thread;
  std::mutex retention_mutex;
  std::condition_variable retention_cv;

  // ------------------------------------------------------------ setup

  void init() {
    if (keys.open() && !is_loopback_host(config.host))
      throw Error("refusing to listen on '" + config.host +
                  "' without API keys: with no keys configured the server allows everything, so it only "
                  "listens on loopback (add keys with 'glassbox keys add', or use --host 127.0.0.1)");
    if (!model.has_tokenizer()) throw Error("the model has no tokenizer");
    const Tokenizer& tok = model.tokenizer();
    model_template = model.file().get_string("tokenizer.chat_template").value_or("");
    defaults.model_id = info.id;
    defaults.model_aliases = info.aliases;
    defaults.limits = config.limits;
    defaults.effort_budgets = config.reasoning_effort_budgets;
    defaults.template_kwargs = config.template_kwargs;
    defaults.trace_top_k = config.trace_top_k;
    if (!config.template_file.empty()) {
      std::ifstream in(config.template_file, std::ios::binary);
      if (!in) throw Error("cannot open chat template '" + config.template_file + "'");
      std::ostringstream ss;
      ss << in.rdbuf();
      defaults.template_override = ss.str();
      try {
        chat::ChatTemplate check(defaults.template_override);
      } catch (const std::exception& e) {
        throw Error("chat template '" + config.template_file + "': " + e.what());
      }
    }
    if (tok.add_bos_default() && tok.bos() >= 0) defaults.bos_text = tok.token_text(tok.bos());
    // Sampling defaults: the model's recommendation (general.sampling.*) over glassbox's.
    const gguf::File& f = model.file();
    if (auto v = f.get_float("general.sampling.temp")) defaults.sampling.temperature = static_cast<float>(*v);
    if (auto v = f.get_int("general.sampling.top_k")) defaults.sampling.top_k = static_cast<int>(*v);
    if (auto v = f.get_float("general.sampling.top_p")) defaults.sampling.top_p = static_cast<float>(*v);
    if (auto v = f.get_float("general.sampling.min_p")) defaults.sampling.min_p = static_cast<float>(*v);
    try {
      validate(defaults.sampling);
    } catch (const Error&) {
      defaults.sampling = SamplingParams{};  // a model's odd recommendation must not break every request
    }

    context_options.n_ctx = config.ctx_size;
    context_options.kv_cache = config.kv_cache;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    context_options.n_threads = config.threads > 0 ? config.threads : std::max(1, cores / std::max(1, config.parallel));
    workers.resize(static_cast<size_t>(config.parallel));
    for (Worker& w : workers) w.session = std::make_unique<ChatSession>(model, context_options);
    n_ctx = workers.front().session->context().n_ctx();
    started_at = audit::now_ms();
    fingerprint = "glassbox-" + info.sha256.substr(0, 12);
    setup_routes();
  }

  // ------------------------------------------------------------ queue

  bool submit(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(queue_mutex);
    if (stopping) return false;
    const int idle = static_cast<int>(workers.size()) - in_flight;
    if (static_cast<int>(queue.size()) >= std::max(0, idle) + config.queue) return false;
    queue.push_back(job);
    queue_cv.notify_one();
    return true;
  }

  QueueState queue_state() {
    std::lock_guard lock(queue_mutex);
    return {static_cast<int>(queue.size()), in_flight, static_cast<int>(workers.size()), config.queue};
  }

  void worker_main(Worker& w) {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(queue_mutex);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        job = queue.front();
        queue.pop_front();
        ++in_flight;
      }
      bool released = false;
      auto release = [this, &released] {
        std::lock_guard lock(queue_mutex);
        --in_flight;
        released = true;
      };
      job->release_slot = release;
      try {
        if (job->kind == Job::Kind::Generate)
          run_generate(w, *job);
        else
          run_analyze(w, *job);
      } catch (const std::exception& e) {
        fail_job(*job, ApiError(500, std::string("internal error: ") + e.what()));
      }
      job->release_slot = nullptr;
      if (!released) release();
    }
  }

  void fail_job(Job& job, const ApiError& e) {
    if (job.req.stream && job.kind == Job::Kind::Generate) {
      // Headers are sent: an error event, as OpenAI streams do.
      job.push(sse(error_body(e)));
      job.finish(e.status, "");
    } else {
      job.finish(e.status, dump(error_body(e)));
    }
  }

  // ------------------------------------------------------------ prompt check

  // Renders and tokenizes the prompt in the HTTP thread so that template
  // errors and an overlong prompt are 400s before anything is queued.
  chat::ReasoningMarkers check_prompt(const GenerationRequest& g) const {
    const std::string& source = g.options.template_override.empty() ? model_template : g.options.template_override;
    if (source.empty())
      throw ApiError(500, "the model has no chat template: start the server with --template FILE", "", "no_template");
    chat::ChatRequest req;
    req.messages = g.messages;
    req.kwargs = g.options.template_kwargs;
    if (g.options.no_think && !req.kwargs.contains("enable_thinking") &&
        source.find("enable_thinking") != std::string::npos)
      req.kwargs["enable_thinking"] = false;
    const Tokenizer& tok = model.tokenizer();
    req.bos_token = tok.bos() >= 0 ? tok.token_text(tok.bos()) : "";
    req.eos_token = tok.eos() >= 0 ? tok.token_text(tok.eos()) : "";
    std::string prompt;
    try {
      prompt = chat::render_chat(source, req);
    } catch (const std::exception& e) {
      throw ApiError(400, std::string("the chat template rejected the messages: ") + e.what(), "messages",
                     "template_error");
    }
    const size_t n = tok.encode(prompt, true, false).size();
    if (n == 0) throw ApiError(400, "the rendered prompt is empty", "messages", "invalid_value");
    if (static_cast<int>(n) >= n_ctx)
      throw ApiError(400,
                     "This model's maximum context length is " + std::to_string(n_ctx) +
                         " tokens. However, your messages resulted in " + std::to_string(n) + " tokens.",
                     "messages", "context_length_exceeded");
    return chat::detect_markers(source, prompt, [&](std::string_view t) { return tok.find_token(t) >= 0; });
  }

  // ------------------------------------------------------------ generation

  ojson usage_json(const ChatResult& r) const {
    const int64_t prompt = static_cast<int64_t>(r.prompt_tokens.size());
    const int64_t completion = static_cast<int64_t>(r.trace.size());
    return {{"prompt_tokens", prompt},
            {"completion_tokens", completion},
            {"total_tokens", prompt + completion},
            {"prompt_tokens_details", {{"cached_tokens", 0}}},
            {"completion_tokens_details", {{"reasoning_tokens", r.reasoning_tokens}}}};
  }

  void run_generate(Worker& w, Job& job) {
    const Tokenizer& tok = model.tokenizer();
    const GenerationRequest& g = job.req;
    const double queue_seconds = seconds_since(job.received);
    metrics.queue_wait(queue_seconds);
    if (job.cancelled || cancel_all) {
      metrics.rejected("client_gone_before_start");
      job.finish(499, "");
      return;
    }
    const Exposure exposure = job.principal.exposure;
    const bool chat = g.endpoint == Endpoint::Chat;
    const bool full = exposure == Exposure::Full;
    const bool raw = full && g.reasoning_format == ReasoningFormat::None;
    const bool summary = exposure == Exposure::Summary;
    const bool reasoning_lp = full && g.reasoning_logprobs;
    const int64_t created = job.created_ms / 1000;
    const std::string object = chat ? "chat.completion.chunk" : "text_completion";

    auto chunk = [&](ojson choice) {
      ojson c;
      c["id"] = job.response_id;
      c["object"] = object;
      c["created"] = created;
      c["model"] = info.id;
      c["system_fingerprint"] = fingerprint;
      c["trace_id"] = job.trace_id;
      c["choices"] = ojson::array({std::move(choice)});
      return c;
    };
    auto chat_choice = [&](ojson delta, ojson logprobs = nullptr, ojson finish = nullptr) {
      return ojson{{"index", 0},
                   {"delta", std::move(delta)},
                   {"logprobs", std::move(logprobs)},
                   {"finish_reason", std::move(finish)}};
    };

    // Streaming state.
    RawFormatter raw_format(job.markers);
    // Copies: the session's trace vector grows (and moves) while we stream.
    std::vector<TraceToken> pending_content_lp, pending_reasoning_lp;
    std::vector<ThinkingToken> thinking_seen;
    bool block_seen = false, summary_sent = false, first_text = true;
    const auto t_start = Clock::now();
    std::string raw_stream_text;  // completions logprob offsets need nothing more

    auto mark_first_text = [&] {
      if (!first_text) return;
      first_text = false;
      metrics.time_to_first_token(seconds_since(job.received));
    };
    auto drain = [&](std::vector<TraceToken>& pending) {
      ojson entries = ojson::array();
      for (const TraceToken& t : pending) entries.push_back(logprob_entry(t, g.top_logprobs, tok));
      pending.clear();
      return entries;
    };
    auto send_summary = [&] {
      if (!summary || summary_sent || thinking_seen.empty()) return;
      summary_sent = true;
      const ojson steps = summary_json(summarize_thinking(thinking_seen));
      if (chat)
        job.push(sse(chunk(chat_choice({{"reasoning_summary", steps}}))));
      else
        job.push(sse(chunk({{"text", ""},
                            {"index", 0},
                            {"logprobs", nullptr},
                            {"finish_reason", nullptr},
                            {"reasoning_summary", steps}})));
    };
    auto emit_text = [&](const std::string& piece, bool is_reasoning) {
      if (piece.empty()) return;
      // Pieces never split a valid UTF-8 sequence, so this matches the stored text.
      const std::string text = audit::sanitize_utf8(piece);
      mark_first_text();
      if (chat) {
        ojson delta, lp = nullptr;
        if (is_reasoning && !raw) {
          delta["reasoning_content"] = text;
          if (reasoning_lp && !pending_reasoning_lp.empty()) lp = {{"reasoning_content", drain(pending_reasoning_lp)}};
        } else {
          delta["content"] = text;
          if (g.logprobs && !pending_content_lp.empty()) lp = {{"content", drain(pending_content_lp)}};
        }
        job.push(sse(chunk(chat_choice(std::move(delta), std::move(lp)))));
      } else {
        ojson lp = nullptr;
        if (g.logprobs && !pending_content_lp.empty()) {
          lp = legacy_logprobs(pointers(pending_content_lp), g.top_logprobs, tok);
          pending_content_lp.clear();
        }
        job.push(sse(chunk({{"text", text}, {"index", 0}, {"logprobs", std::move(lp)}, {"finish_reason", nullptr}})));
      }
    };

    StreamCallbacks cb;
    cb.should_stop = [&] { return job.cancelled.load() || cancel_all.load(); };
    if (g.stream) {
      if (chat) job.push(sse(chunk(chat_choice({{"role", "assistant"}}))));
      cb.on_token = [&](const TraceToken& t) {
        if (t.phase == TokenPhase::OpenMarker || t.phase == TokenPhase::Thinking || t.phase == TokenPhase::CloseMarker)
          block_seen = true;
        if (is_thinking_token(t)) {
          if (summary) thinking_seen.push_back({t.text, t.confidence, t.logprob});
          if (reasoning_lp) pending_reasoning_lp.push_back(t);
          if (raw && g.logprobs) pending_content_lp.push_back(t);
        } else if (g.logprobs && !tok.is_end_of_generation(t.id) && (raw || is_answer_token(t, tok))) {
          pending_content_lp.push_back(t);
        }
      };
      cb.on_reasoning = [&](const std::string& text) {
        if (!full) return;
        emit_text(raw ? raw_format.reasoning(text) : text, true);
      };
      cb.on_content = [&](const std::string& text) {
        send_summary();
        emit_text(raw ? raw_format.content(text, block_seen) : text, false);
      };
    } else {
      cb.on_reasoning = [&](const std::string&) { mark_first_text(); };
      cb.on_content = [&](const std::string&) { mark_first_text(); };
    }

    ChatResult r;
    try {
      r = w.session->generate(g.messages, g.options, cb);
    } catch (const Error& e) {
      // The prompt was checked before queueing; what is left is the model's side.
      metrics.generation_finished("error");
      fail_job(job, ApiError(400, e.what(), "", "generation_failed"));
      return;
    }
    (void)t_start;
    (void)raw_stream_text;
    metrics.generation_finished(r.finish_reason);
    metrics.tokens(static_cast<int64_t>(r.prompt_tokens.size()), r.reasoning_tokens, r.content_tokens,
                   static_cast<int64_t>(r.trace.size()));

    // The report: the plugged analyzer, or the built-in one.
    ojson report = nullptr;
    if (g.analysis != AnalysisLevel::None) report = analyse(w, r, g.messages, g.options, g.analysis, /*stored=*/false);

    RecordContext rc;
    rc.trace_id = job.trace_id;
    rc.response_id = job.response_id;
    rc.endpoint = chat ? "chat.completions" : "completions";
    rc.model_id = info.id;
    rc.model_file = info.path;
    rc.model_sha256 = info.sha256;
    rc.key_name = job.principal.key_name;
    rc.created_at_ms = job.created_ms;
    rc.queue_ms = queue_seconds * 1000.0;
    rc.request = job.request_body;
    rc.parameters = g.parameters;
    rc.report = report;
    audit::StoredRecord stored;
    try {
      stored = store.append(make_trace_record(r, rc, tok));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "glassbox serve: could not record trace %s: %s\n", job.trace_id.c_str(), e.what());
      fail_job(job, ApiError(500, "the trace could not be recorded in the audit store, so the response is withheld", "",
                             "audit_store_error"));
      return;
    }
    if (r.finish_reason == "cancelled") {
      job.finish(499, "");
      return;
    }

    const std::string finish = r.finish_reason == "length" ? "length" : "stop";
    ojson glassbox_ext = {
        {"trace_id", job.trace_id},
        {"audit_seq", stored.seq},
        {"exposure", to_string(exposure)},
        {"thinking", {{"forced_closed", r.thinking_forced_closed}, {"unclosed", r.thinking_unclosed}}}};
    if (full && !report.is_null()) glassbox_ext["report"] = report;

    if (g.stream) {
      if (raw) emit_text(raw_format.finish(block_seen, r.thinking_unclosed), false);
      send_summary();
      // Tokens whose text the parser held to the end, or that carried none.
      if (chat) {
        ojson lp = ojson::object();
        if (g.logprobs && !pending_content_lp.empty()) lp["content"] = drain(pending_content_lp);
        if (reasoning_lp && !pending_reasoning_lp.empty()) lp["reasoning_content"] = drain(pending_reasoning_lp);
        if (!lp.empty()) job.push(sse(chunk(chat_choice(ojson::object(), lp))));
      }
      ojson finish_chunk = chat ? chunk(chat_choice(ojson::object(), nullptr, finish)) : ojson();
      if (!chat) {
        ojson lp = nullptr;
        if (g.logprobs && !pending_content_lp.empty())
          lp = legacy_logprobs(pointers(pending_content_lp), g.top_logprobs, tok);
        finish_chunk = chunk({{"text", ""}, {"index", 0}, {"logprobs", lp}, {"finish_reason", finish}});
      }
      // The usage chunk (choices: []) unless stream_options.include_usage is
      // false; the glassbox extension rides on the last chunk either way.
      if (g.include_usage) {
        job.push(sse(finish_chunk));
        ojson last = chunk(nullptr);
        last["choices"] = ojson::array();
        last["usage"] = usage_json(r);
        last["glassbox"] = glassbox_ext;
        job.push(sse(last));
      } else {
        finish_chunk["glassbox"] = glassbox_ext;
        job.push(sse(finish_chunk));
      }
      job.push("data: [DONE]\n\n");
      job.finish(200, "");
      return;
    }

    // Non-streaming body.
    ojson body;
    body["id"] = job.response_id;
    body["object"] = chat ? "chat.completion" : "text_completion";
    body["created"] = created;
    body["model"] = info.id;
    body["system_fingerprint"] = fingerprint;
    body["trace_id"] = job.trace_id;
    std::string text;
    if (raw) {
      RawFormatter f(job.markers);
      bool block = false;
      for (const TraceToken& t : r.trace)
        block |=
            t.phase == TokenPhase::OpenMarker || t.phase == TokenPhase::Thinking || t.phase == TokenPhase::CloseMarker;
      if (!r.reasoning.empty()) text += f.reasoning(r.reasoning);
      text += f.content(r.content, block);
      text += f.finish(block, r.thinking_unclosed);
    } else {
      text = r.content;
    }
    std::vector<const TraceToken*> answer_tokens, reasoning_tokens;
    for (const TraceToken& t : r.trace) {
      if (tok.is_end_of_generation(t.id)) continue;
      if (raw || is_answer_token(t, tok)) answer_tokens.push_back(&t);
      if (is_thinking_token(t)) reasoning_tokens.push_back(&t);
    }
    ojson summary_steps = nullptr;
    if (summary && r.reasoning_tokens > 0) {
      std::vector<StepSummary> steps;
      if (!report.is_null()) steps = summarize_report(json(report));
      if (steps.empty()) steps = summarize_thinking(thinking_tokens(r.trace));
      summary_steps = summary_json(steps);
    }
    ojson choice;
    choice["index"] = 0;
    if (chat) {
      ojson message = {{"role", "assistant"}, {"content", audit::sanitize_utf8(text)}};
      if (full && !raw && !r.reasoning.empty()) message["reasoning_content"] = audit::sanitize_utf8(r.reasoning);
      if (!summary_steps.is_null()) message["reasoning_summary"] = summary_steps;
      choice["message"] = message;
      ojson lp = nullptr;
      if (g.logprobs || reasoning_lp) {
        lp = ojson::object();
        if (g.logprobs) {
          ojson entries = ojson::array();
          for (const TraceToken* t : answer_tokens) entries.push_back(logprob_entry(*t, g.top_logprobs, tok));
          lp["content"] = entries;
        }
        if (reasoning_lp) {
          ojson entries = ojson::array();
          for (const TraceToken* t : reasoning_tokens) entries.push_back(logprob_entry(*t, g.top_logprobs, tok));
          lp["reasoning_content"] = entries;
        }
      }
      choice["logprobs"] = lp;
    } else {
      choice["text"] = audit::sanitize_utf8(text);
      choice["logprobs"] = g.logprobs ? legacy_logprobs(answer_tokens, g.top_logprobs, tok) : ojson(nullptr);
      if (!summary_steps.is_null()) choice["reasoning_summary"] = summary_steps;
    }
    choice["finish_reason"] = finish;
    body["choices"] = ojson::array({choice});
    body["usage"] = usage_json(r);
    body["glassbox"] = glassbox_ext;
    job.finish(200, dump(body));
  }

  ojson analyse(Worker& w, const ChatResult& r, const ojson& messages, const ChatOptions& options, AnalysisLevel level,
                bool stored) {
    if (!analyzer) return builtin_report(r);
    try {
      if (!w.analysis_context) w.analysis_context = std::make_unique<Context>(model, context_options);
      AnalysisInput in{r, messages, options, level, model, info.path, *w.analysis_context, stored};
      return analyzer(in);
    } catch (const std::exception& e) {
      return {{"error", audit::sanitize_utf8(e.what())}};
    }
  }

  void run_analyze(Worker& w, Job& job) {
    const json record = job.stored.parsed();
    const ChatResult r = result_from_record(record, model.tokenizer());
    // The conversation and settings as generated: the stored request parsed
    // again (the recorded seed replaces a drawn one).
    GenerationRequest g;
    const ojson request = record.contains("request") ? ojson(record["request"]) : ojson::object();
    try {
      g = record.value("endpoint", "") == "completions" ? parse_completion_request(request, defaults)
                                                        : parse_chat_request(request, defaults);
    } catch (const ApiError&) {
      // The server's limits changed since: the messages as stored, default settings.
      g.messages =
          request.contains("messages") && request["messages"].is_array() ? request["messages"] : ojson::array();
      g.options.template_override = defaults.template_override;
      g.options.template_kwargs = defaults.template_kwargs;
    }
    if (record.contains("parameters") && record["parameters"].contains("seed") &&
        record["parameters"]["seed"].is_number_unsigned())
      g.options.sampling.seed = record["parameters"]["seed"].get<uint64_t>();
    ojson report = analyse(w, r, g.messages, g.options, job.level, /*stored=*/true);
    json rec = {{"kind", "analysis"},
                {"created_at", audit::now_ms()},
                {"trace_id", job.stored.trace_id},
                {"trace_seq", job.stored.seq},
                {"trace_hash", job.stored.hash},
                {"model", info.id},
                {"model_sha256", info.sha256},
                {"key_name", job.principal.key_name},
                {"level", to_string(job.level)},
                {"report", audit::sanitized(json(report))}};
    const audit::StoredRecord stored = store.append(std::move(rec));
    ojson body = {{"object", "trace.analysis"}, {"trace_id", job.stored.trace_id}, {"level", to_string(job.level)},
                  {"audit_seq", stored.seq},    {"audit_hash", stored.hash},       {"report", report}};
    job.finish(200, dump(body));
  }

  // ------------------------------------------------------------ HTTP

  Principal authenticate(const httplib::Request& req) const {
    return keys.authenticate(req.get_header_value("Authorization"), req.get_header_value("x-api-key"));
  }

  ojson parse_body(const httplib::Request& req) const {
    if (req.body.empty())
      throw ApiError(400, "the request body is empty: a JSON object was expected", "", "invalid_json");
    if (audit::json_nesting_depth(req.body) > kMaxJsonDepth)
      throw ApiError(400, "the JSON body is nested too deeply", "", "invalid_json");
    try {
      return ojson::parse(req.body);
    } catch (const ojson::exception& e) {
      throw ApiError(400, std::string("We could not parse the JSON body of your request: ") + e.what(), "",
                     "invalid_json");
    }
  }

  // Runs a handler, turning ApiError and anything else into JSON errors.
  template <typename F>
  static httplib::Server::Handler guarded(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        set_error(res, e);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "glassbox serve: %s %s: %s\n", req.method.c_str(), req.path.c_str(), e.what());
        set_error(res, ApiError(500, std::string("internal error: ") + e.what(), "", "internal_error"));
      }
    };
  }

  void handle_generate(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
    const Principal p = authenticate(req);
    require_generate(p);
    const ojson body = parse_body(req);
    auto job = std::make_shared<Job>();
    job->req =
        endpoint == Endpoint::Chat ? parse_chat_request(body, defaults) : parse_completion_request(body, defaults);
    job->markers = check_prompt(job->req);
    job->principal = p;
    job->request_body = body;
    job->trace_id = audit::random_hex(16);
    job->response_id = (endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-") + job->trace_id;
    job->created_ms = audit::now_ms();
    if (!submit(job)) {
      metrics.rejected("queue_full");
      res.set_header("Retry-After", "1");
      throw ApiError(
          429, "the server is busy: " + std::to_string(config.queue) + " requests are already waiting; retry shortly",
          "", "queue_full");
    }
    res.set_header("X-Glassbox-Trace-Id", job->trace_id);
    res.set_header("Cache-Control", "no-cache");
    auto release = [job](bool success) {
      if (!success) job->cancelled = true;
    };
    if (job->req.stream) {
      res.set_chunked_content_provider(
          "text/event-stream",
          [job](size_t, httplib::DataSink& sink) {
            std::deque<std::string> events;
            bool finished = false;
            {
              std::unique_lock lock(job->m);
              job->cv.wait_for(lock, std::chrono::milliseconds(100),
                               [&] { return !job->out.empty() || job->finished; });
              events.swap(job->out);
              finished = job->finished;
            }
            for (const std::string& e : events) {
              if (!sink.write(e.data(), e.size())) {
                job->cancelled = true;
                return false;
              }
            }
            if (finished) {
              sink.done();
              return true;
            }
            if (events.empty() && !sink.is_writable()) {  // the client went away
              job->cancelled = true;
              return false;
            }
            return true;
          },
          release);
    } else {
      // The status is sent now; the body when the trace is stored. Waiting in
      // the provider lets a disconnect be noticed and cancel the generation.
      res.set_chunked_content_provider(
          "application/json",
          [job](size_t, httplib::DataSink& sink) {
            std::string body;
            {
              std::unique_lock lock(job->m);
              while (!job->finished) {
                job->cv.wait_for(lock, std::chrono::milliseconds(100));
                if (!job->finished && !sink.is_writable()) {
                  job->cancelled = true;
                  return false;
                }
              }
              body = job->body;
            }
            if (!body.empty() && !sink.write(body.data(), body.size())) return false;
            sink.done();
            return true;
          },
          release);
    }
  }

  // Waits for a job that answers with a plain body (analysis).
  void wait_plain(const std::shared_ptr<Job>& job, httplib::Response& res) {
    std::unique_lock lock(job->m);
    job->cv.wait(lock, [&] { return job->finished; });
    res.status = job->status;
    res.set_content(job->body, "application/json");
  }

  audit::StoredRecord find_trace_or_404(const std::string& id) {
    if (id.empty() || id.size() > 64)
      throw ApiError(404, "no trace with id '" + audit::sanitize_utf8(id) + "'", "", "not_found");
    auto rec = store.find_trace(id);
    if (!rec) throw ApiError(404, "no trace with id '" + audit::sanitize_utf8(id) + "'", "", "not_found");
    return std::move(*rec);
  }

  ojson full_trace_view(const audit::StoredRecord& rec, const Principal& p) {
    const Exposure exposure = trace_exposure(p);
    ojson view = trace_view(rec.parsed(), exposure);
    view["audit"] = {{"seq", rec.seq}, {"hash", rec.hash}, {"prev_hash", rec.prev_hash}};
    if (exposure == Exposure::Full) {
      audit::RecordQuery q;
      q.kind = "analysis";
      q.trace_id = rec.trace_id;
      q.limit = 20;
      ojson analyses = ojson::array();
      for (const auto& a : store.query(q)) {
        const json body = a.parsed();
        analyses.push_back({{"audit_seq", a.seq},
                            {"created_at", a.created_at_ms},
                            {"key_name", a.key_name},
                            {"level", body.value("level", "")},
                            {"report", ojson(body.contains("report") ? body["report"] : json(nullptr))}});
      }
      view["analyses"] = analyses;
    }
    return view;
  }

  static std::optional<int64_t> time_param(const httplib::Request& req, const char* name) {
    if (!req.has_param(name)) return std::nullopt;
    try {
      return audit::parse_time_ms(req.get_param_value(name));
    } catch (const Error& e) {
      throw ApiError(400, e.what(), name, "invalid_value");
    }
  }

  static int int_param(const httplib::Request& req, const char* name, int def, int lo, int hi) {
    if (!req.has_param(name)) return def;
    const std::string v = req.get_param_value(name);
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || x < lo || x > hi)
      throw ApiError(
          400,
          std::string("'") + name + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
          name, "invalid_value");
    return static_cast<int>(x);
  }

  void handle_list_traces(const httplib::Request& req, httplib::Response& res) {
    const Principal p = authenticate(req);
    audit::RecordQuery q;
    q.kind = "trace";
    q.since_ms = time_param(req, "since");
    q.until_ms = time_param(req, "until");
    if (req.has_param("model")) q.model = req.get_param_value("model");
    if (req.has_param("key")) q.key_name = req.get_param_value("key");
    if (p.role == Role::Client) {
      if (q.key_name && *q.key_name != p.key_name)
        throw ApiError(403, "a client key may only list its own traces", "key", "forbidden");
      q.key_name = p.key_name;
    }
    const int limit = int_param(req, "limit", 20, 1, 100);
    const std::string order = req.has_param("order") ? req.get_param_value("order") : "desc";
    if (order != "asc" && order != "desc") throw ApiError(400, "'order' must be asc or desc", "order", "invalid_value");
    q.descending = order == "desc";
    if (req.has_param("after")) {
      const auto cursor = store.find_trace(req.get_param_value("after"));
      if (!cursor) throw ApiError(400, "'after' names no trace", "after", "invalid_value");
      if (q.descending)
        q.before_seq = cursor->seq;
      else
        q.after_seq = cursor->seq;
    }
    q.limit = limit + 1;
    std::vector<audit::StoredRecord> rows = store.query(q);
    const bool has_more = static_cast<int>(rows.size()) > limit;
    if (has_more) rows.resize(static_cast<size_t>(limit));
    ojson data = ojson::array();
    for (const auto& r : rows) {
      const json body = r.parsed();
      ojson item;
      item["id"] = r.trace_id;
      item["object"] = "trace";
      item["created_at"] = r.created_at_ms;
      item["completed_at"] = body.value("completed_at", r.created_at_ms);
      item["model"] = r.model;
      item["key_name"] = r.key_name;
      item["endpoint"] = body.value("endpoint", "");
      item["finish_reason"] = body.value("finish_reason", "");
      item["usage"] = ojson(body.contains("usage") ? body["usage"] : json(nullptr));
      item["audit_seq"] = r.seq;
      data.push_back(std::move(item));
    }
    ojson out = {{"object", "list"}, {"data", data}, {"has_more", has_more}};
    out["first_id"] = rows.empty() ? ojson(nullptr) : ojson(rows.front().trace_id);
    out["last_id"] = rows.empty() ? ojson(nullptr) : ojson(rows.back().trace_id);
    set_json(res, 200, out);
  }

  void handle_get_trace(const httplib::Request& req, httplib::Response& res) {
    const Principal p = authenticate(req);
    const audit::StoredRecord rec = find_trace_or_404(req.matches[1]);
    require_trace_access(p, rec.key_name);
    set_json(res, 200, full_trace_view(rec, p));
  }

  void handle_analyze(const httplib::Request& req, httplib::Response& res) {
    const Principal p = authenticate(req);
    const audit::StoredRecord rec = find_trace_or_404(req.matches[1]);
    require_analyze(p, rec.key_name);
    AnalysisLevel level = AnalysisLevel::Full;
    if (!req.body.empty()) {
      const ojson body = parse_body(req);
      if (!body.is_object()) throw ApiError(400, "the body must be a JSON object", "", "invalid_value");
      if (body.contains("level")) {
        const ojson& l = body["level"];
        if (l == "summary")
          level = AnalysisLevel::Summary;
        else if (l == "full")
          level = AnalysisLevel::Full;
        else
          throw ApiError(400, "'level' must be summary or full", "level", "invalid_value");
      }
    }
    auto job = std::make_shared<Job>();
    job->kind = Job::Kind::Analyze;
    job->principal = p;
    job->stored = rec;
    job->level = level;
    if (!submit(job)) {
      metrics.rejected("queue_full");
      throw ApiError(429, "the server is busy; retry shortly", "", "queue_full");
    }
    wait_plain(job, res);
  }

  void handle_export_trace(const httplib::Request& req, httplib::Response& res) {
    const Principal p = authenticate(req);
    const audit::StoredRecord rec = find_trace_or_404(req.matches[1]);
    require_trace_access(p, rec.key_name);
    const std::string format = req.has_param("format") ? req.get_param_value("format") : "json";
    if (format == "json") {
      set_json(res, 200, full_trace_view(rec, p));
    } else if (format == "otel") {
      audit::OtelOptions o;
      o.include_content = trace_exposure(p) == Exposure::Full;
      set_json(res, 200, audit::otel_export({rec}, o));
    } else {
      throw ApiError(400, "'format' must be json or otel", "format", "invalid_value");
    }
  }

  void handle_verify(const httplib::Request& req, httplib::Response& res) {
    require_audit(authenticate(req));
    const audit::VerifyResult v = store.verify();
    ojson out = {{"ok", v.ok},
                 {"records", v.records},
                 {"head", {{"seq", v.head.seq}, {"hash", v.head.hash}}},
                 {"store", store.describe()}};
    if (!v.ok) {
      out["first_bad_seq"] = v.first_bad_seq;
      out["first_bad_trace_id"] = v.first_bad_trace_id;
      out["message"] = v.message;
    }
    set_json(res, 200, out);
  }

  void handle_audit_export(const httplib::Request& req, httplib::Response& res) {
    require_audit(authenticate(req));
    audit::RecordQuery q;
    q.since_ms = time_param(req, "since");
    q.until_ms = time_param(req, "until");
    q.limit = int_param(req, "limit", 1000, 1, 10000);
    if (req.has_param("after_seq")) q.after_seq = int_param(req, "after_seq", 0, 0, INT32_MAX);
    const std::string format = req.has_param("format") ? req.get_param_value("format") : "jsonl";
    const std::vector<audit::StoredRecord> rows = store.query(q);
    if (format == "jsonl") {
      std::string out;
      for (const auto& r : rows)
        out += "{\"seq\":" + std::to_string(r.seq) + ",\"hash\":\"" + r.hash + "\",\"prev_hash\":\"" + r.prev_hash +
               "\",\"record\":" + r.body + "}\n";
      res.status = 200;
      res.set_content(out, "application/x-ndjson");
    } else if (format == "otel") {
      set_json(res, 200, audit::otel_export(rows));
    } else {
      throw ApiError(400, "'format' must be jsonl or otel", "format", "invalid_value");
    }
  }

  ojson model_json() const {
    return {{"id", info.id},
            {"object", "model"},
            {"created", started_at / 1000},
            {"owned_by", "glassbox"},
            {"glassbox",
             {{"sha256", info.sha256},
              {"n_ctx", n_ctx},
              {"kv_cache_type", std::string(kv_cache_type_name(workers.front().session->context().kv_cache_type()))},
              {"parallel", workers.size()},
              {"architecture", model.config().arch}}}};
  }

  void setup_routes() {
    http.new_task_queue = [n = config.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
    http.set_payload_max_length(config.limits.max_body_bytes);
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    // Short: an idle keep-alive connection holds an HTTP thread, and delays
    // a shutdown, for up to this long.
    http.set_keep_alive_timeout(2);
    http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      t_request_start = Clock::now();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double seconds = t_request_start == Clock::time_point{} ? 0.0 : seconds_since(t_request_start);
      t_request_start = Clock::time_point{};
      metrics.request(route_of(req.path), res.status, seconds);
    });
    http.set_error_handler(httplib::Server::Handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty() || res.content_length_ > 0 || res.is_chunked_content_provider_) return;
      std::string message;
      std::string code;
      switch (res.status) {
        case 404:
          message = "unknown route: " + req.method + " " + audit::sanitize_utf8(req.path);
          code = "not_found";
          break;
        case 413:
          message = "the request body is too large";
          code = "request_too_large";
          break;
        case 414:
          message = "the request URI is too long";
          code = "uri_too_long";
          break;
        case 416:
          message = "bad Range header";
          code = "invalid_range";
          break;
        case 400:
          message = "malformed HTTP request";
          code = "bad_request";
          break;
        default:
          message = "HTTP error " + std::to_string(res.status);
          code = "http_error";
          break;
      }
      set_error(res, ApiError(res.status, message, "", code));
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      set_error(res, ApiError(500, "internal error: " + what, "", "internal_error"));
    });

    http.Get("/health", guarded([this](const httplib::Request&, httplib::Response& res) {
               const QueueState q = queue_state();
               set_json(res, 200,
                        {{"status", "ok"},
                         {"model", info.id},
                         {"queue_depth", q.queue_depth},
                         {"in_flight", q.in_flight},
                         {"parallel", q.parallel}});
             }));
    http.Get("/metrics", guarded([this](const httplib::Request& req, httplib::Response& res) {
               if (!keys.open()) require_audit(authenticate(req));
               res.status = 200;
               res.set_content(metrics.render(queue_state()), "text/plain; version=0.0.4");
             }));
    http.Get("/v1/models", guarded([this](const httplib::Request& req, httplib::Response& res) {
               authenticate(req);
               set_json(res, 200, {{"object", "list"}, {"data", ojson::array({model_json()})}});
             }));
    http.Get(R"(/v1/models/(.+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
               authenticate(req);
               const std::string id = req.matches[1];
               bool known = id == info.id;
               for (const auto& a : info.aliases) known |= id == a;
               if (!known)
                 throw ApiError(404, "The model '" + audit::sanitize_utf8(id) + "' does not exist", "model",
                                "model_not_found");
               set_json(res, 200, model_json());
             }));
    http.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
                handle_generate(req, res, Endpoint::Chat);
              }));
    http.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
                handle_generate(req, res, Endpoint::Completion);
              }));
    http.Get("/v1/traces",
             guarded([this](const httplib::Request& req, httplib::Response& res) { handle_list_traces(req, res); }));
    http.Get(R"(/v1/traces/([^/]+))",
             guarded([this](const httplib::Request& req, httplib::Response& res) { handle_get_trace(req, res); }));
    http.Post(R"(/v1/traces/([^/]+)/analyze)",
              guarded([this](const httplib::Request& req, httplib::Response& res) { handle_analyze(req, res); }));
    http.Get(R"(/v1/traces/([^/]+)/export)",
             guarded([this](const httplib::Request& req, httplib::Response& res) { handle_export_trace(req, res); }));
    http.Get("/v1/audit/verify",
             guarded([this](const httplib::Request& req, httplib::Response& res) { handle_verify(req, res); }));
    http.Get("/v1/audit/export",
             guarded([this](const httplib::Request& req, httplib::Response& res) { handle_audit_export(req, res); }));
    // The trace explorer (web/): the page and its files, for every other GET.
    // It holds no data: it calls the API above with the key the user enters.
    http.Get(R"(/.*)", guarded([](const httplib::Request& req, httplib::Response& res) {
               const web::Asset* asset = web::find_asset(req.path);
               if (!asset) throw ApiError(404, "unknown route: GET " + audit::sanitize_utf8(req.path), "", "not_found");
               res.status = 200;
               res.set_content(std::string(asset->body), std::string(asset->content_type));
               res.set_header("X-Content-Type-Options", "nosniff");
               res.set_header("Cache-Control",
                              asset->path.rfind("/assets/", 0) == 0 ? "public, max-age=3600" : "no-cache");
             }));
  }

  void prune_once() {
    try {
      const int64_t now = audit::now_ms();
      const int64_t cutoff = now - static_cast<int64_t>(config.retain_days * 86400000.0);
      const int64_t n = store.prune(cutoff, now);
      if (n > 0)
        std::fprintf(stderr, "glassbox serve: retention deleted %lld records older than %s\n",
                     static_cast<long long>(n), audit::format_time_iso(cutoff).c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "glassbox serve: retention failed: %s\n", e.what());
    }
  }

  // Hourly after the prune at start.
  void retention_main() {
    std::unique_lock lock(retention_mutex);
    while (!retention_cv.wait_for(lock, std::chrono::hours(1), [&] { return stopping_retention; })) prune_once();
  }
  bool stopping_retention = false;
};

// ---------------------------------------------------------------- Server

Server::Server(const Model& model, ServerConfig config, ModelInfo info, audit::AuditStore& store,
               TraceAnalyzer analyzer)
    : impl_(std::make_unique<Impl>(model, std::move(config), std::move(info), store, std::move(analyzer))) {
  impl_->init();
}

Server::~Server() {
  stop();
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.queue_mutex);
    s.stopping = true;
  }
  s.queue_cv.notify_all();
  for (Worker& w : s.workers)
    if (w.thread.joinable()) w.thread.join();
  {
    std::lock_guard lock(s.retention_mutex);
    s.stopping_retention = true;
  }
  s.retention_cv.notify_all();
  if (s.retention_thread.joinable()) s.retention_thread.join();
}

int Server::bind() {
  Impl& s = *impl_;
  if (s.config.port == 0) {
    s.port = s.http.bind_to_any_port(s.config.host);
  } else {
    s.port = s.http.bind_to_port(s.config.host, s.config.port) ? s.config.port : -1;
  }
  if (s.port < 0)
    throw Error("cannot listen on " + s.config.host + ":" + std::to_string(s.config.port) +
                " (address in use, or not an address of this machine)");
  return s.port;
}

void Server::run() {
  Impl& s = *impl_;
  if (s.port < 0) bind();
  for (Worker& w : s.workers) w.thread = std::thread([&s, &w] { s.worker_main(w); });
  if (s.config.retain_days > 0) {
    s.prune_once();  // before the first request is accepted
    s.retention_thread = std::thread([&s] { s.retention_main(); });
  }
  s.http.listen_after_bind();
  // Every connection has ended; the workers finish what is queued.
  {
    std::lock_guard lock(s.queue_mutex);
    s.stopping = true;
  }
  s.queue_cv.notify_all();
  for (Worker& w : s.workers)
    if (w.thread.joinable()) w.thread.join();
}

void Server::stop() {
  impl_->cancel_all = true;
  impl_->http.stop();
}

}  // namespace glassbox::server
