// The PostgreSQL audit store (libpq). The same tables and chain as SQLite;
// the append transaction takes an exclusive lock on the head table so that
// several servers may share one database.
#include <libpq-fe.h>

#include <cstdlib>

#include "audit/audit_store.h"
#include "audit/sql_query.h"
#include "base/error.h"

namespace glassbox::audit {
namespace {

using detail::kHeadTable;
using detail::kRecordsTable;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

void ignore_notice(void*, const char*) {}

class PostgresStore final : public AuditStore {
 public:
  explicit PostgresStore(const std::string& url) : url_(url) {
    describe_ = redacted(url);
    conn_ = PQconnectdb(url.c_str());
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = conn_ ? PQerrorMessage(conn_) : "out of memory";
      PQfinish(conn_);
      conn_ = nullptr;
      throw Error("cannot connect to the PostgreSQL audit store " + describe_ + ": " + trim(message));
    }
    PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
    try {
      // Two servers starting at once must not race on CREATE TABLE.
      run("SELECT pg_advisory_lock(7324601)");
      run(std::string("CREATE TABLE IF NOT EXISTS ") + kRecordsTable +
          " (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, trace_id TEXT NOT NULL DEFAULT '',"
          " created_at BIGINT NOT NULL, model TEXT NOT NULL DEFAULT '', key_name TEXT NOT NULL DEFAULT '',"
          " body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)");
      run(std::string("CREATE INDEX IF NOT EXISTS glassbox_audit_trace ON ") + kRecordsTable + " (trace_id)");
      run(std::string("CREATE INDEX IF NOT EXISTS glassbox_audit_created ON ") + kRecordsTable + " (created_at)");
      run(std::string("CREATE INDEX IF NOT EXISTS glassbox_audit_key ON ") + kRecordsTable + " (key_name, seq)");
      run(std::string("CREATE TABLE IF NOT EXISTS ") + kHeadTable +
          " (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)");
      run("SELECT pg_advisory_unlock(7324601)");
    } catch (const Error& e) {
      PQfinish(conn_);
      conn_ = nullptr;
      throw Error("cannot prepare the PostgreSQL audit store " + describe_ + ": " + e.what());
    }
  }
  ~PostgresStore() override { PQfinish(conn_); }

  std::string describe() const override { return describe_; }

  // Runs one statement with text parameters; throws on failure.
  // Inside a transaction a lost connection is an error (reconnecting would
  // silently leave the transaction): may_reconnect is false there.
  Result run(const std::string& sql, const std::vector<detail::SqlValue>& params = {}, bool may_reconnect = true) {
    if (may_reconnect) ensure_connected();
    std::vector<std::string> texts;
    texts.reserve(params.size());
    for (const auto& p : params) {
      if (const auto* i = std::get_if<int64_t>(&p))
        texts.push_back(std::to_string(*i));
      else
        texts.push_back(std::get<std::string>(p));
    }
    std::vector<const char*> values;
    std::vector<int> lengths;
    for (const auto& t : texts) {
      values.push_back(t.c_str());
      lengths.push_back(static_cast<int>(t.size()));
    }
    Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), lengths.data(),
                          nullptr, 0));
    const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      throw Error("PostgreSQL: " + trim(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_)));
    return r;
  }

 protected:
  class Tx final : public Transaction {
   public:
    explicit Tx(PostgresStore& store) : s_(store) {
      s_.run("BEGIN");
      try {
        s_.run(std::string("LOCK TABLE ") + kHeadTable + " IN EXCLUSIVE MODE", {}, false);
      } catch (...) {
        rollback();
        throw;
      }
    }
    ~Tx() override {
      if (!done_) rollback();
    }
    std::optional<ChainHead> head() override { return s_.read_head(false); }
    void insert(const StoredRecord& r) override {
      s_.run(std::string("INSERT INTO ") + kRecordsTable + " (" + detail::kRecordColumns +
                 ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
             {r.seq, r.kind, r.trace_id, r.created_at_ms, r.model, r.key_name, r.body, r.prev_hash, r.hash}, false);
      s_.run(std::string("INSERT INTO ") + kHeadTable +
                 " (id, seq, hash) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq,"
                 " hash = EXCLUDED.hash",
             {r.seq, r.hash}, false);
    }
    std::vector<StoredRecord> expiring(int64_t before_ms) override {
      return s_.records(s_.run(std::string("SELECT ") + detail::kRecordColumnsNoBody + " FROM " + kRecordsTable +
                                   " WHERE created_at < $1 AND kind <> 'retention' ORDER BY seq",
                               {before_ms}, false));
    }
    void erase(int64_t seq) override {
      s_.run(std::string("DELETE FROM ") + kRecordsTable + " WHERE seq = $1", {seq}, false);
    }
    void commit() override {
      s_.run("COMMIT", {}, false);
      done_ = true;
    }

   private:
    void rollback() {
      done_ = true;
      Result r(PQexec(s_.conn_, "ROLLBACK"));
    }
    PostgresStore& s_;
    bool done_ = false;
  };

  std::unique_ptr<Transaction> begin_write() override { return std::make_unique<Tx>(*this); }

  std::vector<StoredRecord> query_locked(const RecordQuery& q) override {
    const detail::SqlStatement s = detail::build_record_query(q, /*numbered=*/true);
    return records(run(s.text, s.params));
  }

  std::vector<StoredRecord> page_locked(int64_t after_seq, int limit) override {
    return records(run(std::string("SELECT ") + detail::kRecordColumns + " FROM " + kRecordsTable +
                           " WHERE seq > $1 ORDER BY seq LIMIT $2",
                       {after_seq, static_cast<int64_t>(limit)}));
  }

  std::optional<ChainHead> head_locked() override { return read_head(); }

  void execute_locked(const std::string& sql) override {
    ensure_connected();
    Result r(PQexec(conn_, sql.c_str()));
    const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      throw Error("PostgreSQL: " + trim(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_)));
  }

 private:
  std::optional<ChainHead> read_head(bool may_reconnect = true) {
    Result r = run(std::string("SELECT seq, hash FROM ") + kHeadTable + " WHERE id = 1", {}, may_reconnect);
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return ChainHead{std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10), PQgetvalue(r.get(), 0, 1)};
  }

  std::vector<StoredRecord> records(const Result& r) {
    std::vector<StoredRecord> out;
    const int rows = PQntuples(r.get());
    out.reserve(static_cast<size_t>(rows));
    auto text = [&](int row, int col) {
      return std::string(PQgetvalue(r.get(), row, col), static_cast<size_t>(PQgetlength(r.get(), row, col)));
    };
    for (int i = 0; i < rows; ++i) {
      StoredRecord s;
      s.seq = std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10);
      s.kind = text(i, 1);
      s.trace_id = text(i, 2);
      s.created_at_ms = std::strtoll(PQgetvalue(r.get(), i, 3), nullptr, 10);
      s.model = text(i, 4);
      s.key_name = text(i, 5);
      s.body = text(i, 6);
      s.prev_hash = text(i, 7);
      s.hash = text(i, 8);
      out.push_back(std::move(s));
    }
    return out;
  }

  // A server restart drops the connection: reconnect once before giving up.
  void ensure_connected() {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw Error("lost the connection to the PostgreSQL audit store " + describe_ + ": " +
                  trim(PQerrorMessage(conn_)));
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  // postgresql://user@host:port/db without the password or other options.
  static std::string redacted(const std::string& url) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
    if (!options) {
      if (error) PQfreemem(error);
      return "postgresql://(unparsable URL)";
    }
    std::string user, host, port, db;
    for (PQconninfoOption* o = options; o->keyword; ++o) {
      if (!o->val) continue;
      const std::string k = o->keyword;
      if (k == "user")
        user = o->val;
      else if (k == "host")
        host = o->val;
      else if (k == "port")
        port = o->val;
      else if (k == "dbname")
        db = o->val;
    }
    PQconninfoFree(options);
    return "postgresql://" + (user.empty() ? "" : user + "@") + host + (port.empty() ? "" : ":" + port) + "/" + db;
  }

  std::string url_, describe_;
  PGconn* conn_ = nullptr;
};

}  // namespace

std::unique_ptr<AuditStore> open_postgres_store(const std::string& url) { return std::make_unique<PostgresStore>(url); }

}  // namespace glassbox::audit
