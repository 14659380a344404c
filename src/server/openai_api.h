// The OpenAI-compatible request surface: parsing and validating the bodies of
// POST /v1/chat/completions and /v1/completions into generation settings, and
// OpenAI-style error bodies. Everything here is untrusted input: every
// problem becomes an ApiError (400/404/413 ...) naming the parameter.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/config.h"
#include "session/chat_session.h"

namespace glassbox::server {

// {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = "", std::string code = "", std::string type = "");
  int status;
  std::string type, param, code;
};

nlohmann::ordered_json error_body(const ApiError& e);
// The OpenAI error type for a status (invalid_request_error, authentication_error ...).
std::string error_type_for(int status);

enum class Endpoint { Chat, Completion };
enum class ReasoningFormat { Deepseek, None };
enum class AnalysisLevel { None, Summary, Full };
std::string to_string(AnalysisLevel level);

// What the server knows when it parses a request.
struct RequestDefaults {
  std::string model_id;
  std::vector<std::string> model_aliases;  // other names accepted (file name ...)
  Limits limits;
  SamplingParams sampling;  // the model's recommendation or glassbox's defaults
  std::map<std::string, int> effort_budgets;
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  std::string template_override;  // --template
  int trace_top_k = 5;
  std::string bos_text;  // prepended to raw prompts when the model wants BOS
};

struct GenerationRequest {
  Endpoint endpoint = Endpoint::Chat;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // raw: one user message holding the prompt
  ChatOptions options;
  bool stream = false;
  bool include_usage = true;
  bool logprobs = false;
  int top_logprobs = 0;
  bool reasoning_logprobs = false;  // glassbox.reasoning_logprobs (full exposure only)
  ReasoningFormat reasoning_format = ReasoningFormat::Deepseek;
  AnalysisLevel analysis = AnalysisLevel::None;
  nlohmann::ordered_json parameters;  // effective settings, recorded with the trace
};

// Parse + validate. `body` is the parsed JSON (any type). Throws ApiError.
GenerationRequest parse_chat_request(const nlohmann::ordered_json& body, const RequestDefaults& d);
GenerationRequest parse_completion_request(const nlohmann::ordered_json& body, const RequestDefaults& d);

// The template that renders a raw prompt verbatim (messages[0].content).
inline constexpr const char* kRawPromptTemplate = "{{ messages[0]['content'] }}";

}  // namespace glassbox::server
