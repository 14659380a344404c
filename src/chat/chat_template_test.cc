// Reproduces every case of tests/data/reference/templates/*.json: real chat
// templates rendered by @huggingface/jinja and cross-checked with Python
// Jinja2 3.1.6 (set up as transformers does). Where the two disagree the
// Jinja2 result recorded in the case is the expectation (see the README).
#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace glassbox::chat {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

const fs::path kTemplateDir = fs::path(GLASSBOX_TEST_DATA) / "reference" / "templates";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ReferenceCase {
  std::string test_name;
  std::string template_file;
  json data;
};

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

std::vector<ReferenceCase> load_cases() {
  std::vector<ReferenceCase> cases;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kTemplateDir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, int> seen;
  for (const auto& file : files) {
    const json doc = json::parse(read_file(file));
    for (const auto& c : doc.at("cases")) {
      std::string name = sanitize(file.stem().string()) + "__" + sanitize(c.at("name").get<std::string>());
      if (int n = seen[name]++; n > 0) name += "_" + std::to_string(n);
      cases.push_back({name, doc.at("template_file").get<std::string>(), c});
    }
  }
  return cases;
}

const ChatTemplate& template_for(const std::string& file) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<ChatTemplate>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[file];
  if (!slot) {
    jinja::Options options;
    options.name = file;
    slot = std::make_unique<ChatTemplate>(read_file(kTemplateDir / "templates" / file), options);
  }
  return *slot;
}

ChatRequest request_for(const json& c) {
  ChatRequest req;
  req.messages = c.at("messages");
  req.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
  req.kwargs = c.at("kwargs");
  req.bos_token = c.at("bos_token").get<std::string>();
  req.eos_token = c.at("eos_token").get<std::string>();
  std::tm fixed{};  // the reference date: 2024-07-26 00:00:00, a Friday
  fixed.tm_year = 2024 - 1900;
  fixed.tm_mon = 6;
  fixed.tm_mday = 26;
  fixed.tm_wday = 5;
  fixed.tm_yday = 207;
  req.now = fixed;
  return req;
}

// The expectation: Jinja2's result where the crosscheck recorded a
// disagreement, else the reference result (which Jinja2 agrees with).
struct Expected {
  std::optional<std::string> rendered;
  std::optional<std::string> error;
  bool message_must_match = false;
};

Expected expected_for(const json& c) {
  Expected e;
  const json& cross = c.at("crosscheck");
  const bool agrees = cross.at("agrees").get<bool>();
  const json& source = agrees ? c : cross;
  if (source.contains("rendered")) {
    e.rendered = source.at("rendered").get<std::string>();
  } else {
    e.error = source.at("error").get<std::string>();
    e.message_must_match = c.value("error_source", "") == "raise_exception";
  }
  return e;
}

class ReferenceTemplateTest : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(ReferenceTemplateTest, MatchesJinja2) {
  const ReferenceCase& rc = GetParam();
  const ChatTemplate& tmpl = template_for(rc.template_file);
  const ChatRequest req = request_for(rc.data);
  const Expected want = expected_for(rc.data);
  if (want.rendered) {
    EXPECT_EQ(tmpl.render(req), *want.rendered);
  } else if (want.message_must_match) {
    try {
      tmpl.render(req);
      ADD_FAILURE() << "expected raise_exception(" << *want.error << ")";
    } catch (const jinja::RaisedException& ex) {
      EXPECT_EQ(std::string(ex.what()), *want.error);
    }
  } else {
    EXPECT_THROW(tmpl.render(req), glassbox::Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, ReferenceTemplateTest, ::testing::ValuesIn(load_cases()),
                         [](const ::testing::TestParamInfo<ReferenceCase>& info) { return info.param.test_name; });

TEST(ReferenceTemplates, AllCasesLoaded) {
  // README: 501 cases in 16 templates.
  EXPECT_EQ(load_cases().size(), 501u);
}

TEST(ChatTemplate, ToolsUndefinedUnlessGiven) {
  const std::string source = "{{ tools is defined }}|{% if tools %}{{ tools|length }}{% endif %}";
  ChatRequest req;
  EXPECT_EQ(render_chat(source, req), "False|");
  req.tools = json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  EXPECT_EQ(render_chat(source, req), "True|1");
}

TEST(ChatTemplate, KwargsBecomeVariablesAndKeepKeyOrder) {
  ChatRequest req;
  req.kwargs = json::parse(R"({"enable_thinking": false, "extra": {"b": 1, "a": 2}})");
  EXPECT_EQ(render_chat("{{ enable_thinking }} {{ extra|tojson }} {{ add_generation_prompt }}", req),
            "False {\"b\": 1, \"a\": 2} True");
}

TEST(ChatTemplate, StrftimeNowUsesRequestClock) {
  ChatRequest req;
  std::tm t{};
  t.tm_year = 124;
  t.tm_mon = 0;
  t.tm_mday = 5;
  t.tm_wday = 5;
  req.now = t;
  EXPECT_EQ(render_chat("{{ strftime_now('%d %b %Y|%-d|%B|%A') }}", req), "05 Jan 2024|5|January|Friday");
}

TEST(ChatTemplate, RaiseExceptionCarriesExactMessage) {
  ChatRequest req;
  try {
    render_chat("line one\n{{ raise_exception('Only user and assistant roles!') }}", req);
    FAIL() << "no exception";
  } catch (const jinja::RaisedException& e) {
    EXPECT_STREQ(e.what(), "Only user and assistant roles!");
    EXPECT_EQ(e.line(), 2);
  }
}

TEST(ChatTemplate, ParseOnceRenderMany) {
  ChatTemplate tmpl("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}");
  ChatRequest req;
  req.messages = json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(tmpl.render(req), "<user>hi");
  req.messages.push_back(json::parse(R"({"role": "assistant", "content": "yo"})"));
  EXPECT_EQ(tmpl.render(req), "<user>hi<assistant>yo");
}

TEST(ChatTemplate, BadRequestShapes) {
  ChatRequest req;
  req.messages = json::object();
  EXPECT_THROW(render_chat("x", req), glassbox::Error);
  req.messages = json::array();
  req.kwargs = json::array();
  EXPECT_THROW(render_chat("x", req), glassbox::Error);
}

}  // namespace
}  // namespace glassbox::chat
