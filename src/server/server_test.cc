// The server's policy logic without HTTP (keys, roles, exposure views, the
// step summary, request validation, config files), then the HTTP server
// itself in-process on the random reference model (cpp-httplib client):
// streaming, the exposure policy on the wire, errors, the audit chain.
#include "server/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "audit/canonical_json.h"
#include "audit/sha256.h"
#include "base/error.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/policy.h"
#include "server/reasoning_summary.h"
#include "server/trace_record.h"

namespace glassbox::server {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
const fs::path kRef = fs::path(GLASSBOX_TEST_DATA) / "reference";

fs::path temp_dir() {
  const fs::path d =
      fs::temp_directory_path() / ("glassbox-server-test-" + std::to_string(getpid()) + "-" + audit::random_hex(4));
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ------------------------------------------------------------ keys and roles

TEST(KeyRing, AuthenticatesByHashOnly) {
  const std::string key = generate_key();
  EXPECT_EQ(key.rfind("gb-", 0), 0u);
  EXPECT_EQ(key.size(), 3u + 48u);
  KeyRing ring({ApiKey{"alice", audit::sha256_hex(key), Role::Client, Exposure::Summary, ""}});
  EXPECT_FALSE(ring.open());
  const Principal p = ring.authenticate("Bearer " + key, "");
  EXPECT_EQ(p.key_name, "alice");
  EXPECT_EQ(p.role, Role::Client);
  EXPECT_EQ(p.exposure, Exposure::Summary);
  EXPECT_EQ(ring.authenticate("", key).key_name, "alice");  // x-api-key
  for (const auto& [auth, xkey] :
       std::vector<std::pair<std::string, std::string>>{{"", ""},
                                                        {"Bearer ", ""},
                                                        {"Bearer " + key + "x", ""},
                                                        {"Basic " + key, ""},
                                                        {key, ""},
                                                        {"Bearer " + audit::sha256_hex(key), ""}}) {
    try {
      ring.authenticate(auth, xkey);
      ADD_FAILURE() << "accepted '" << auth << "'";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 401);
      EXPECT_EQ(e.type, "authentication_error");
    }
  }
  // No keys: everyone is an anonymous admin.
  KeyRing open({});
  EXPECT_TRUE(open.open());
  EXPECT_EQ(open.authenticate("", "").role, Role::Admin);
  EXPECT_EQ(open.authenticate("Bearer whatever", "").exposure, Exposure::Full);
}

int status_of(const std::function<void()>& f) {
  try {
    f();
    return 200;
  } catch (const ApiError& e) {
    return e.status;
  }
}

TEST(Policy, RolesAndOwnership) {
  const Principal alice{"alice", Role::Client, Exposure::Full};
  const Principal hugo{"hugo", Role::Client, Exposure::Hidden};
  const Principal auditor{"audrey", Role::Auditor, Exposure::Hidden};
  const Principal admin{"root", Role::Admin, Exposure::Hidden};
  EXPECT_EQ(status_of([&] { require_generate(alice); }), 200);
  EXPECT_EQ(status_of([&] { require_generate(auditor); }), 403);
  EXPECT_EQ(status_of([&] { require_generate(admin); }), 200);
  EXPECT_EQ(status_of([&] { require_audit(alice); }), 403);
  EXPECT_EQ(status_of([&] { require_audit(auditor); }), 200);
  EXPECT_EQ(status_of([&] { require_trace_access(alice, "alice"); }), 200);
  EXPECT_EQ(status_of([&] { require_trace_access(alice, "hugo"); }), 403);
  EXPECT_EQ(status_of([&] { require_trace_access(alice, ""); }), 403);
  EXPECT_EQ(status_of([&] { require_trace_access(auditor, "hugo"); }), 200);
  EXPECT_EQ(status_of([&] { require_analyze(alice, "alice"); }), 200);
  EXPECT_EQ(status_of([&] { require_analyze(hugo, "hugo"); }), 403);  // needs full exposure
  EXPECT_EQ(trace_exposure(hugo), Exposure::Hidden);
  EXPECT_EQ(trace_exposure(auditor), Exposure::Full);  // auditors see every trace in full
  EXPECT_EQ(trace_exposure(admin), Exposure::Full);
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.4"));
}

// ------------------------------------------------------------ config

TEST(Config, KeysAddStoresHashesAndRejectsDuplicates) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "glassbox.json").string();
  const std::string a = add_key(path, "alice", Role::Client, Exposure::Hidden);
  const std::string b = add_key(path, "audrey", Role::Auditor, Exposure::Full);
  EXPECT_NE(a, b);
  const std::string text = slurp(path);
  EXPECT_EQ(text.find(a), std::string::npos) << "a key in clear";
  EXPECT_NE(text.find(audit::sha256_hex(a)), std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << "the config must not be readable by others";
  const ServerConfig c = load_config(path);
  ASSERT_EQ(c.keys.size(), 2u);
  EXPECT_EQ(c.keys[0].name, "alice");
  EXPECT_EQ(c.keys[0].exposure, Exposure::Hidden);
  EXPECT_EQ(c.keys[1].role, Role::Auditor);
  EXPECT_THROW(add_key(path, "alice", Role::Client, Exposure::Full), Error);
  EXPECT_THROW(add_key(path, "bad name", Role::Client, Exposure::Full), Error);
  EXPECT_THROW(add_key(path, "", Role::Client, Exposure::Full), Error);
  fs::remove_all(dir);
}

TEST(Config, MembersAreCheckedByName) {
  ServerConfig c;
  apply_config_json(json::parse(R"({"port": 9000, "parallel": 3, "limits": {"max_messages": 7},
                                    "reasoning_effort_budgets": {"low": 5}, "template_kwargs": {"x": 1},
                                    "kv_cache_type": "q8_0"})"),
                    c, "test");
  EXPECT_EQ(c.port, 9000);
  EXPECT_EQ(c.parallel, 3);
  EXPECT_EQ(c.limits.max_messages, 7);
  EXPECT_EQ(c.reasoning_effort_budgets["low"], 5);
  EXPECT_EQ(c.reasoning_effort_budgets["high"], -1);
  EXPECT_EQ(c.kv_cache, KvCacheType::Q8_0);
  for (const char* bad :
       {R"({"prot": 1})", R"({"port": "x"})", R"({"port": 70000})", R"({"limits": {"max_mesages": 1}})",
        R"({"keys": [{"name": "a", "sha256": "zz"}]})", R"({"keys": [{"name": "a", "role": "boss"}]})", R"([1])",
        R"({"parallel": 0})", R"({"kv_cache_type": "q4_0"})", R"({"kv_cache_type": 8})"}) {
    ServerConfig d;
    EXPECT_THROW(apply_config_json(json::parse(bad), d, "test"), Error) << bad;
  }
}

// ------------------------------------------------------------ summary

TEST(Summary, AbridgedFirstLineIsNeverTheWholeStep) {
  EXPECT_EQ(abridge_step("Okay.\nSeven is prime and so on."), "Okay.");
  const std::string one_line = "First I add two and three.";
  const std::string title = abridge_step(one_line);
  EXPECT_LT(title.size(), one_line.size());
  EXPECT_NE(one_line.find(title.substr(0, title.size() - 3)), std::string::npos);  // a prefix, then "…"
  EXPECT_EQ(title.substr(title.size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ(abridge_step("ab"), "a\xE2\x80\xA6");
  EXPECT_EQ(abridge_step(""), "");
  const std::string long_line(500, 'x');
  EXPECT_LE(abridge_step(long_line).size(), kMaxTitleBytes + 3);
  // Never a cut UTF-8 sequence.
  const std::string accents = "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";
  EXPECT_TRUE(audit::is_valid_utf8(abridge_step(accents)));
  EXPECT_TRUE(audit::is_valid_utf8(abridge_step("abc\xff\xfe\xfd def ghi jkl")));
}

TEST(Summary, StepsAndTheirTokens) {
  // Two paragraphs: tokens 0-2 form the first, 3-5 the second (the blank
  // line's token opens the second).
  const std::vector<ThinkingToken> toks = {{"Let me", 1.0f, -0.1f}, {" think", 3.0f, -0.2f}, {".", 2.0f, -0.3f},
                                           {"\n\n", 5.0f, -0.4f},   {"So it", 7.0f, -0.5f},  {" is 5.", 9.0f, -0.6f}};
  const auto steps = summarize_thinking(toks);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].tokens, 3);
  EXPECT_DOUBLE_EQ(steps[0].confidence, 2.0);
  EXPECT_EQ(steps[1].tokens, 3);
  EXPECT_DOUBLE_EQ(steps[1].confidence, 7.0);
  EXPECT_EQ(steps[0].title, "Let me\xE2\x80\xA6");  // "Let me think." is 13 bytes: at most 6 shown
  // One paragraph of several lines: the lines are the steps.
  const auto lines = summarize_thinking({{"a b c d\n", 1, 0}, {"e f g h\n", 2, 0}, {"i j k l", 3, 0}});
  EXPECT_EQ(lines.size(), 3u);
  EXPECT_TRUE(summarize_thinking({}).empty());
  // Many steps are merged into kMaxSummarySteps.
  std::vector<ThinkingToken> many;
  for (int i = 0; i < 100; ++i) many.push_back({"step number " + std::to_string(i) + "\n\n", 1, 0});
  const auto merged = summarize_thinking(many);
  EXPECT_EQ(merged.size(), kMaxSummarySteps);
  int total = 0;
  for (const auto& s : merged) total += s.tokens;
  EXPECT_EQ(total, 100);
}

TEST(Summary, FromAnAnalysisReport) {
  const json report = json::parse(R"({"steps": [
      {"text": "Compute seven times six carefully.", "mean_confidence": 4.5, "confidence": {"mean": 4.5}},
      {"first_line": "Then check", "confidence": 2}, 3, {"nothing": true}]})");
  const auto steps = summarize_report(report);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].title, "Compute seven tim\xE2\x80\xA6");  // 34 bytes: at most 17 shown
  EXPECT_DOUBLE_EQ(steps[0].confidence, 4.5);
  EXPECT_DOUBLE_EQ(steps[1].confidence, 2.0);
  EXPECT_TRUE(summarize_report(json::parse(R"({"steps": 5})")).empty());
  EXPECT_TRUE(summarize_report(json(nullptr)).empty());
}

// ------------------------------------------------------------ trace views

json sample_record() {
  return json::parse(R"({
    "kind": "trace", "trace_id": "t1", "key_name": "hugo", "reasoning": "secret thoughts here",
    "answer": "42", "report": {"steps": [{"text": "secret thoughts here"}]},
    "usage": {"reasoning_tokens": 2},
    "tokens": [
      {"id": 1, "text": "secret", "phase": "thinking", "logprob": -1.5, "confidence": 3.0},
      {"id": 2, "text": " thoughts here", "phase": "thinking", "logprob": -2.5, "confidence": 1.0},
      {"id": 3, "text": "</think>", "phase": "close_marker", "logprob": -0.5, "confidence": 1.0},
      {"id": 4, "text": "42", "phase": "answer", "logprob": -0.25, "confidence": 5.0}]})");
}

TEST(TraceView, ExposureDecidesWhatIsShown) {
  const json rec = sample_record();
  const ojson full = trace_view(rec, Exposure::Full);
  EXPECT_EQ(full["reasoning"], "secret thoughts here");
  EXPECT_EQ(full["tokens"].size(), 4u);
  EXPECT_EQ(full["id"], "t1");
  for (Exposure e : {Exposure::Hidden, Exposure::Summary}) {
    const ojson v = trace_view(rec, e);
    const std::string text = v.dump();
    // Hidden: not a word of it; summary: an abridged first line at most.
    EXPECT_EQ(text.find(e == Exposure::Hidden ? "secret" : "secret thoughts here"), std::string::npos) << text;
    EXPECT_EQ(text.find("-1.5"), std::string::npos) << "a thinking token's logprob";
    EXPECT_FALSE(v.contains("report"));
    EXPECT_EQ(v["tokens"].size(), 1u);
    EXPECT_EQ(v["reasoning_tokens_withheld"], 3);
    EXPECT_EQ(v["answer"], "42");
    EXPECT_EQ(v["usage"]["reasoning_tokens"], 2);
  }
  EXPECT_FALSE(trace_view(rec, Exposure::Hidden).contains("reasoning_summary"));
  EXPECT_TRUE(trace_view(rec, Exposure::Summary)["reasoning_summary"].is_array());
}

// ------------------------------------------------------------ requests

RequestDefaults defaults() {
  RequestDefaults d;
  d.model_id = "tiny";
  d.model_aliases = {"tiny.gguf"};
  d.effort_budgets = {{"low", 16}, {"medium", 64}, {"high", -1}};
  return d;
}

int parse_status(const std::string& body, std::string* param = nullptr) {
  try {
    parse_chat_request(ojson::parse(body), defaults());
    return 200;
  } catch (const ApiError& e) {
    if (param) *param = e.param;
    return e.status;
  }
}

TEST(Requests, ChatParametersMapToOptions) {
  const GenerationRequest g = parse_chat_request(ojson::parse(R"({
      "model": "tiny.gguf", "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                                         {"role": "user", "content": "hi"}],
      "max_completion_tokens": 33, "temperature": 0, "top_p": 0.5, "top_k": 7, "min_p": 0.1, "seed": 99,
      "stop": "END", "stream": true, "stream_options": {"include_usage": false}, "logprobs": true, "top_logprobs": 4,
      "reasoning_effort": "low", "reasoning_format": "none", "chat_template_kwargs": {"foo": "bar"},
      "glassbox": {"reasoning_logprobs": true, "min_thinking_tokens": 3, "analysis": "summary"}})"),
                                                 defaults());
  EXPECT_EQ(g.messages[0]["role"], "system");
  EXPECT_EQ(g.messages[0]["content"], "ab");
  EXPECT_EQ(g.options.max_tokens, 33);
  EXPECT_EQ(g.options.sampling.temperature, 0.0f);
  EXPECT_EQ(g.options.sampling.top_k, 7);
  EXPECT_EQ(g.options.sampling.seed, 99u);
  EXPECT_EQ(g.options.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(g.stream);
  EXPECT_FALSE(g.include_usage);
  EXPECT_EQ(g.top_logprobs, 4);
  EXPECT_EQ(g.options.trace_top_k, 5);  // at least the default
  EXPECT_EQ(g.options.think_budget, 16);
  EXPECT_EQ(g.options.min_think, 3);
  EXPECT_EQ(g.reasoning_format, ReasoningFormat::None);
  EXPECT_EQ(g.analysis, AnalysisLevel::Summary);
  EXPECT_TRUE(g.reasoning_logprobs);
  EXPECT_EQ(g.options.template_kwargs["foo"], "bar");
  EXPECT_EQ(g.parameters["seed"], 99);
  // enable_thinking=false and effort none turn thinking off.
  EXPECT_TRUE(parse_chat_request(ojson::parse(R"({"messages":[{"role":"user","content":"x"}],
      "chat_template_kwargs":{"enable_thinking":false}})"),
                                 defaults())
                  .options.no_think);
  EXPECT_TRUE(parse_chat_request(
                  ojson::parse(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"})"), defaults())
                  .options.no_think);
  // An explicit budget wins over the effort's.
  EXPECT_EQ(parse_chat_request(ojson::parse(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high",
      "thinking_budget_tokens": 9})"),
                               defaults())
                .options.think_budget,
            9);
  // Without a seed, each request draws one and records it.
  const auto a = parse_chat_request(ojson::parse(R"({"messages":[{"role":"user","content":"x"}]})"), defaults());
  const auto b = parse_chat_request(ojson::parse(R"({"messages":[{"role":"user","content":"x"}]})"), defaults());
  EXPECT_NE(a.options.sampling.seed, b.options.sampling.seed);
  EXPECT_EQ(a.parameters["seed"].get<uint64_t>(), a.options.sampling.seed);
}

TEST(Requests, BadValuesNameTheParameter) {
  const std::string user = R"("messages":[{"role":"user","content":"x"}])";
  struct Case {
    std::string body;
    int status;
    std::string param;
  };
  const std::vector<Case> cases = {
      {R"({"messages":"x"})", 400, "messages"},
      {"{" + user + R"(,"max_tokens":-1})", 400, "max_tokens"},
      {"{" + user + R"(,"max_tokens":100000})", 400, "max_tokens"},
      {"{" + user + R"(,"max_tokens":1.5})", 400, "max_tokens"},
      {"{" + user + R"(,"temperature":"hot"})", 400, "temperature"},
      {"{" + user + R"(,"top_p":0})", 400, "top_p"},
      {"{" + user + R"(,"min_p":2})", 400, "min_p"},
      {"{" + user + R"(,"top_logprobs":2})", 400, "top_logprobs"},
      {"{" + user + R"(,"n":3})", 400, "n"},
      {"{" + user + R"(,"stop":[1]})", 400, "stop[0]"},
      {"{" + user + R"(,"model":"other"})", 404, "model"},
      {"{" + user + R"(,"glassbox":{"x":1}})", 400, "glassbox.x"},
      {"{" + user + R"(,"thinking_budget_tokens":1,"glassbox":{"min_thinking_tokens":4}})", 400,
       "glassbox.min_thinking_tokens"},
      {R"({"messages":[{"role":"user"}]})", 400, "messages[0].content"},
      {R"({"messages":[{"role":"robot","content":"x"}]})", 400, "messages[0].role"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", 400, "messages[0].content[0]"},
  };
  for (const Case& c : cases) {
    std::string param;
    EXPECT_EQ(parse_status(c.body, &param), c.status) << c.body;
    EXPECT_EQ(param, c.param) << c.body;
  }
  // The message limit.
  ojson many = {{"messages", ojson::array()}};
  for (int i = 0; i < 10000; ++i) many["messages"].push_back({{"role", "user"}, {"content", "x"}});
  EXPECT_EQ(parse_status(many.dump()), 400);
  const auto raw = parse_completion_request(ojson::parse(R"({"prompt":["abc"],"logprobs":2})"), defaults());
  EXPECT_EQ(raw.messages[0]["content"], "abc");
  EXPECT_EQ(raw.options.template_override, kRawPromptTemplate);
  EXPECT_EQ(raw.top_logprobs, 2);
  EXPECT_EQ(raw.reasoning_format, ReasoningFormat::None);
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.request("/v1/chat/completions", 200, 0.3);
  m.request("/v1/chat/completions", 400, 0.001);
  m.tokens(10, 4, 3, 8);
  m.time_to_first_token(0.02);
  m.rejected("queue_full");
  const std::string text = m.render({2, 1, 2, 64});
  EXPECT_NE(text.find("glassbox_requests_total{endpoint=\"/v1/chat/completions\",code=\"200\"} 1"), std::string::npos);
  EXPECT_NE(text.find("glassbox_reasoning_tokens_total 4"), std::string::npos);
  EXPECT_NE(text.find("glassbox_queue_depth 2"), std::string::npos);
  EXPECT_NE(text.find("glassbox_request_duration_seconds_bucket{endpoint=\"/v1/chat/completions\",le=\"0.5\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("glassbox_request_duration_seconds_bucket{endpoint=\"/v1/chat/completions\",le=\"0.25\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("glassbox_rejected_requests_total{reason=\"queue_full\"} 1"), std::string::npos);
}

// ------------------------------------------------------------ HTTP, in process

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir();
    model_ = Model::load((kRef / "models" / "rand-qwen3.f32.gguf").string());
    store_ = audit::AuditStore::open((dir_ / "audit.db").string());
    ServerConfig c;
    c.port = 0;
    c.threads = 1;
    c.template_file = (kRef / "templates" / "templates" / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja").string();
    c.template_kwargs = {{"enable_thinking", true}};
    keys_["alice"] = generate_key();
    keys_["hugo"] = generate_key();
    keys_["audrey"] = generate_key();
    c.keys = {ApiKey{"alice", audit::sha256_hex(keys_["alice"]), Role::Client, Exposure::Full, ""},
              ApiKey{"hugo", audit::sha256_hex(keys_["hugo"]), Role::Client, Exposure::Hidden, ""},
              ApiKey{"audrey", audit::sha256_hex(keys_["audrey"]), Role::Auditor, Exposure::Full, ""}};
    ModelInfo info{"rand-qwen3", {}, "rand-qwen3.f32.gguf", std::string(64, '0')};
    server_ = std::make_unique<Server>(*model_, c, info, *store_);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  httplib::Result post(const std::string& path, const std::string& body, const std::string& key) {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(60, 0);
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    return cli.Post(path.c_str(), h, body, "application/json");
  }
  httplib::Result get(const std::string& path, const std::string& key) {
    httplib::Client cli("127.0.0.1", port_);
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    return cli.Get(path.c_str(), h);
  }

  const std::string request_ = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":24,
      "thinking_budget_tokens":8,"temperature":1,"top_k":0,"top_p":1,"min_p":0,"seed":3,"logprobs":true,
      "glassbox":{"reasoning_logprobs":true}})";
  fs::path dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<audit::AuditStore> store_;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> keys_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(HttpServerTest, StreamsAndRecordsUnderThePolicy) {
  // Full exposure, streaming: reasoning deltas before content, [DONE] last.
  std::string body = request_;
  body.insert(1, "\"stream\":true,");
  auto r = post("/v1/chat/completions", body, keys_["alice"]);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<json> chunks;
  std::istringstream lines(r->body);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    last = line.substr(6);
    if (last != "[DONE]") chunks.push_back(json::parse(last));
  }
  EXPECT_EQ(last, "[DONE]");
  std::string reasoning, content;
  bool content_started = false, reasoning_after_content = false;
  for (const json& c : chunks) {
    for (const auto& ch : c["choices"]) {
      const json& d = ch["delta"];
      if (d.contains("reasoning_content")) {
        reasoning += d["reasoning_content"].get<std::string>();
        reasoning_after_content |= content_started;
      }
      if (d.contains("content")) {
        content += d["content"].get<std::string>();
        content_started = true;
      }
    }
  }
  EXPECT_FALSE(reasoning.empty());
  EXPECT_FALSE(reasoning_after_content);
  const json& usage = chunks.back()["usage"];
  EXPECT_GT(usage["completion_tokens_details"]["reasoning_tokens"].get<int>(), 0);
  const std::string trace_id = chunks.back()["trace_id"];
  // The stored record holds what was streamed.
  const auto stored = store_->find_trace(trace_id);
  ASSERT_TRUE(stored);
  const json rec = stored->parsed();
  EXPECT_EQ(rec["reasoning"], reasoning);
  EXPECT_EQ(rec["answer"], content);
  EXPECT_EQ(rec["key_name"], "alice");

  // Hidden exposure: nothing of the reasoning on the wire, still stored.
  r = post("/v1/chat/completions", request_, keys_["hugo"]);
  ASSERT_EQ(r->status, 200) << r->body;
  const json hidden = json::parse(r->body);
  const json hidden_rec = store_->find_trace(hidden["trace_id"])->parsed();
  const std::string hidden_reasoning = hidden_rec["reasoning"];
  ASSERT_GE(hidden_reasoning.size(), 8u);
  EXPECT_EQ(r->body.find(json(hidden_reasoning).dump()), std::string::npos);
  EXPECT_EQ(r->body.find("reasoning_content"), std::string::npos);
  EXPECT_GT(hidden["usage"]["completion_tokens_details"]["reasoning_tokens"].get<int>(), 0);

  // Ownership: alice cannot read hugo's trace; the auditor can, in full.
  const std::string hugo_trace = hidden["trace_id"];
  EXPECT_EQ(get("/v1/traces/" + hugo_trace, keys_["alice"])->status, 403);
  auto audited = get("/v1/traces/" + hugo_trace, keys_["audrey"]);
  EXPECT_EQ(audited->status, 200);
  EXPECT_EQ(json::parse(audited->body)["reasoning"], hidden_reasoning);
  EXPECT_EQ(get("/v1/traces/" + hugo_trace, "gb-unknown")->status, 401);
  EXPECT_EQ(post("/v1/chat/completions", request_, keys_["audrey"])->status, 403);

  auto verify = get("/v1/audit/verify", keys_["audrey"]);
  EXPECT_EQ(json::parse(verify->body)["ok"], true);
  EXPECT_TRUE(store_->verify().ok);
}

TEST_F(HttpServerTest, BadRequestsAreJsonErrorsAndTheServerGoesOn) {
  for (const std::string& body : {std::string("{"), std::string("[]"), std::string("{\"messages\": 5}"),
                                  std::string("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}"),
                                  std::string(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-4})"),
                                  std::string(R"({"model":"nope","messages":[{"role":"user","content":"x"}]})")}) {
    auto r = post("/v1/chat/completions", body, keys_["alice"]);
    ASSERT_TRUE(r);
    EXPECT_GE(r->status, 400) << body;
    EXPECT_LT(r->status, 500) << body;
    const json err = json::parse(r->body);
    EXPECT_TRUE(err["error"]["message"].is_string()) << r->body;
  }
  EXPECT_EQ(get("/v1/nope", keys_["alice"])->status, 404);
  EXPECT_EQ(get("/favicon-none.ico", "")->status, 404);
  // Other paths are the trace explorer's page.
  auto page = get("/traces/abc", "");
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_EQ(post("/v1/chat/completions", request_, keys_["alice"])->status, 200);
  auto health = get("/health", "");
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace glassbox::server
