// The embedded audit store: one SQLite file in WAL mode with full
// synchronisation, so that a committed record survives a crash of the server
// (kill -9) and of the machine.
#include <sqlite3.h>

#include "audit/audit_store.h"
#include "audit/sql_query.h"
#include "base/error.h"

namespace glassbox::audit {
namespace {

using detail::kHeadTable;
using detail::kRecordsTable;

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
      throw Error(std::string("SQLite: cannot prepare statement: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int index, const detail::SqlValue& v) {
    int rc = 0;
    if (const auto* i = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt_, index, *i);
    } else {
      const std::string& s = std::get<std::string>(v);
      rc = sqlite3_bind_text(stmt_, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) throw Error(std::string("SQLite: bind failed: ") + sqlite3_errmsg(db_));
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(std::string("SQLite: ") + sqlite3_errmsg(db_));
  }
  int64_t int_at(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string text_at(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(p, static_cast<size_t>(n)) : std::string();
  }
  StoredRecord record() {
    StoredRecord r;
    r.seq = int_at(0);
    r.kind = text_at(1);
    r.trace_id = text_at(2);
    r.created_at_ms = int_at(3);
    r.model = text_at(4);
    r.key_name = text_at(5);
    r.body = text_at(6);
    r.prev_hash = text_at(7);
    r.hash = text_at(8);
    return r;
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    throw Error("SQLite: " + text);
  }
}

std::optional<ChainHead> read_head(sqlite3* db) {
  Statement st(db, std::string("SELECT seq, hash FROM ") + kHeadTable + " WHERE id = 1");
  if (!st.step()) return std::nullopt;
  return ChainHead{st.int_at(0), st.text_at(1)};
}

class SqliteStore final : public AuditStore {
 public:
  explicit SqliteStore(const std::string& path) : path_(path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Error("cannot open audit store '" + path + "': " + message);
    }
    try {
      sqlite3_busy_timeout(db_, 10000);
      exec(db_, "PRAGMA journal_mode=WAL");
      exec(db_, "PRAGMA synchronous=FULL");
      exec(db_, std::string("CREATE TABLE IF NOT EXISTS ") + kRecordsTable +
                    " (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, trace_id TEXT NOT NULL DEFAULT '',"
                    " created_at INTEGER NOT NULL, model TEXT NOT NULL DEFAULT '', key_name TEXT NOT NULL DEFAULT '',"
                    " body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)");
      exec(db_, std::string("CREATE INDEX IF NOT EXISTS glassbox_audit_trace ON ") + kRecordsTable + " (trace_id)");
      exec(db_, std::string("CREATE INDEX IF NOT EXISTS glassbox_audit_created ON ") + kRecordsTable + " (created_at)");
      exec(db_, std::string("CREATE INDEX IF NOT EXISTS glassbox_audit_key ON ") + kRecordsTable + " (key_name, seq)");
      exec(db_, std::string("CREATE TABLE IF NOT EXISTS ") + kHeadTable +
                    " (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)");
    } catch (const Error& e) {
      sqlite3_close(db_);
      throw Error("cannot open audit store '" + path + "': " + e.what());
    }
  }
  ~SqliteStore() override { sqlite3_close(db_); }

  std::string describe() const override { return "sqlite:" + path_; }

 protected:
  class Tx final : public Transaction {
   public:
    explicit Tx(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
    ~Tx() override {
      if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    std::optional<ChainHead> head() override { return read_head(db_); }
    void insert(const StoredRecord& r) override {
      Statement st(db_, std::string("INSERT INTO ") + kRecordsTable + " (" + detail::kRecordColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
      st.bind(1, r.seq);
      st.bind(2, r.kind);
      st.bind(3, r.trace_id);
      st.bind(4, r.created_at_ms);
      st.bind(5, r.model);
      st.bind(6, r.key_name);
      st.bind(7, r.body);
      st.bind(8, r.prev_hash);
      st.bind(9, r.hash);
      st.step();
      Statement head(db_, std::string("INSERT INTO ") + kHeadTable +
                              " (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq,"
                              " hash = excluded.hash");
      head.bind(1, r.seq);
      head.bind(2, r.hash);
      head.step();
    }
    std::vector<StoredRecord> expiring(int64_t before_ms) override {
      Statement st(db_, std::string("SELECT ") + detail::kRecordColumnsNoBody + " FROM " + kRecordsTable +
                            " WHERE created_at < ? AND kind <> 'retention' ORDER BY seq");
      st.bind(1, before_ms);
      std::vector<StoredRecord> out;
      while (st.step()) out.push_back(st.record());
      return out;
    }
    void erase(int64_t seq) override {
      Statement st(db_, std::string("DELETE FROM ") + kRecordsTable + " WHERE seq = ?");
      st.bind(1, seq);
      st.step();
    }
    void commit() override {
      exec(db_, "COMMIT");
      done_ = true;
    }

   private:
    sqlite3* db_;
    bool done_ = false;
  };

  std::unique_ptr<Transaction> begin_write() override { return std::make_unique<Tx>(db_); }

  std::vector<StoredRecord> query_locked(const RecordQuery& q) override {
    const detail::SqlStatement s = detail::build_record_query(q, /*numbered=*/false);
    Statement st(db_, s.text);
    for (size_t i = 0; i < s.params.size(); ++i) st.bind(static_cast<int>(i + 1), s.params[i]);
    std::vector<StoredRecord> out;
    while (st.step()) out.push_back(st.record());
    return out;
  }

  std::vector<StoredRecord> page_locked(int64_t after_seq, int limit) override {
    Statement st(db_, std::string("SELECT ") + detail::kRecordColumns + " FROM " + kRecordsTable +
                          " WHERE seq > ? ORDER BY seq LIMIT ?");
    st.bind(1, after_seq);
    st.bind(2, static_cast<int64_t>(limit));
    std::vector<StoredRecord> out;
    while (st.step()) out.push_back(st.record());
    return out;
  }

  std::optional<ChainHead> head_locked() override { return read_head(db_); }

  void execute_locked(const std::string& sql) override { exec(db_, sql); }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<AuditStore> open_sqlite_store(const std::string& path) { return std::make_unique<SqliteStore>(path); }

}  // namespace glassbox::audit
