#include "server/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "audit/audit_store.h"
#include "audit/sha256.h"
#include "base/error.h"

namespace glassbox::server {

std::string to_string(Role role) {
  switch (role) {
    case Role::Client:
      return "client";
    case Role::Auditor:
      return "auditor";
    case Role::Admin:
      return "admin";
  }
  return "client";
}

std::string to_string(Exposure exposure) {
  switch (exposure) {
    case Exposure::Hidden:
      return "hidden";
    case Exposure::Summary:
      return "summary";
    case Exposure::Full:
      return "full";
  }
  return "hidden";
}

std::optional<Role> parse_role(std::string_view text) {
  if (text == "client") return Role::Client;
  if (text == "auditor") return Role::Auditor;
  if (text == "admin") return Role::Admin;
  return std::nullopt;
}

std::optional<Exposure> parse_exposure(std::string_view text) {
  if (text == "hidden") return Exposure::Hidden;
  if (text == "summary") return Exposure::Summary;
  if (text == "full") return Exposure::Full;
  return std::nullopt;
}

namespace {

using json = nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open config file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename T>
T get_as(const json& v, const std::string& where, const char* what) {
  try {
    return v.get<T>();
  } catch (const json::exception&) {
    throw Error(where + " must be " + what);
  }
}

int get_int(const json& v, const std::string& where, int lo, int hi) {
  if (!v.is_number_integer()) throw Error(where + " must be an integer");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) throw Error(where + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

bool valid_key_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

ApiKey parse_key(const json& k, const std::string& where) {
  if (!k.is_object()) throw Error(where + " must be an object");
  ApiKey key;
  for (const auto& [name, v] : k.items()) {
    const std::string at = where + "." + name;
    if (name == "name")
      key.name = get_as<std::string>(v, at, "a string");
    else if (name == "sha256")
      key.sha256 = get_as<std::string>(v, at, "a string");
    else if (name == "created_at")
      key.created_at = get_as<std::string>(v, at, "a string");
    else if (name == "role") {
      const auto r = parse_role(get_as<std::string>(v, at, "a string"));
      if (!r) throw Error(at + " must be client, auditor or admin");
      key.role = *r;
    } else if (name == "exposure") {
      const auto e = parse_exposure(get_as<std::string>(v, at, "a string"));
      if (!e) throw Error(at + " must be full, summary or hidden");
      key.exposure = *e;
    } else {
      throw Error(at + ": unknown member");
    }
  }
  if (!valid_key_name(key.name)) throw Error(where + ".name must be 1-64 characters of [A-Za-z0-9._-]");
  if (!audit::digest_from_hex(key.sha256)) throw Error(where + ".sha256 must be 64 hex digits");
  for (char& c : key.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key;
}

}  // namespace

void apply_config_json(const json& j, ServerConfig& c, const std::string& origin) {
  if (!j.is_object()) throw Error(origin + ": the configuration must be a JSON object");
  for (const auto& [name, v] : j.items()) {
    const std::string at = origin + ": " + name;
    if (name == "host")
      c.host = get_as<std::string>(v, at, "a string");
    else if (name == "port")
      c.port = get_int(v, at, 0, 65535);
    else if (name == "db")
      c.db = get_as<std::string>(v, at, "a string");
    else if (name == "model")
      c.model = get_as<std::string>(v, at, "a string");
    else if (name == "model_id")
      c.model_id = get_as<std::string>(v, at, "a string");
    else if (name == "template")
      c.template_file = get_as<std::string>(v, at, "a string");
    else if (name == "template_kwargs") {
      if (!v.is_object()) throw Error(at + " must be an object");
      c.template_kwargs = nlohmann::ordered_json(v);
    } else if (name == "parallel")
      c.parallel = get_int(v, at, 1, 256);
    else if (name == "queue")
      c.queue = get_int(v, at, 0, 100000);
    else if (name == "http_threads")
      c.http_threads = get_int(v, at, 2, 4096);
    else if (name == "ctx_size")
      c.ctx_size = get_int(v, at, 0, 1 << 24);
    else if (name == "threads")
      c.threads = get_int(v, at, 0, 1024);
    else if (name == "kv_cache_type") {
      const auto type = parse_kv_cache_type(get_as<std::string>(v, at, "a string"));
      if (!type) throw Error(at + " must be f32, f16 or q8_0");
      c.kv_cache = *type;
    } else if (name == "retain_days") {
      if (!v.is_number() || v.get<double>() < 0) throw Error(at + " must be a number >= 0");
      c.retain_days = v.get<double>();
    } else if (name == "trace_top_k")
      c.trace_top_k = get_int(v, at, 0, 100);
    else if (name == "reasoning_effort_budgets") {
      if (!v.is_object()) throw Error(at + " must be an object");
      for (const auto& [effort, budget] : v.items())
        c.reasoning_effort_budgets[effort] = get_int(budget, at + "." + effort, -1, 1 << 24);
    } else if (name == "limits") {
      if (!v.is_object()) throw Error(at + " must be an object");
      for (const auto& [limit, x] : v.items()) {
        const std::string lat = at + "." + limit;
        if (limit == "max_body_bytes")
          c.limits.max_body_bytes = static_cast<size_t>(get_int(x, lat, 1024, 1 << 30));
        else if (limit == "max_messages")
          c.limits.max_messages = get_int(x, lat, 1, 1 << 20);
        else if (limit == "max_tokens")
          c.limits.max_tokens = get_int(x, lat, 1, 1 << 24);
        else if (limit == "default_max_tokens")
          c.limits.default_max_tokens = get_int(x, lat, 1, 1 << 24);
        else if (limit == "max_stop")
          c.limits.max_stop = get_int(x, lat, 0, 64);
        else if (limit == "max_top_logprobs")
          c.limits.max_top_logprobs = get_int(x, lat, 0, 100);
        else if (limit == "max_message_bytes")
          c.limits.max_message_bytes = get_int(x, lat, 1, 1 << 30);
        else
          throw Error(lat + ": unknown limit");
      }
    } else if (name == "keys") {
      if (!v.is_array()) throw Error(at + " must be an array");
      c.keys.clear();
      std::set<std::string> names, hashes;
      for (size_t i = 0; i < v.size(); ++i) {
        ApiKey key = parse_key(v[i], origin + ": keys[" + std::to_string(i) + "]");
        if (!names.insert(key.name).second) throw Error(at + ": the key name '" + key.name + "' appears twice");
        if (!hashes.insert(key.sha256).second) throw Error(at + ": two keys have the same hash");
        c.keys.push_back(std::move(key));
      }
    } else {
      throw Error(at + ": unknown member");
    }
  }
}

ServerConfig load_config(const std::string& path) {
  json j;
  try {
    j = json::parse(read_text(path));
  } catch (const json::exception& e) {
    throw Error("config file '" + path + "' is not valid JSON: " + e.what());
  }
  ServerConfig c;
  apply_config_json(j, c, path);
  return c;
}

std::string generate_key() { return "gb-" + audit::random_hex(24); }

std::string add_key(const std::string& path, const std::string& name, Role role, Exposure exposure) {
  if (!valid_key_name(name)) throw Error("key name '" + name + "' must be 1-64 characters of [A-Za-z0-9._-]");
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    try {
      doc = nlohmann::ordered_json::parse(read_text(path));
    } catch (const nlohmann::ordered_json::exception& e) {
      throw Error("config file '" + path + "' is not valid JSON: " + e.what());
    }
    ServerConfig check;
    apply_config_json(json(doc), check, path);  // refuse to extend a broken file
    for (const ApiKey& k : check.keys)
      if (k.name == name) throw Error("a key named '" + name + "' already exists in " + path);
  }
  if (!doc.contains("keys")) doc["keys"] = nlohmann::ordered_json::array();
  const std::string key = generate_key();
  doc["keys"].push_back({{"name", name},
                         {"sha256", audit::sha256_hex(key)},
                         {"role", to_string(role)},
                         {"exposure", to_string(exposure)},
                         {"created_at", audit::format_time_iso(audit::now_ms())}});
  // Write a sibling file and rename it over the old one: a crash leaves
  // either the old file or the new one, never half of it.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
  const std::string text = doc.dump(2) + "\n";
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
    }
    written += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot replace '" + path + "': " + why);
  }
  return key;
}

}  // namespace glassbox::server
