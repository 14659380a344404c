#include "server/policy.h"

#include "audit/sha256.h"

namespace glassbox::server {

KeyRing::KeyRing(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}

Principal KeyRing::authenticate(const std::string& authorization, const std::string& x_api_key) const {
  if (keys_.empty()) return Principal{};
  std::string key = x_api_key;
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() || authorization.compare(0, kBearer.size(), kBearer) != 0)
      throw ApiError(401, "the Authorization header must be 'Bearer <API key>'", "", "invalid_api_key");
    key = authorization.substr(kBearer.size());
  }
  while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
  if (key.empty())
    throw ApiError(401, "no API key given: send 'Authorization: Bearer <API key>'", "", "missing_api_key");
  const std::string hash = audit::sha256_hex(key);
  // Compare against every key so that the time taken does not tell which matched.
  const ApiKey* found = nullptr;
  for (const ApiKey& k : keys_)
    if (audit::constant_time_equal(hash, k.sha256)) found = &k;
  if (!found) throw ApiError(401, "incorrect API key provided", "", "invalid_api_key");
  return Principal{found->name, found->role, found->exposure};
}

void require_generate(const Principal& p) {
  if (p.role == Role::Auditor)
    throw ApiError(403, "the key '" + p.key_name + "' has the auditor role, which may not request completions", "",
                   "forbidden");
}

void require_audit(const Principal& p) {
  if (p.role == Role::Client)
    throw ApiError(403,
                   "the key '" + p.key_name + "' has the client role: verification and export need auditor or admin",
                   "", "forbidden");
}

void require_trace_access(const Principal& p, const std::string& owner_key) {
  if (p.role != Role::Client) return;
  if (p.key_name != owner_key) throw ApiError(403, "this trace belongs to another key", "", "forbidden");
}

void require_analyze(const Principal& p, const std::string& owner_key) {
  require_trace_access(p, owner_key);
  if (p.role == Role::Client && p.exposure != Exposure::Full)
    throw ApiError(
        403, "analysing a trace needs full exposure (the key '" + p.key_name + "' has " + to_string(p.exposure) + ")",
        "", "forbidden");
}

Exposure trace_exposure(const Principal& p) { return p.role == Role::Client ? p.exposure : Exposure::Full; }

bool is_loopback_host(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace glassbox::server
