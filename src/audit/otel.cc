#include "audit/otel.h"

#include "audit/sha256.h"

namespace glassbox::audit {
namespace {

using ojson = nlohmann::ordered_json;

ojson string_attr(const std::string& key, const std::string& value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}
ojson int_attr(const std::string& key, int64_t value) {
  // OTLP/JSON carries 64-bit integers as strings.
  return {{"key", key}, {"value", {{"intValue", std::to_string(value)}}}};
}
ojson double_attr(const std::string& key, double value) { return {{"key", key}, {"value", {{"doubleValue", value}}}}; }
ojson string_array_attr(const std::string& key, const std::vector<std::string>& values) {
  ojson items = ojson::array();
  for (const auto& v : values) items.push_back({{"stringValue", v}});
  return {{"key", key}, {"value", {{"arrayValue", {{"values", items}}}}}};
}

const nlohmann::json* find(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string nanos(int64_t ms) { return std::to_string(ms) + "000000"; }

}  // namespace

ojson otel_span(const StoredRecord& stored, const nlohmann::json& record, const OtelOptions& options) {
  const std::string trace_id = record.value("trace_id", "");
  const std::string endpoint = record.value("endpoint", "chat.completions");
  const std::string operation = endpoint == "completions" ? "text_completion" : "chat";
  const std::string model = record.value("model", "");
  ojson attrs = ojson::array();
  attrs.push_back(string_attr("gen_ai.operation.name", operation));
  attrs.push_back(string_attr("gen_ai.provider.name", "glassbox"));
  attrs.push_back(string_attr("gen_ai.system", "glassbox"));
  const nlohmann::json* request = find(record, "request");
  if (request && find(*request, "model") && (*request)["model"].is_string())
    attrs.push_back(string_attr("gen_ai.request.model", (*request)["model"].get<std::string>()));
  else
    attrs.push_back(string_attr("gen_ai.request.model", model));
  attrs.push_back(string_attr("gen_ai.response.model", model));
  attrs.push_back(string_attr("gen_ai.response.id", record.value("response_id", trace_id)));
  if (const auto* params = find(record, "parameters")) {
    if (const auto* v = find(*params, "max_tokens"); v && v->is_number_integer())
      attrs.push_back(int_attr("gen_ai.request.max_tokens", v->get<int64_t>()));
    if (const auto* v = find(*params, "temperature"); v && v->is_number())
      attrs.push_back(double_attr("gen_ai.request.temperature", v->get<double>()));
    if (const auto* v = find(*params, "top_p"); v && v->is_number())
      attrs.push_back(double_attr("gen_ai.request.top_p", v->get<double>()));
    if (const auto* v = find(*params, "top_k"); v && v->is_number())
      attrs.push_back(double_attr("gen_ai.request.top_k", v->get<double>()));
    if (const auto* v = find(*params, "seed"); v && v->is_number_integer())
      attrs.push_back(int_attr("gen_ai.request.seed", v->get<int64_t>()));
    if (const auto* v = find(*params, "stop"); v && v->is_array()) {
      std::vector<std::string> stops;
      for (const auto& s : *v)
        if (s.is_string()) stops.push_back(s.get<std::string>());
      if (!stops.empty()) attrs.push_back(string_array_attr("gen_ai.request.stop_sequences", stops));
    }
  }
  const std::string finish = record.value("finish_reason", "");
  if (!finish.empty()) attrs.push_back(string_array_attr("gen_ai.response.finish_reasons", {finish}));
  if (const auto* usage = find(record, "usage")) {
    auto count = [&](const char* key) -> int64_t {
      const auto* v = find(*usage, key);
      return v && v->is_number_integer() ? v->get<int64_t>() : 0;
    };
    attrs.push_back(int_attr("gen_ai.usage.input_tokens", count("prompt_tokens")));
    attrs.push_back(int_attr("gen_ai.usage.output_tokens", count("completion_tokens")));
    attrs.push_back(int_attr("gen_ai.usage.reasoning.output_tokens", count("reasoning_tokens")));
  }
  if (options.include_content) {
    if (request && find(*request, "messages"))
      attrs.push_back(string_attr("gen_ai.input.messages", (*request)["messages"].dump()));
    else if (request && find(*request, "prompt"))
      attrs.push_back(
          string_attr("gen_ai.input.messages",
                      nlohmann::json::array(
                          {{{"role", "user"}, {"parts", {{{"type", "text"}, {"content", (*request)["prompt"]}}}}}})
                          .dump()));
    nlohmann::json parts = nlohmann::json::array();
    if (const auto* r = find(record, "reasoning"); r && r->is_string() && !r->get<std::string>().empty())
      parts.push_back({{"type", "reasoning"}, {"content", *r}});
    if (const auto* a = find(record, "answer"); a && a->is_string())
      parts.push_back({{"type", "text"}, {"content", *a}});
    attrs.push_back(string_attr(
        "gen_ai.output.messages",
        nlohmann::json::array({{{"role", "assistant"}, {"parts", parts}, {"finish_reason", finish}}}).dump()));
  }
  attrs.push_back(string_attr("glassbox.trace_id", trace_id));
  attrs.push_back(int_attr("glassbox.audit.seq", stored.seq));
  attrs.push_back(string_attr("glassbox.audit.hash", stored.hash));
  if (const auto* v = find(record, "model_sha256"); v && v->is_string())
    attrs.push_back(string_attr("glassbox.model.sha256", v->get<std::string>()));
  if (const auto* v = find(record, "key_name"); v && v->is_string())
    attrs.push_back(string_attr("glassbox.key_name", v->get<std::string>()));

  const int64_t start = record.value("created_at", int64_t{0});
  const int64_t end = record.value("completed_at", start);
  // OTLP trace ids are 16 bytes: glassbox trace ids are 32 hex digits already.
  const std::string otel_trace_id = trace_id.size() == 32 ? trace_id : sha256_hex(trace_id).substr(0, 32);
  ojson span;
  span["traceId"] = otel_trace_id;
  span["spanId"] = sha256_hex("span:" + trace_id).substr(0, 16);
  span["name"] = operation + " " + model;
  span["kind"] = 2;  // SPAN_KIND_SERVER
  span["startTimeUnixNano"] = nanos(start);
  span["endTimeUnixNano"] = nanos(end);
  span["attributes"] = attrs;
  const bool failed = finish == "error";
  span["status"] = {{"code", failed ? 2 : 1}};
  return span;
}

ojson otel_export(const std::vector<StoredRecord>& records, const OtelOptions& options) {
  ojson spans = ojson::array();
  for (const StoredRecord& r : records) {
    if (r.kind != "trace") continue;
    spans.push_back(otel_span(r, r.parsed(), options));
  }
  ojson resource = {{"attributes", ojson::array({string_attr("service.name", options.service_name)})}};
  ojson scope = {{"name", "glassbox.audit"}, {"version", "0.1.0"}};
  return {{"resourceSpans", ojson::array({{{"resource", resource},
                                           {"scopeSpans", ojson::array({{{"scope", scope}, {"spans", spans}}})}}})}};
}

}  // namespace glassbox::audit
