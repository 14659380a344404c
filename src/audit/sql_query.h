// SQL text for the record queries shared by the SQLite and PostgreSQL stores
// (internal to glassbox_audit).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "audit/audit_store.h"

namespace glassbox::audit::detail {

inline constexpr const char* kRecordsTable = "glassbox_audit_records";
inline constexpr const char* kHeadTable = "glassbox_audit_head";
inline constexpr const char* kRecordColumns = "seq, kind, trace_id, created_at, model, key_name, body, prev_hash, hash";
inline constexpr const char* kRecordColumnsNoBody =
    "seq, kind, trace_id, created_at, model, key_name, '' AS body, prev_hash, hash";

using SqlValue = std::variant<int64_t, std::string>;

struct SqlStatement {
  std::string text;
  std::vector<SqlValue> params;
};

// `numbered`: PostgreSQL's $1, $2 ... placeholders; otherwise SQLite's ?.
inline SqlStatement build_record_query(const RecordQuery& q, bool numbered) {
  SqlStatement s;
  s.text = std::string("SELECT ") + (q.with_body ? kRecordColumns : kRecordColumnsNoBody) + " FROM " + kRecordsTable;
  std::string where;
  auto add = [&](const char* condition, SqlValue value) {
    s.params.push_back(std::move(value));
    where += where.empty() ? " WHERE " : " AND ";
    where += condition;
    if (numbered) {
      where += '$';
      where += std::to_string(s.params.size());
    } else {
      where += '?';
    }
  };
  if (q.since_ms) add("created_at >= ", *q.since_ms);
  if (q.until_ms) add("created_at < ", *q.until_ms);
  if (q.kind) add("kind = ", *q.kind);
  if (q.model) add("model = ", *q.model);
  if (q.key_name) add("key_name = ", *q.key_name);
  if (q.trace_id) add("trace_id = ", *q.trace_id);
  if (q.after_seq) add("seq > ", *q.after_seq);
  if (q.before_seq) add("seq < ", *q.before_seq);
  s.text += where;
  s.text += q.descending ? " ORDER BY seq DESC" : " ORDER BY seq ASC";
  if (q.limit > 0) s.text += " LIMIT " + std::to_string(q.limit);
  return s;
}

}  // namespace glassbox::audit::detail
