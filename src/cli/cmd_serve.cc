// serve, keys add/list, audit verify/export/prune.
#include "cli/cmd_serve.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "analysis/analysis.h"
#include "audit/audit_store.h"
#include "audit/otel.h"
#include "audit/sha256.h"
#include "base/error.h"
#include "cli/common.h"
#include "server/config.h"
#include "server/policy.h"
#include "server/server.h"

namespace glassbox::cli {
namespace {

namespace fs = std::filesystem;
using server::ServerConfig;

constexpr const char* kDefaultConfig = "glassbox.json";
constexpr const char* kDefaultModelName = "glassbox-tiny-reasoner.gguf";

// The embedded default model, looked up as `glassbox run` does: $GLASSBOX_MODEL,
// models/ beside or above the executable, ./models, the source tree.
std::string default_model() {
  if (const char* env = std::getenv("GLASSBOX_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / "models" / kDefaultModelName);
    candidates.push_back(exe.parent_path().parent_path() / "models" / kDefaultModelName);
    candidates.push_back(exe.parent_path().parent_path() / "share" / "glassbox" / kDefaultModelName);
  }
  candidates.push_back(fs::path("models") / kDefaultModelName);
#ifdef GLASSBOX_SOURCE_DIR
  candidates.push_back(fs::path(GLASSBOX_SOURCE_DIR) / "models" / kDefaultModelName);
#endif
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c.string();
  throw Error(std::string("no model given (-m) and the default model ") + kDefaultModelName +
              " was not found (set GLASSBOX_MODEL or pass -m)");
}

// --config FILE, else ./glassbox.json when it exists, else the defaults.
ServerConfig load_server_config(const std::string& path, bool& loaded_default) {
  loaded_default = false;
  if (!path.empty()) return server::load_config(path);
  std::error_code ec;
  if (fs::exists(kDefaultConfig, ec)) {
    loaded_default = true;
    return server::load_config(kDefaultConfig);
  }
  return ServerConfig{};
}

// The report attached to traces (glassbox.analysis in a request, or POST
// /v1/traces/{id}/analyze): the analysis layer on the worker's spare context.
// "summary" computes the steps and their confidence only; "full" adds the
// early-answer curve, step importance and prompt attribution.
server::TraceAnalyzer reasoning_analyzer() {
  return [](const server::AnalysisInput& in) {
    analysis::TraceRecord record;
    record.model = in.model_path;
    record.messages = in.messages;
    record.options = in.options;
    record.result = in.result;
    analysis::AnalysisOptions options;
    options.sampling = in.options.sampling;
    if (in.level != server::AnalysisLevel::Full) {
      options.early_answer = false;
      options.importance = false;
      options.occlusion = false;
      options.attention = false;
    }
    nlohmann::ordered_json report = analysis::to_json(analysis::analyze(in.model, in.context, record, options));
    report.erase("trace");  // the trace record holds the tokens already
    return report;
  };
}

struct ServeOpts {
  std::string model, host, config, db, template_file, kwargs, model_id;
  int port = 8080, parallel = 1, queue = 64, http_threads = 64, ctx = 0, threads = 0, max_tokens = 0, max_messages = 0,
      trace_top_k = 5;
  double retain_days = 0;
  size_t max_body_bytes = 0;
  KvCacheType kv_cache = KvCacheType::Auto;
};

void run_serve(const ServeOpts& o, const CLI::App& cmd) {
  bool loaded_default = false;
  ServerConfig c = load_server_config(o.config, loaded_default);
  if (loaded_default) std::fprintf(stderr, "glassbox serve: using %s\n", kDefaultConfig);
  // Flags given on the command line win over the config file.
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (given("--host")) c.host = o.host;
  if (given("--port")) c.port = o.port;
  if (given("--db")) c.db = o.db;
  if (given("--model")) c.model = o.model;
  if (given("--model-id")) c.model_id = o.model_id;
  if (given("--template")) c.template_file = o.template_file;
  if (given("--parallel")) c.parallel = o.parallel;
  if (given("--queue")) c.queue = o.queue;
  if (given("--http-threads")) c.http_threads = o.http_threads;
  if (given("--ctx-size")) c.ctx_size = o.ctx;
  if (given("--threads")) c.threads = o.threads;
  if (given("--kv-cache-type")) c.kv_cache = o.kv_cache;
  if (given("--retain-days")) c.retain_days = o.retain_days;
  if (given("--trace-top-k")) c.trace_top_k = o.trace_top_k;
  if (given("--max-tokens")) c.limits.max_tokens = o.max_tokens;
  if (given("--max-messages")) c.limits.max_messages = o.max_messages;
  if (given("--max-body-bytes")) c.limits.max_body_bytes = o.max_body_bytes;
  if (given("--kwargs")) {
    try {
      c.template_kwargs = nlohmann::ordered_json::parse(o.kwargs);
    } catch (const std::exception& e) {
      throw Error(std::string("--kwargs is not valid JSON: ") + e.what());
    }
    if (!c.template_kwargs.is_object()) throw Error("--kwargs must be a JSON object");
  }
  if (c.limits.default_max_tokens > c.limits.max_tokens) c.limits.default_max_tokens = c.limits.max_tokens;
  if (c.model.empty()) c.model = default_model();

  // Refuse a keyless public server before the (slow) model load.
  if (c.keys.empty() && !server::is_loopback_host(c.host))
    throw Error("refusing to listen on '" + c.host +
                "' without API keys: with no keys the server allows everything, so it listens on loopback "
                "only (add keys with 'glassbox keys add', or use --host 127.0.0.1)");

  auto model = load_model(c.model);
  server::ModelInfo info;
  info.path = c.model;
  const std::string stem = fs::path(c.model).stem().string();
  info.id = c.model_id.empty() ? stem : c.model_id;
  info.aliases = {fs::path(c.model).filename().string(), stem};
  if (!model->config().name.empty()) info.aliases.push_back(model->config().name);
  info.sha256 = audit::sha256_file_hex(c.model);
  auto store = audit::AuditStore::open(c.db);

  // Signals go to one thread that stops the server; the others never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Server srv(*model, c, info, *store, reasoning_analyzer());
  const int port = srv.bind();
  std::atomic<bool> finished{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (!finished) {
      std::fprintf(stderr, "glassbox serve: stopping (signal %d)\n", sig);
      srv.stop();
    }
  });
  std::printf("glassbox serve: listening on http://%s:%d (model %s, %d sequence%s, audit store %s, %s)\n",
              c.host.c_str(), port, info.id.c_str(), c.parallel, c.parallel == 1 ? "" : "s", store->describe().c_str(),
              c.keys.empty() ? "no API keys: loopback only, everything allowed"
                             : (std::to_string(c.keys.size()) + " API key" + (c.keys.size() == 1 ? "" : "s")).c_str());
  std::fflush(stdout);
  srv.run();
  finished = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // wakes sigwait if no signal came
  signal_thread.join();
}

std::string store_location(const std::string& db, const std::string& config) {
  if (!db.empty()) return db;
  bool loaded_default = false;
  return load_server_config(config, loaded_default).db;
}

void print_verify(const audit::VerifyResult& v, const std::string& where, bool as_json) {
  if (as_json) {
    nlohmann::ordered_json j = {
        {"ok", v.ok}, {"records", v.records}, {"head", {{"seq", v.head.seq}, {"hash", v.head.hash}}}, {"store", where}};
    if (!v.ok) {
      j["first_bad_seq"] = v.first_bad_seq;
      j["first_bad_trace_id"] = v.first_bad_trace_id;
      j["message"] = v.message;
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  if (v.ok)
    std::printf("ok: %lld records verified in %s; head seq %lld hash %s\n", static_cast<long long>(v.records),
                where.c_str(), static_cast<long long>(v.head.seq),
                v.head.hash.empty() ? "(empty)" : v.head.hash.c_str());
}

}  // namespace

void register_serve_commands(CLI::App& app) {
  {
    auto* cmd =
        app.add_subcommand("serve", "OpenAI-compatible HTTP server with traces, an exposure policy and an audit trail");
    auto o = std::make_shared<ServeOpts>();
    cmd->add_option("-m,--model", o->model, "GGUF model (default: the embedded tiny reasoner)");
    cmd->add_option("--host", o->host, "address to listen on (default 127.0.0.1; others need API keys)");
    cmd->add_option("--port", o->port, "port (0: any free port; default 8080)");
    cmd->add_option("--config", o->config, "server config file (JSON; default ./glassbox.json when present)");
    cmd->add_option("--db", o->db, "audit store: SQLite file (default glassbox.db) or postgresql:// URL");
    cmd->add_option("--template", o->template_file, "Jinja chat template file replacing the model's");
    cmd->add_option("--kwargs", o->kwargs, "default template variables as a JSON object");
    cmd->add_option("--model-id", o->model_id, "the model name clients use (default: the file name)");
    cmd->add_option("--parallel", o->parallel, "sequences generated at once (default 1)")->check(CLI::Range(1, 256));
    cmd->add_option("--queue", o->queue, "requests that may wait for a sequence before 429 (default 64)")
        ->check(CLI::Range(0, 100000));
    cmd->add_option("--http-threads", o->http_threads, "connections served at once (default 64)")
        ->check(CLI::Range(2, 4096));
    cmd->add_option("-c,--ctx-size", o->ctx, "context per sequence (default: the model's, at most 4096)");
    cmd->add_option("-t,--threads", o->threads, "compute threads per sequence (default: cores / parallel)");
    add_kv_cache_option(cmd, &o->kv_cache);
    cmd->add_option("--retain-days", o->retain_days, "delete trace records older than this many days (hourly)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--max-tokens", o->max_tokens, "largest max_tokens a request may ask for")
        ->check(CLI::Range(1, 1 << 24));
    cmd->add_option("--max-messages", o->max_messages, "most messages in one request")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--max-body-bytes", o->max_body_bytes, "largest request body (413 above)")
        ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
    cmd->add_option("--trace-top-k", o->trace_top_k, "alternatives recorded per token in the audit trail (default 5)")
        ->check(CLI::Range(0, 100));
    cmd->callback([o, cmd] { run_serve(*o, *cmd); });
  }
  {
    auto* keys = app.add_subcommand("keys", "API keys of the server (stored as SHA-256 hashes in the config file)");
    keys->require_subcommand(1);
    auto* add = keys->add_subcommand("add", "Create a key, print it once and store its hash");
    struct Opts {
      std::string name, role = "client", exposure = "full", config = kDefaultConfig;
    };
    auto o = std::make_shared<Opts>();
    add->add_option("name", o->name, "key name (letters, digits, . _ -)")->required();
    add->add_option("--role", o->role, "client, auditor or admin")->capture_default_str();
    add->add_option("--exposure", o->exposure, "full, summary or hidden (what the key sees of the reasoning)")
        ->capture_default_str();
    add->add_option("--config", o->config, "config file to add the key to")->capture_default_str();
    add->callback([o] {
      const auto role = server::parse_role(o->role);
      if (!role) throw Error("--role must be client, auditor or admin");
      const auto exposure = server::parse_exposure(o->exposure);
      if (!exposure) throw Error("--exposure must be full, summary or hidden");
      const std::string key = server::add_key(o->config, o->name, *role, *exposure);
      std::printf("%s\n", key.c_str());
      std::fflush(stdout);
      std::fprintf(stderr, "added key '%s' (%s, %s exposure) to %s; the key is shown only this once\n", o->name.c_str(),
                   o->role.c_str(), o->exposure.c_str(), o->config.c_str());
    });
    auto* list = keys->add_subcommand("list", "List the keys of a config file (names, roles, exposures)");
    auto lo = std::make_shared<std::string>(kDefaultConfig);
    list->add_option("--config", *lo, "config file")->capture_default_str();
    list->callback([lo] {
      const ServerConfig c = server::load_config(*lo);
      for (const auto& k : c.keys)
        std::printf("%-24s %-8s %-8s %s\n", k.name.c_str(), server::to_string(k.role).c_str(),
                    server::to_string(k.exposure).c_str(), k.created_at.c_str());
    });
  }
  {
    auto* audit_cmd = app.add_subcommand("audit", "The tamper-evident audit store");
    audit_cmd->require_subcommand(1);
    struct Opts {
      std::string db, config, since, until, format = "jsonl", output;
      bool json = false;
      double retain_days = -1;
    };
    auto o = std::make_shared<Opts>();
    auto* verify = audit_cmd->add_subcommand("verify", "Recompute the hash chain; name the first broken record");
    verify->add_option("--db", o->db, "SQLite file or postgresql:// URL (default: the config's, else glassbox.db)");
    verify->add_option("--config", o->config, "server config file (for its db)");
    verify->add_flag("--json", o->json, "print the result as JSON");
    verify->callback([o] {
      const std::string location = store_location(o->db, o->config);
      auto store = audit::AuditStore::open(location);
      const audit::VerifyResult v = store->verify();
      print_verify(v, store->describe(), o->json);
      if (!v.ok) throw Error("audit chain broken: " + v.message);
    });
    auto* exp = audit_cmd->add_subcommand("export", "Write the records (JSON lines with seq, hash, prev_hash, record)");
    exp->add_option("--db", o->db, "SQLite file or postgresql:// URL (default: the config's, else glassbox.db)");
    exp->add_option("--config", o->config, "server config file (for its db)");
    exp->add_option("--since", o->since, "records created at or after (Unix seconds or ISO 8601)");
    exp->add_option("--until", o->until, "records created before (Unix seconds or ISO 8601)");
    exp->add_option("--format", o->format, "jsonl or otel (OTLP/JSON spans of the traces)")->capture_default_str();
    exp->add_option("-o,--output", o->output, "file to write (default: stdout)");
    exp->callback([o] {
      if (o->format != "jsonl" && o->format != "otel") throw Error("--format must be jsonl or otel");
      auto store = audit::AuditStore::open(store_location(o->db, o->config));
      const std::optional<int64_t> since =
          o->since.empty() ? std::nullopt : std::optional(audit::parse_time_ms(o->since));
      const std::optional<int64_t> until =
          o->until.empty() ? std::nullopt : std::optional(audit::parse_time_ms(o->until));
      std::FILE* out = stdout;
      if (!o->output.empty()) {
        out = std::fopen(o->output.c_str(), "wb");
        if (!out) throw Error("cannot write '" + o->output + "'");
      }
      std::vector<audit::StoredRecord> otel_rows;
      // Pages in seq order so that a large store is never held in memory (jsonl).
      audit::RecordQuery q;
      q.since_ms = since;
      q.until_ms = until;
      q.limit = 500;
      q.after_seq = 0;
      for (;;) {
        const auto rows = store->query(q);
        for (const auto& r : rows) {
          if (o->format == "jsonl") {
            const std::string line = "{\"seq\":" + std::to_string(r.seq) + ",\"hash\":\"" + r.hash +
                                     "\",\"prev_hash\":\"" + r.prev_hash + "\",\"record\":" + r.body + "}\n";
            std::fwrite(line.data(), 1, line.size(), out);
          } else {
            otel_rows.push_back(r);
          }
        }
        if (rows.size() < 500) break;
        q.after_seq = rows.back().seq;
      }
      if (o->format == "otel") {
        const std::string text = audit::otel_export(otel_rows).dump() + "\n";
        std::fwrite(text.data(), 1, text.size(), out);
      }
      if (out != stdout && std::fclose(out) != 0) throw Error("error writing '" + o->output + "'");
      std::fflush(stdout);
    });
    auto* prune = audit_cmd->add_subcommand("prune", "Apply retention now: delete old records, recording the deletion");
    prune->add_option("--db", o->db, "SQLite file or postgresql:// URL (default: the config's, else glassbox.db)");
    prune->add_option("--config", o->config, "server config file (for its db)");
    prune->add_option("--retain-days", o->retain_days, "keep records younger than this many days")
        ->required()
        ->check(CLI::NonNegativeNumber);
    prune->callback([o] {
      auto store = audit::AuditStore::open(store_location(o->db, o->config));
      const int64_t now = audit::now_ms();
      const int64_t cutoff = now - static_cast<int64_t>(o->retain_days * 86400000.0);
      const int64_t n = store->prune(cutoff, now);
      std::printf("deleted %lld records created before %s\n", static_cast<long long>(n),
                  audit::format_time_iso(cutoff).c_str());
    });
  }
}

}  // namespace glassbox::cli
