// OpenTelemetry export of trace records: one span per trace, in the OTLP/JSON
// encoding (an ExportTraceServiceRequest), with the GenAI semantic-convention
// attribute names (gen_ai.operation.name, gen_ai.request.model,
// gen_ai.usage.input_tokens, gen_ai.usage.output_tokens,
// gen_ai.usage.reasoning.output_tokens, gen_ai.response.finish_reasons, ...)
// and glassbox.* attributes for the audit chain (seq, hash, model sha256).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/audit_store.h"

namespace glassbox::audit {

struct OtelOptions {
  std::string service_name = "glassbox";
  bool include_content = true;  // gen_ai.input.messages / gen_ai.output.messages
};

// The span of one trace record (kind "trace"); `stored` supplies seq and hash.
nlohmann::ordered_json otel_span(const StoredRecord& stored, const nlohmann::json& record,
                                 const OtelOptions& options = {});
// {"resourceSpans": [{resource, scopeSpans: [{scope, spans}]}]} for the trace
// records among `records` (other kinds are skipped).
nlohmann::ordered_json otel_export(const std::vector<StoredRecord>& records, const OtelOptions& options = {});

}  // namespace glassbox::audit
