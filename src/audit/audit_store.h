// The audit store: an append-only hash chain of JSON records, kept in SQLite
// (the embedded default, a file in WAL mode) or PostgreSQL (libpq), behind
// one interface.
//
// Chain rule. Records are numbered seq = 1, 2, 3, ... Each record's body is a
// JSON object that holds its own "seq", "kind", "created_at" (Unix ms) and
// whatever the writer put in it; the store keeps its canonical JSON text
// (audit/canonical_json.h) and
//
//   hash(seq) = SHA-256( digest(seq - 1) || canonical JSON of body(seq) )
//
// where digest(0) is 32 zero bytes and || joins the raw 32 digest bytes with
// the UTF-8 text. Hashes are stored as lowercase hex. A one-row head table
// holds the last seq and hash, so that deleting the newest records is
// noticed too.
//
// Retention (prune) deletes old records and appends a "retention" record,
// listing every deleted {seq, hash, trace_id}, in the same transaction:
// verification accepts a gap in the numbering only where a retention record
// vouches for it. Retention records themselves are never pruned.
//
// Thread-safe: one connection per store, calls serialised by a mutex; the
// append transaction also locks the chain in the database, so several
// processes may write to one store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace glassbox::audit {

inline constexpr const char* kZeroHash = "0000000000000000000000000000000000000000000000000000000000000000";

struct StoredRecord {
  int64_t seq = 0;
  std::string kind;      // "trace", "analysis", "retention", ...
  std::string trace_id;  // empty when the record belongs to no trace
  int64_t created_at_ms = 0;
  std::string model;
  std::string key_name;
  std::string body;  // canonical JSON of the record (includes seq, kind, ...)
  std::string prev_hash, hash;

  // The body parsed (throws glassbox::Error if the stored text is not JSON).
  nlohmann::json parsed() const;
};

struct ChainHead {
  int64_t seq = 0;
  std::string hash;
};

// Which records query() returns. Unset fields do not filter.
struct RecordQuery {
  std::optional<int64_t> since_ms, until_ms;  // created_at in [since, until)
  std::optional<std::string> kind, model, key_name, trace_id;
  std::optional<int64_t> after_seq, before_seq;  // seq > after, seq < before
  int limit = 100;                               // <= 0: no limit
  bool descending = false;                       // newest first
  bool with_body = true;                         // false: body left empty (cheaper listings)
};

struct VerifyResult {
  bool ok = true;
  int64_t records = 0;        // records present and checked
  int64_t first_bad_seq = 0;  // the first broken (or missing) record; 0 when ok
  std::string first_bad_trace_id;
  std::string message;  // what is wrong, naming the record ("" when ok)
  ChainHead head;       // the chain head as stored
};

// The hash of a record whose predecessor's hash is prev_hash_hex.
std::string chain_hash(const std::string& prev_hash_hex, const std::string& canonical_body);

class AuditStore {
 public:
  // `location`: "postgresql://..." or "postgres://..." (a libpq URI) for
  // PostgreSQL, anything else is an SQLite file path (created if missing).
  // Creates the tables when they are missing. Throws glassbox::Error.
  static std::unique_ptr<AuditStore> open(const std::string& location);
  virtual ~AuditStore() = default;

  // Appends a record. `record` must be a JSON object with a string "kind" and
  // an integer "created_at" (Unix ms); optional strings "trace_id", "model",
  // "key_name" are copied into indexed columns. The store adds "seq". Strings
  // must be valid UTF-8. Returns the stored record (with seq and hashes).
  StoredRecord append(nlohmann::json record);

  // Deletes the records (other than retention records) created before
  // before_ms and appends one retention record listing them, atomically.
  // Returns how many were deleted (0: nothing deleted, nothing appended).
  int64_t prune(int64_t before_ms, int64_t now_ms);

  // Recomputes the whole chain; names the first broken record.
  VerifyResult verify();

  std::vector<StoredRecord> query(const RecordQuery& q);
  // The trace record of a trace id (kind "trace"), if present.
  std::optional<StoredRecord> find_trace(const std::string& trace_id);
  // Every record in seq order, from from_seq on; stop when fn returns false.
  void scan(int64_t from_seq, const std::function<bool(const StoredRecord&)>& fn);
  std::optional<ChainHead> head();

  // Runs raw SQL against the store (maintenance, and tests that tamper with it).
  void execute(const std::string& sql);

  // "sqlite:PATH" or "postgresql://host/db" (no password).
  virtual std::string describe() const = 0;

 protected:
  // One write transaction, holding the chain lock; rolled back when
  // destroyed without commit().
  class Transaction {
   public:
    virtual ~Transaction() = default;
    virtual std::optional<ChainHead> head() = 0;
    virtual void insert(const StoredRecord& r) = 0;  // and moves the head to it
    // Records (not retention) created before before_ms: seq, kind, trace_id, hash.
    virtual std::vector<StoredRecord> expiring(int64_t before_ms) = 0;
    virtual void erase(int64_t seq) = 0;
    virtual void commit() = 0;
  };

  virtual std::unique_ptr<Transaction> begin_write() = 0;
  virtual std::vector<StoredRecord> query_locked(const RecordQuery& q) = 0;
  // Pages through records in seq order, seq > after_seq, at most limit.
  virtual std::vector<StoredRecord> page_locked(int64_t after_seq, int limit) = 0;
  virtual std::optional<ChainHead> head_locked() = 0;
  virtual void execute_locked(const std::string& sql) = 0;

  std::mutex mutex_;  // one connection: every call holds it
};

std::unique_ptr<AuditStore> open_sqlite_store(const std::string& path);
std::unique_ptr<AuditStore> open_postgres_store(const std::string& url);

// Times as the CLI and the HTTP API accept them: Unix seconds ("1700000000",
// fractions allowed) or ISO 8601 UTC ("2024-05-01", "2024-05-01T12:00:00Z",
// "...+02:00"). Returns Unix ms; throws glassbox::Error naming the text.
int64_t parse_time_ms(const std::string& text);
std::string format_time_iso(int64_t unix_ms);  // "2024-05-01T12:00:00.123Z"
int64_t now_ms();

}  // namespace glassbox::audit
