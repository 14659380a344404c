// The exposure policy: who is calling (API key -> principal) and what they
// may do and see.
//
//   role     completions   traces                       verify / export
//   client   yes           its own, within its exposure no
//   auditor  no            every trace, in full         yes
//   admin    yes           every trace, in full         yes
//
// With no keys configured every caller is an anonymous admin with full
// exposure (the server then listens on loopback only).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/openai_api.h"

namespace glassbox::server {

struct Principal {
  std::string key_name;  // "" for the anonymous caller of a keyless server
  Role role = Role::Admin;
  Exposure exposure = Exposure::Full;
};

class KeyRing {
 public:
  explicit KeyRing(std::vector<ApiKey> keys);
  bool open() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // From the Authorization ("Bearer KEY") or x-api-key header values.
  // Throws ApiError 401 when keys are configured and the key is missing or unknown.
  Principal authenticate(const std::string& authorization, const std::string& x_api_key) const;

 private:
  std::vector<ApiKey> keys_;
};

// Each throws ApiError 403 naming what the role may not do.
void require_generate(const Principal& p);
void require_audit(const Principal& p);  // verify, export, metrics of a keyed server
// Reading a trace owned by `owner_key` (the key name recorded with it).
void require_trace_access(const Principal& p, const std::string& owner_key);
// Deeper analysis needs the raw thinking: auditors, admins, or the owner with full exposure.
void require_analyze(const Principal& p, const std::string& owner_key);

// The exposure a principal gets on traces (auditors and admins: full).
Exposure trace_exposure(const Principal& p);

bool is_loopback_host(const std::string& host);

}  // namespace glassbox::server
