// Server configuration: a JSON file (`glassbox serve --config FILE`, default
// ./glassbox.json when it exists) whose members are the serve options and the
// API keys. Keys are stored only as SHA-256 hashes; `glassbox keys add` makes
// a key, prints it once and appends its hash.
//
//   {
//     "host": "127.0.0.1", "port": 8080, "db": "glassbox.db",
//     "model": "models/x.gguf", "parallel": 2, "queue": 64,
//     "limits": {"max_body_bytes": 4194304, "max_messages": 256, "max_tokens": 4096, ...},
//     "reasoning_effort_budgets": {"low": 256, "medium": 1024, "high": -1},
//     "keys": [{"name": "alice", "sha256": "<hex>", "role": "client", "exposure": "summary"}]
//   }
//
// Unknown members are errors (a typo must not silently weaken a limit).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace glassbox::server {

// client: completions, its own traces within its exposure.
// auditor: every trace in full, verification and export; no completions.
// admin: everything.
enum class Role { Client, Auditor, Admin };
// What a caller sees of the reasoning: hidden (nothing but token counts),
// summary (each step's abridged first line and confidence), full.
enum class Exposure { Hidden, Summary, Full };

std::string to_string(Role role);
std::string to_string(Exposure exposure);
std::optional<Role> parse_role(std::string_view text);
std::optional<Exposure> parse_exposure(std::string_view text);

struct ApiKey {
  std::string name;
  std::string sha256;  // lowercase hex of the key's SHA-256
  Role role = Role::Client;
  Exposure exposure = Exposure::Full;
  std::string created_at;  // ISO 8601, informational
};

struct Limits {
  size_t max_body_bytes = 4u << 20;  // 413 above
  int max_messages = 256;            // 400 above
  int max_tokens = 4096;             // 400 when a request asks for more
  int default_max_tokens = 1024;     // when a request names none
  int max_stop = 8;                  // stop strings per request
  int max_top_logprobs = 20;
  int max_message_bytes = 1 << 20;  // one message's content
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string db = "glassbox.db";  // SQLite path or postgresql:// URL
  std::string model;               // GGUF path
  std::string model_id;            // the name clients use ("" : file name without .gguf)
  std::string template_file;       // Jinja chat template replacing the model's
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // defaults for every request
  int parallel = 1;                          // sequences generated at once (one context each)
  int queue = 64;                            // requests waiting beyond those in flight (429 when full)
  int http_threads = 64;                     // connections served at once
  int ctx_size = 0;                          // per sequence; 0: the model's, at most 4096
  int threads = 0;                           // compute threads per sequence; 0: cores / parallel
  KvCacheType kv_cache = KvCacheType::Auto;  // "kv_cache_type": f32, f16 or q8_0
  double retain_days = 0;                    // > 0: delete trace records older than this (hourly)
  int trace_top_k = 5;                       // alternatives recorded per token in the audit trail
  std::map<std::string, int> reasoning_effort_budgets = {{"low", 256}, {"medium", 1024}, {"high", -1}};
  Limits limits;
  std::vector<ApiKey> keys;
};

// Reads a config file; throws glassbox::Error naming the file and the member.
ServerConfig load_config(const std::string& path);
// Applies the members present in `j` on top of `config`.
void apply_config_json(const nlohmann::json& j, ServerConfig& config, const std::string& origin);

// Generates a key for NAME, appends its hash to the config file at `path`
// (created, mode 0600, if missing; other members kept) and returns the key.
// Throws glassbox::Error if the name exists or is empty / not [A-Za-z0-9._-].
std::string add_key(const std::string& path, const std::string& name, Role role, Exposure exposure);

// The key text handed to users: "gb-" followed by 48 hex digits.
std::string generate_key();

}  // namespace glassbox::server
