// The audit chain on SQLite (always) and PostgreSQL (when GLASSBOX_TEST_PG_URL
// names a server): records verify; changing, deleting or reordering any
// record makes verify fail naming it; retention deletes and records itself;
// concurrent writers keep one chain. Hash values come from Python's hashlib.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "audit/audit_store.h"
#include "audit/canonical_json.h"
#include "audit/otel.h"
#include "audit/sha256.h"
#include "base/error.h"

namespace glassbox::audit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ------------------------------------------------------------ primitives

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_FALSE(digest_from_hex("xyz"));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_EQ(random_hex(16).size(), 32u);
  EXPECT_NE(random_hex(16), random_hex(16));
}

TEST(ChainHash, MatchesHashlib) {
  // sha256(32 zero bytes || '{"a":1}') and the next link, computed with hashlib.
  const std::string first = chain_hash(kZeroHash, R"({"a":1})");
  EXPECT_EQ(first, "b06a229070741292512e8760f470dd7a4c46ccfdf253df781d88dabe58c1ccb1");
  EXPECT_EQ(chain_hash(first, R"({"b":[true,null]})"),
            "0605ad2594e463046cea88e2e4a7b6ec643bd1803628c26ababda352b7ecbc32");
  EXPECT_THROW(chain_hash("nothex", "{}"), Error);
}

TEST(CanonicalJson, SortedCompactStable) {
  const json j = json::parse(R"({ "b": [1, 2.5, "x\u00e9"], "a": {"z": null, "y": true}, "c": -0.125 })");
  const std::string c = canonical_json(j);
  EXPECT_EQ(c, "{\"a\":{\"y\":true,\"z\":null},\"b\":[1,2.5,\"x\xC3\xA9\"],\"c\":-0.125}");
  EXPECT_EQ(canonical_json(json::parse(c)), c);
  nlohmann::ordered_json o;
  o["z"] = 1;
  o["a"] = 2;
  EXPECT_EQ(canonical_json(o), R"({"a":2,"z":1})");
  EXPECT_THROW(canonical_json(json("\xff")), Error);
}

TEST(Utf8, ValidateAndSanitize) {
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("ok"), "ok");
  EXPECT_TRUE(is_valid_utf8(sanitize_utf8("\xE2\x82")));
  EXPECT_EQ(utf8_prefix_length("a\xC3\xA9", 2), 1u);
  EXPECT_EQ(utf8_prefix_length("a\xC3\xA9", 3), 3u);
  EXPECT_EQ(json_nesting_depth(R"({"a":[[1]],"s":"[[[["})"), 3u);
}

TEST(Time, ParsesUnixAndIso) {
  EXPECT_EQ(parse_time_ms("1714566615"), 1714566615000);
  EXPECT_EQ(parse_time_ms("1714566615.5"), 1714566615500);
  EXPECT_EQ(parse_time_ms("2024-05-01T12:30:15Z"), 1714566615000);
  EXPECT_EQ(parse_time_ms("2024-05-01T14:30:15+02:00"), 1714566615000);
  EXPECT_EQ(parse_time_ms("2024-05-01T12:30:15.250Z"), 1714566615250);
  EXPECT_EQ(parse_time_ms("2024-05-01"), 1714521600000);
  EXPECT_EQ(format_time_iso(1714566615250), "2024-05-01T12:30:15.250Z");
  for (const char* bad : {"", "yesterday", "2024-13-01", "2024-05-01T25:00Z", "2024-05-01T12:30:15Zjunk", "1e5"})
    EXPECT_THROW(parse_time_ms(bad), Error) << bad;
}

// ------------------------------------------------------------ stores

// Opens fresh, empty stores of one backend.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string location() = 0;  // a new empty store each call
};

class SqliteBackend : public Backend {
 public:
  SqliteBackend() {
    dir_ = fs::temp_directory_path() / ("glassbox-audit-test-" + std::to_string(getpid()) + "-" + random_hex(4));
    fs::create_directories(dir_);
  }
  ~SqliteBackend() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string location() override { return (dir_ / ("store" + std::to_string(n_++) + ".db")).string(); }

 private:
  fs::path dir_;
  int n_ = 0;
};

// Each store lives in its own schema of the test server's database.
class PostgresBackend : public Backend {
 public:
  explicit PostgresBackend(std::string url) : url_(std::move(url)) { admin_ = AuditStore::open(url_); }
  ~PostgresBackend() override {
    for (const auto& s : schemas_) {
      try {
        admin_->execute("DROP SCHEMA IF EXISTS " + s + " CASCADE");
      } catch (const std::exception&) {
      }
    }
  }
  std::string location() override {
    const std::string schema = "glassbox_test_" + random_hex(6);
    admin_->execute("CREATE SCHEMA " + schema);
    schemas_.push_back(schema);
    return url_ + (url_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  }

 private:
  std::string url_;
  std::unique_ptr<AuditStore> admin_;
  std::vector<std::string> schemas_;
};

json trace_record(int i, int64_t created_at = 1714566615000) {
  return {{"kind", "trace"},
          {"created_at", created_at + i},
          {"trace_id", "trace" + std::to_string(i)},
          {"model", "tiny"},
          {"key_name", i % 2 ? "alice" : "bob"},
          {"answer", "answer number " + std::to_string(i)},
          {"tokens", {{{"id", 5}, {"logprob", -0.25}}}}};
}

class AuditStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      const char* url = std::getenv("GLASSBOX_TEST_PG_URL");
      if (!url || !*url)
        GTEST_SKIP() << "GLASSBOX_TEST_PG_URL is not set: PostgreSQL store tests skipped "
                        "(tests/server/start_postgres.sh starts a server and prints the URL)";
      backend_ = std::make_unique<PostgresBackend>(url);
    } else {
      backend_ = std::make_unique<SqliteBackend>();
    }
    location_ = backend_->location();
    store_ = AuditStore::open(location_);
  }

  void fill(int n) {
    for (int i = 1; i <= n; ++i) store_->append(trace_record(i));
  }

  std::string records_table() const { return "glassbox_audit_records"; }

  std::unique_ptr<Backend> backend_;
  std::string location_;
  std::unique_ptr<AuditStore> store_;
};

TEST_P(AuditStoreTest, EmptyStoreVerifies) {
  const VerifyResult v = store_->verify();
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(v.records, 0);
}

TEST_P(AuditStoreTest, AppendLinksRecords) {
  const StoredRecord a = store_->append(trace_record(1));
  const StoredRecord b = store_->append(trace_record(2));
  EXPECT_EQ(a.seq, 1);
  EXPECT_EQ(b.seq, 2);
  EXPECT_EQ(a.prev_hash, kZeroHash);
  EXPECT_EQ(b.prev_hash, a.hash);
  EXPECT_EQ(a.hash, chain_hash(kZeroHash, a.body));
  EXPECT_EQ(a.parsed()["seq"], 1);
  EXPECT_EQ(a.key_name, "alice");
  const auto head = store_->head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->seq, 2);
  EXPECT_EQ(head->hash, b.hash);
  const VerifyResult v = store_->verify();
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(v.records, 2);
  EXPECT_THROW(store_->append(json{{"created_at", 1}}), Error);  // no kind
  EXPECT_THROW(store_->append(json{{"kind", "x"}, {"created_at", "now"}}), Error);
  EXPECT_THROW(store_->append(json{{"kind", "x"}, {"created_at", 1}, {"text", "\xff"}}), Error);
}

TEST_P(AuditStoreTest, RecordsSurviveReopen) {
  fill(3);
  store_.reset();
  store_ = AuditStore::open(location_);
  EXPECT_TRUE(store_->verify().ok);
  EXPECT_EQ(store_->append(trace_record(4)).seq, 4);
  const auto found = store_->find_trace("trace2");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->parsed()["answer"], "answer number 2");
  EXPECT_FALSE(store_->find_trace("nope"));
}

TEST_P(AuditStoreTest, QueryFiltersAndPages) {
  fill(7);
  RecordQuery q;
  q.key_name = "alice";
  auto rows = store_->query(q);
  ASSERT_EQ(rows.size(), 4u);  // 1, 3, 5, 7
  EXPECT_EQ(rows[0].seq, 1);
  q.descending = true;
  q.limit = 2;
  rows = store_->query(q);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].seq, 7);
  EXPECT_EQ(rows[1].seq, 5);
  q.before_seq = 5;
  rows = store_->query(q);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].seq, 3);
  RecordQuery t;
  t.since_ms = 1714566615000 + 3;
  t.until_ms = 1714566615000 + 5;
  t.with_body = false;
  rows = store_->query(t);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].seq, 3);
  EXPECT_TRUE(rows[0].body.empty());
}

// Each tampering case on a fresh chain of 6 records; verify must name `expect_seq`.
struct Tamper {
  const char* what;
  std::vector<std::string> sql;  // {T} = the records table
  int64_t expect_seq;
};

std::string fill_table(std::string sql, const std::string& table) {
  for (size_t p; (p = sql.find("{T}")) != std::string::npos;) sql.replace(p, 3, table);
  return sql;
}

TEST_P(AuditStoreTest, TamperingIsDetectedAndNamed) {
  const std::vector<Tamper> cases = {
      {"change the answer of record 3",
       {"UPDATE {T} SET body = replace(body, 'answer number 3', 'answer number 9') WHERE seq = 3"},
       3},
      {"change a column of record 4", {"UPDATE {T} SET key_name = 'mallory' WHERE seq = 4"}, 4},
      {"change a stored hash", {"UPDATE {T} SET hash = prev_hash WHERE seq = 2"}, 2},
      {"delete record 3", {"DELETE FROM {T} WHERE seq = 3"}, 3},
      {"delete the last record", {"DELETE FROM {T} WHERE seq = 6"}, 6},
      {"delete the first record", {"DELETE FROM {T} WHERE seq = 1"}, 1},
      {"swap records 2 and 5",
       {"UPDATE {T} SET seq = -1 WHERE seq = 2", "UPDATE {T} SET seq = 2 WHERE seq = 5",
        "UPDATE {T} SET seq = 5 WHERE seq = -1"},
       2},
      {"move record 4's body onto record 3 (both renumbered)",
       {"DELETE FROM {T} WHERE seq = 3", "UPDATE {T} SET seq = 3 WHERE seq = 4"},
       3},
      {"recompute record 2's hash after editing it (later links break)",
       {"UPDATE {T} SET body = replace(body, 'answer number 2', 'answer number 8') WHERE seq = 2"},
       2},
  };
  for (const Tamper& c : cases) {
    SCOPED_TRACE(c.what);
    store_ = AuditStore::open(backend_->location());
    fill(6);
    ASSERT_TRUE(store_->verify().ok);
    for (const std::string& sql : c.sql) store_->execute(fill_table(sql, records_table()));
    const VerifyResult v = store_->verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, c.expect_seq) << v.message;
    EXPECT_NE(v.message.find("record " + std::to_string(c.expect_seq)), std::string::npos) << v.message;
  }
}

TEST_P(AuditStoreTest, ReforgedHashIsCaughtByTheNextLink) {
  fill(4);
  // Edit record 2 and recompute its own hash: record 3's link breaks.
  const auto rows = store_->query(RecordQuery{});
  json body = rows[1].parsed();
  body["answer"] = "forged";
  const std::string canonical = canonical_json(body);
  const std::string hash = chain_hash(rows[1].prev_hash, canonical);
  std::string quoted;
  for (char ch : canonical) {
    quoted += ch;
    if (ch == '\'') quoted += '\'';
  }
  store_->execute("UPDATE glassbox_audit_records SET body = '" + quoted + "', hash = '" + hash + "' WHERE seq = 2");
  const VerifyResult v = store_->verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3) << v.message;
}

TEST_P(AuditStoreTest, RetentionDeletesAndIsRecorded) {
  for (int i = 1; i <= 4; ++i) store_->append(trace_record(i, 1000));           // old
  for (int i = 5; i <= 6; ++i) store_->append(trace_record(i, 1714566615000));  // recent
  EXPECT_EQ(store_->prune(1714566615000, 1714566700000), 4);
  VerifyResult v = store_->verify();
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(v.records, 3);  // two traces and the retention record
  RecordQuery q;
  q.kind = "retention";
  const auto retention = store_->query(q);
  ASSERT_EQ(retention.size(), 1u);
  const json body = retention[0].parsed();
  EXPECT_EQ(body["deleted_count"], 4);
  EXPECT_EQ(body["deleted"].size(), 4u);
  EXPECT_EQ(retention[0].seq, 7);
  EXPECT_EQ(store_->prune(1714566615000, 1714566700000), 0);  // nothing more: nothing appended
  EXPECT_EQ(store_->head()->seq, 7);
  // The chain goes on after a prune.
  store_->append(trace_record(8));
  EXPECT_TRUE(store_->verify().ok);
  // A deletion outside retention is still caught.
  store_->execute("DELETE FROM glassbox_audit_records WHERE seq = 5");
  v = store_->verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 5) << v.message;
}

TEST_P(AuditStoreTest, DeletingTheRetentionRecordIsCaught) {
  for (int i = 1; i <= 3; ++i) store_->append(trace_record(i, 1000));
  store_->append(trace_record(4));
  ASSERT_EQ(store_->prune(2000, 3000), 3);
  store_->append(trace_record(6));
  store_->execute("DELETE FROM glassbox_audit_records WHERE kind = 'retention'");
  const VerifyResult v = store_->verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 1) << v.message;
}

TEST_P(AuditStoreTest, ConcurrentWritersKeepOneChain) {
  // Two stores on the same location (as two processes would be) and several
  // threads each.
  auto second = AuditStore::open(location_);
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    AuditStore* s = t % 2 ? second.get() : store_.get();
    threads.emplace_back([s, &next] {
      for (int k = 0; k < 10; ++k) s->append(trace_record(next++));
    });
  }
  for (auto& th : threads) th.join();
  const VerifyResult v = store_->verify();
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(v.records, 40);
  EXPECT_EQ(v.head.seq, 40);
}

TEST_P(AuditStoreTest, OtelExportUsesGenAiNames) {
  json r = trace_record(1);
  r["trace_id"] = "0123456789abcdef0123456789abcdef";
  r["usage"] = {{"prompt_tokens", 10}, {"completion_tokens", 7}, {"reasoning_tokens", 5}};
  r["finish_reason"] = "stop";
  r["reasoning"] = "think";
  const StoredRecord stored = store_->append(r);
  const auto doc = otel_export({stored});
  const auto& span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["traceId"], "0123456789abcdef0123456789abcdef");
  std::map<std::string, nlohmann::ordered_json> attrs;
  for (const auto& a : span["attributes"]) attrs[a["key"].get<std::string>()] = a["value"];
  EXPECT_EQ(attrs["gen_ai.usage.reasoning.output_tokens"]["intValue"], "5");
  EXPECT_EQ(attrs["gen_ai.usage.input_tokens"]["intValue"], "10");
  EXPECT_EQ(attrs["gen_ai.usage.output_tokens"]["intValue"], "7");
  EXPECT_EQ(attrs["gen_ai.operation.name"]["stringValue"], "chat");
  EXPECT_EQ(attrs["glassbox.audit.hash"]["stringValue"], stored.hash);
  EXPECT_NE(attrs["gen_ai.output.messages"]["stringValue"].get<std::string>().find("think"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditStoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST(AuditStoreOpen, BadLocationsAreErrors) {
  EXPECT_THROW(AuditStore::open(""), Error);
  EXPECT_THROW(AuditStore::open("/nonexistent-dir/x/y.db"), Error);
  EXPECT_THROW(AuditStore::open("postgresql://127.0.0.1:1/nothing?connect_timeout=2"), Error);
}

}  // namespace
}  // namespace glassbox::audit
