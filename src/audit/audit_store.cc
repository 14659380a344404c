#include "audit/audit_store.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

#include "audit/canonical_json.h"
#include "audit/sha256.h"
#include "base/error.h"

namespace glassbox::audit {

nlohmann::json StoredRecord::parsed() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw Error("audit record " + std::to_string(seq) + " is not valid JSON: " + e.what());
  }
}

std::string chain_hash(const std::string& prev_hash_hex, const std::string& canonical_body) {
  const auto prev = digest_from_hex(prev_hash_hex);
  if (!prev) throw Error("malformed previous hash '" + prev_hash_hex + "'");
  Sha256 h;
  h.update(std::span<const uint8_t>(prev->data(), prev->size()));
  h.update(canonical_body);
  return to_hex(h.finish());
}

std::unique_ptr<AuditStore> AuditStore::open(const std::string& location) {
  if (location.empty()) throw Error("no audit store given (a file path or a postgresql:// URL)");
  if (location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0)
    return open_postgres_store(location);
  return open_sqlite_store(location);
}

namespace {

std::string optional_string(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || it->is_null()) return "";
  if (!it->is_string()) throw Error(std::string("audit record field '") + key + "' must be a string");
  return it->get<std::string>();
}

// Fills the columns and hashes of a record that follows `head`.
StoredRecord make_record(nlohmann::json record, const std::optional<ChainHead>& head) {
  if (!record.is_object()) throw Error("an audit record must be a JSON object");
  const auto kind = record.find("kind");
  if (kind == record.end() || !kind->is_string() || kind->get<std::string>().empty())
    throw Error("an audit record needs a non-empty string \"kind\"");
  const auto created = record.find("created_at");
  if (created == record.end() || !created->is_number_integer())
    throw Error("an audit record needs an integer \"created_at\" (Unix ms)");
  StoredRecord r;
  r.seq = head ? head->seq + 1 : 1;
  r.prev_hash = head ? head->hash : kZeroHash;
  record["seq"] = r.seq;
  r.kind = kind->get<std::string>();
  r.created_at_ms = created->get<int64_t>();
  r.trace_id = optional_string(record, "trace_id");
  r.model = optional_string(record, "model");
  r.key_name = optional_string(record, "key_name");
  r.body = canonical_json(record);
  r.hash = chain_hash(r.prev_hash, r.body);
  return r;
}

}  // namespace

StoredRecord AuditStore::append(nlohmann::json record) {
  std::lock_guard lock(mutex_);
  auto tx = begin_write();
  StoredRecord r = make_record(std::move(record), tx->head());
  tx->insert(r);
  tx->commit();
  return r;
}

int64_t AuditStore::prune(int64_t before_ms, int64_t now) {
  std::lock_guard lock(mutex_);
  auto tx = begin_write();
  const std::vector<StoredRecord> doomed = tx->expiring(before_ms);
  if (doomed.empty()) return 0;
  nlohmann::json deleted = nlohmann::json::array();
  for (const StoredRecord& r : doomed) {
    deleted.push_back({{"seq", r.seq}, {"hash", r.hash}, {"kind", r.kind}, {"trace_id", r.trace_id}});
    tx->erase(r.seq);
  }
  nlohmann::json record = {{"kind", "retention"},
                           {"created_at", now},
                           {"deleted_before", before_ms},
                           {"deleted_count", static_cast<int64_t>(doomed.size())},
                           {"deleted", std::move(deleted)}};
  StoredRecord r = make_record(std::move(record), tx->head());
  tx->insert(r);
  tx->commit();
  return static_cast<int64_t>(doomed.size());
}

std::vector<StoredRecord> AuditStore::query(const RecordQuery& q) {
  std::lock_guard lock(mutex_);
  return query_locked(q);
}

std::optional<StoredRecord> AuditStore::find_trace(const std::string& trace_id) {
  RecordQuery q;
  q.kind = "trace";
  q.trace_id = trace_id;
  q.limit = 1;
  auto rows = query(q);
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

void AuditStore::scan(int64_t from_seq, const std::function<bool(const StoredRecord&)>& fn) {
  int64_t after = from_seq - 1;
  for (;;) {
    std::vector<StoredRecord> page;
    {
      std::lock_guard lock(mutex_);
      page = page_locked(after, 256);
    }
    if (page.empty()) return;
    for (const StoredRecord& r : page) {
      if (!fn(r)) return;
      after = r.seq;
    }
  }
}

std::optional<ChainHead> AuditStore::head() {
  std::lock_guard lock(mutex_);
  return head_locked();
}

void AuditStore::execute(const std::string& sql) {
  std::lock_guard lock(mutex_);
  execute_locked(sql);
}

VerifyResult AuditStore::verify() {
  VerifyResult v;
  // The head first: records appended while we scan are beyond it and ignored.
  const std::optional<ChainHead> head_snapshot = head();
  if (head_snapshot) v.head = *head_snapshot;
  const int64_t last_seq = head_snapshot ? head_snapshot->seq : 0;

  auto fail = [&](int64_t seq, const std::string& trace_id, const std::string& message) {
    v.ok = false;
    v.first_bad_seq = seq;
    v.first_bad_trace_id = trace_id;
    v.message = message;
    return false;
  };

  // Gaps that retention records vouch for: seq -> {hash, listed by}.
  struct Tombstone {
    std::string hash;
    int64_t listed_by = 0;
  };
  std::map<int64_t, Tombstone> tombstones;
  {
    RecordQuery q;
    q.kind = "retention";
    q.limit = 0;
    for (const StoredRecord& r : query(q)) {
      try {
        const nlohmann::json body = r.parsed();
        for (const auto& d : body.at("deleted"))
          tombstones[d.at("seq").get<int64_t>()] = {d.at("hash").get<std::string>(), r.seq};
      } catch (const std::exception& e) {
        fail(r.seq, r.trace_id, "record " + std::to_string(r.seq) + ": malformed retention record (" + e.what() + ")");
        return v;
      }
    }
  }

  std::string prev_hash = kZeroHash;
  int64_t expected_seq = 1;
  auto check_gap = [&](int64_t upto, const std::string& next_trace_id) {
    // Records expected_seq .. upto-1 are absent: each must be a tombstone.
    for (int64_t s = expected_seq; s < upto; ++s) {
      const auto t = tombstones.find(s);
      if (t == tombstones.end() || t->second.listed_by <= s)
        return fail(s, "",
                    "record " + std::to_string(s) + " is missing (deleted outside retention)" +
                        (upto > last_seq ? std::string(", the chain head names it")
                                         : ", record " + std::to_string(upto) + next_trace_id + " follows"));
      prev_hash = t->second.hash;
    }
    return true;
  };

  scan(1, [&](const StoredRecord& r) {
    if (r.seq > last_seq) return false;
    const std::string name =
        "record " + std::to_string(r.seq) + (r.trace_id.empty() ? "" : " (trace " + r.trace_id + ")");
    if (r.seq > expected_seq && !check_gap(r.seq, r.trace_id.empty() ? "" : " (trace " + r.trace_id + ")"))
      return false;
    if (tombstones.count(r.seq))
      return fail(r.seq, r.trace_id,
                  name + " is listed as deleted by retention record " + std::to_string(tombstones[r.seq].listed_by) +
                      " but is present");
    nlohmann::json body;
    try {
      body = nlohmann::json::parse(r.body);
    } catch (const std::exception& e) {
      return fail(r.seq, r.trace_id, name + ": stored body is not valid JSON");
    }
    std::string canonical;
    try {
      canonical = canonical_json(body);
    } catch (const std::exception& e) {
      return fail(r.seq, r.trace_id, name + ": " + e.what());
    }
    if (canonical != r.body) return fail(r.seq, r.trace_id, name + ": stored body is not in canonical form (edited)");
    if (!body.is_object() || !body.contains("seq") || !body["seq"].is_number_integer() ||
        body["seq"].get<int64_t>() != r.seq) {
      const std::string says = body.is_object() && body.contains("seq") ? body["seq"].dump() : "nothing";
      return fail(r.seq, r.trace_id, name + ": its hashed body says seq " + says + " (records moved or reordered)");
    }
    auto column_matches = [&](const char* key, const std::string& column) {
      const auto it = body.find(key);
      const std::string value = it == body.end() || it->is_null() ? "" : it->is_string() ? it->get<std::string>() : "?";
      return value == column;
    };
    if (!column_matches("kind", r.kind) || !column_matches("trace_id", r.trace_id) ||
        !column_matches("model", r.model) || !column_matches("key_name", r.key_name) || !body.contains("created_at") ||
        !body["created_at"].is_number_integer() || body["created_at"].get<int64_t>() != r.created_at_ms)
      return fail(r.seq, r.trace_id, name + ": its columns differ from the hashed body (edited)");
    if (r.prev_hash != prev_hash)
      return fail(r.seq, r.trace_id,
                  name + ": its previous-hash does not match record " + std::to_string(r.seq - 1) +
                      " (a record before it was changed, deleted or reordered)");
    if (chain_hash(prev_hash, r.body) != r.hash)
      return fail(r.seq, r.trace_id, name + ": hash mismatch (its contents were changed)");
    prev_hash = r.hash;
    expected_seq = r.seq + 1;
    ++v.records;
    return true;
  });
  if (!v.ok) return v;

  if (!head_snapshot) {
    bool any = false;
    {
      std::lock_guard lock(mutex_);
      any = !page_locked(0, 1).empty();
    }
    if (any) fail(1, "", "records are present but the chain head is missing");
    return v;
  }
  if (expected_seq <= last_seq && !check_gap(last_seq + 1, "")) return v;
  if (prev_hash != head_snapshot->hash)
    fail(last_seq, "", "record " + std::to_string(last_seq) + ": the chain head's hash does not match it (edited)");
  return v;
}

#ifndef GLASSBOX_HAVE_LIBPQ
std::unique_ptr<AuditStore> open_postgres_store(const std::string&) {
  throw Error("this glassbox was built without PostgreSQL support (libpq was not found at build time)");
}
#endif

// ------------------------------------------------------------------ time

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t parse_time_ms(const std::string& text) {
  const auto bad = [&] {
    return Error("'" + text + "' is not a time (Unix seconds, or ISO 8601 such as 2024-05-01T12:00:00Z)");
  };
  if (text.empty()) throw bad();
  // Unix seconds.
  if (text.find_first_not_of("0123456789.") == std::string::npos) {
    char* end = nullptr;
    const double seconds = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(seconds) || seconds > 1e13) throw bad();
    return static_cast<int64_t>(std::llround(seconds * 1000.0));
  }
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &year, &month, &day, &consumed) != 3 || consumed != 10) throw bad();
  size_t pos = 10;
  double fraction = 0;
  int64_t offset_minutes = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') throw bad();
    ++pos;
    int used = 0;
    if (std::sscanf(text.c_str() + pos, "%2d:%2d%n", &hour, &minute, &used) != 2 || used != 5) throw bad();
    pos += 5;
    if (pos < text.size() && text[pos] == ':') {
      if (std::sscanf(text.c_str() + pos, ":%2d%n", &second, &used) != 1 || used != 3) throw bad();
      pos += 3;
      if (pos < text.size() && text[pos] == '.') {
        size_t end = pos + 1;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
        if (end == pos + 1) throw bad();
        fraction = std::strtod(("0" + text.substr(pos, end - pos)).c_str(), nullptr);
        pos = end;
      }
    }
    if (pos < text.size()) {
      if (text[pos] == 'Z' || text[pos] == 'z') {
        ++pos;
      } else if (text[pos] == '+' || text[pos] == '-') {
        int oh = 0, om = 0;
        if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d%n", &oh, &om, &used) != 2 || used != 5) throw bad();
        offset_minutes = (text[pos] == '+' ? 1 : -1) * (oh * 60 + om);
        pos += 6;
      }
    }
    if (pos != text.size()) throw bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 || year < 1970)
    throw bad();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const time_t t = timegm(&tm);
  return (static_cast<int64_t>(t) - offset_minutes * 60) * 1000 + static_cast<int64_t>(std::llround(fraction * 1000));
}

std::string format_time_iso(int64_t unix_ms) {
  const time_t seconds = static_cast<time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

}  // namespace glassbox::audit
