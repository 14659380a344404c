// run (chat with thinking control), template (render a chat template), eval
// (accuracy on a problem set).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/analysis.h"
#include "base/error.h"
#include "chat/chat_template.h"
#include "cli/cmd_analyze.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "session/chat_session.h"

namespace glassbox::cli {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr const char* kDefaultModelName = "glassbox-tiny-reasoner.gguf";

// The embedded default model: $GLASSBOX_MODEL, then models/ beside or above
// the executable, then ./models, then the source tree the binary was built from.
std::string default_model_path() {
  if (const char* env = std::getenv("GLASSBOX_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / "models" / kDefaultModelName);
    candidates.push_back(exe.parent_path().parent_path() / "models" / kDefaultModelName);
    candidates.push_back(exe.parent_path().parent_path() / "share" / "glassbox" / kDefaultModelName);
  }
  candidates.push_back(fs::path("models") / kDefaultModelName);
  candidates.push_back(fs::path(GLASSBOX_SOURCE_DIR) / "models" / kDefaultModelName);
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c.string();
  throw Error(std::string("no model given (-m) and the default model ") + kDefaultModelName +
              " was not found (set GLASSBOX_MODEL or pass -m)");
}

// Sampling defaults: the model's own recommendation (general.sampling.* keys,
// as llama.cpp reads them) unless the user set a flag.
void apply_model_sampling_defaults(const Model& m, SamplingParams& s, const CLI::App& cmd) {
  const gguf::File& f = m.file();
  if (cmd.count("--temp") == 0) {
    if (auto v = f.get_float("general.sampling.temp")) s.temperature = static_cast<float>(*v);
  }
  if (cmd.count("--top-k") == 0) {
    if (auto v = f.get_int("general.sampling.top_k")) s.top_k = static_cast<int>(*v);
  }
  if (cmd.count("--top-p") == 0) {
    if (auto v = f.get_float("general.sampling.top_p")) s.top_p = static_cast<float>(*v);
  }
  if (cmd.count("--min-p") == 0) {
    if (auto v = f.get_float("general.sampling.min_p")) s.min_p = static_cast<float>(*v);
  }
}

struct ThinkingFlags {
  int think_budget = -1;
  int min_think = 0;
  bool no_think = false;
  bool budget_message = false;
  int max_tokens = 2048;
  std::string template_file;
  std::string kwargs;
  int ctx = 0;
  int threads = 0;
  KvCacheType kv_cache = KvCacheType::Auto;
};

void add_thinking_options(CLI::App* cmd, ThinkingFlags& t) {
  auto* budget = cmd->add_option("--think-budget", t.think_budget, "at most N thinking tokens, then the answer");
  auto* nothink = cmd->add_flag("--no-think", t.no_think, "answer without thinking");
  nothink->excludes(budget);
  cmd->add_option("--min-think", t.min_think, "think at least N tokens (an early end becomes \"Wait\")");
  cmd->add_flag("--budget-message", t.budget_message, "say why thinking stops when the budget runs out");
  cmd->add_option("-n,--max-tokens", t.max_tokens, "generated tokens at most (thinking + answer)")
      ->capture_default_str();
  cmd->add_option("--template", t.template_file, "Jinja chat template file replacing the model's");
  cmd->add_option("--kwargs", t.kwargs, "template variables as a JSON object, e.g. '{\"enable_thinking\":false}'");
  cmd->add_option("-c,--ctx-size", t.ctx, "context size (default: the model's, at most 4096)");
  cmd->add_option("-t,--threads", t.threads, "threads (default: all cores)");
  add_kv_cache_option(cmd, &t.kv_cache);
}

ChatOptions make_chat_options(const ThinkingFlags& t, const SamplingParams& s) {
  ChatOptions o;
  o.sampling = s;
  o.max_tokens = t.max_tokens;
  o.think_budget = t.think_budget;
  o.min_think = t.min_think;
  o.no_think = t.no_think;
  o.budget_message = t.budget_message;
  if (!t.template_file.empty()) o.template_override = read_file(t.template_file);
  if (!t.kwargs.empty()) {
    try {
      o.template_kwargs = ojson::parse(t.kwargs);
    } catch (const std::exception& e) {
      throw Error(std::string("--kwargs is not valid JSON: ") + e.what());
    }
    if (!o.template_kwargs.is_object()) throw Error("--kwargs must be a JSON object");
  }
  return o;
}

ContextOptions make_context_options(const ThinkingFlags& t) {
  ContextOptions c;
  c.n_ctx = t.ctx;
  c.n_threads = t.threads;
  c.kv_cache = t.kv_cache;
  return c;
}

// ------------------------------------------------------------------ run

struct RunOpts {
  std::string model, prompt, system;
  bool hide_thinking = false, json = false;
  ThinkingFlags thinking;
  SamplingParams sampling;
  AnalyzeFlags analysis;  // --analyze, --save-trace, ... (cmd_analyze.h)
};

class TerminalPrinter {
 public:
  TerminalPrinter(bool tty, bool hide_thinking) : tty_(tty), hide_(hide_thinking) {}
  void reasoning(const std::string& text) {
    if (hide_ || text.empty()) return;
    if (state_ != State::Reasoning) {
      if (tty_)
        std::fputs("\033[2m", stdout);
      else
        std::fputs("Thinking:\n", stdout);
      state_ = State::Reasoning;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  void content(const std::string& text) {
    if (text.empty()) return;
    if (state_ != State::Content) {
      if (state_ == State::Reasoning) std::fputs(tty_ ? "\033[0m\n\n" : "\n\n", stdout);
      if (!tty_) std::fputs("Answer:\n", stdout);
      state_ = State::Content;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  void end() {
    if (state_ == State::Reasoning && tty_) std::fputs("\033[0m", stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    state_ = State::None;
  }

 private:
  enum class State { None, Reasoning, Content };
  bool tty_, hide_;
  State state_ = State::None;
};

ojson result_json(const ChatResult& r) {
  ojson j;
  j["reasoning"] = r.reasoning;
  j["content"] = r.content;
  j["tokens"] = {{"reasoning", r.reasoning_tokens}, {"content", r.content_tokens}};
  j["finish_reason"] = r.finish_reason;
  return j;
}

void run_chat(const RunOpts& o, const CLI::App& cmd) {
  const std::string model_path = o.model.empty() ? default_model_path() : o.model;
  auto model = load_model(model_path);
  SamplingParams sampling = o.sampling;
  apply_model_sampling_defaults(*model, sampling, cmd);
  ChatOptions options = make_chat_options(o.thinking, sampling);
  apply_trace_options(o.analysis, options);
  ChatSession session(*model, make_context_options(o.thinking));
  ojson messages = ojson::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  const bool tty = stdout_is_terminal();

  auto one_turn = [&](const std::string& user) {
    messages.push_back({{"role", "user"}, {"content", user}});
    TerminalPrinter printer(tty, o.hide_thinking);
    StreamCallbacks cb;
    if (!o.json) {
      cb.on_reasoning = [&](const std::string& t) { printer.reasoning(t); };
      cb.on_content = [&](const std::string& t) { printer.content(t); };
    }
    const ChatResult r = session.generate(messages, options, cb);
    if (!o.json) printer.end();
    const bool printed_report = after_run_turn(session, model_path, messages, options, r, o.analysis, o.json);
    if (o.json && !printed_report) std::printf("%s\n", result_json(r).dump().c_str());
    ojson reply = {{"role", "assistant"}, {"content", r.content}};
    if (!r.reasoning.empty()) reply["reasoning_content"] = r.reasoning;
    messages.push_back(reply);
  };

  if (!o.prompt.empty()) {
    one_turn(o.prompt);
    return;
  }
  // Interactive multi-turn chat; the history is re-rendered through the
  // template each turn (the KV cache keeps the shared prefix).
  const bool tty_in = isatty(STDIN_FILENO) != 0;
  std::string line;
  for (;;) {
    if (tty_in) {
      std::fputs("\n> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    one_turn(line);
  }
}

// ------------------------------------------------------------------ eval

struct EvalOpts {
  std::string model, problems;
  bool json = false;
  int limit = 0;
  ThinkingFlags thinking;
  SamplingParams sampling;
};

void run_eval(const EvalOpts& o) {
  std::ifstream in(o.problems);
  if (!in) throw Error("cannot open problem file '" + o.problems + "'");
  struct Problem {
    std::string question;
    long long answer;
  };
  std::vector<Problem> problems;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      problems.push_back({j.at("question").get<std::string>(), j.at("answer").get<long long>()});
    } catch (const std::exception& e) {
      throw Error(o.problems + ":" + std::to_string(line_no) +
                  ": expected {\"question\": string, \"answer\": integer}: " + e.what());
    }
    if (o.limit > 0 && static_cast<int>(problems.size()) >= o.limit) break;
  }
  if (problems.empty()) throw Error(o.problems + ": no problems");

  auto model = load_model(o.model.empty() ? default_model_path() : o.model);
  ChatOptions options = make_chat_options(o.thinking, o.sampling);
  ChatSession session(*model, make_context_options(o.thinking));
  const bool tty = isatty(STDERR_FILENO) != 0;
  int correct = 0;
  double think_tokens = 0, answer_tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  ojson items = ojson::array();
  for (size_t i = 0; i < problems.size(); ++i) {
    const ojson messages = ojson::array({{{"role", "user"}, {"content", problems[i].question}}});
    const ChatResult r = session.generate(messages, options);
    // Scored like the analysis' final answer: the last integer of the content.
    const auto predicted = analysis::last_integer(r.content);
    const bool ok = predicted && predicted->value == problems[i].answer;
    correct += ok;
    think_tokens += r.reasoning_tokens;
    answer_tokens += r.content_tokens;
    items.push_back({{"question", problems[i].question},
                     {"answer", problems[i].answer},
                     {"predicted", predicted ? ojson(predicted->value) : ojson(nullptr)},
                     {"correct", ok},
                     {"reasoning_tokens", r.reasoning_tokens},
                     {"content_tokens", r.content_tokens}});
    if (tty)
      std::fprintf(stderr, "\r%zu/%zu problems, accuracy %.1f%%", i + 1, problems.size(),
                   100.0 * correct / static_cast<double>(i + 1));
  }
  if (tty) std::fputc('\n', stderr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double n = static_cast<double>(problems.size());
  if (o.json) {
    ojson j;
    j["problems"] = problems.size();
    j["correct"] = correct;
    j["accuracy"] = correct / n;
    j["mean_thinking_tokens"] = think_tokens / n;
    j["mean_answer_tokens"] = answer_tokens / n;
    j["seconds"] = seconds;
    j["think_budget"] = o.thinking.no_think ? ojson(0) : ojson(o.thinking.think_budget);
    j["no_think"] = o.thinking.no_think;
    j["items"] = items;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("problems:              %zu\n", problems.size());
    std::printf("accuracy:              %.2f%% (%d correct)\n", 100.0 * correct / n, correct);
    std::printf("mean thinking tokens:  %.1f\n", think_tokens / n);
    std::printf("mean answer tokens:    %.1f\n", answer_tokens / n);
    std::printf("time:                  %.1f s (%.2f s per problem)\n", seconds, seconds / n);
  }
}

}  // namespace

void register_chat_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("run", "Chat with a model: thinking dimmed, the answer plain");
    auto o = std::make_shared<RunOpts>();
    o->sampling.temperature = 0.6f;  // reasoning models' usual recommendation
    o->sampling.top_k = 20;
    o->sampling.top_p = 0.95f;
    o->sampling.min_p = 0.0f;
    cmd->add_option("prompt", o->prompt, "the question (none: interactive chat)");
    cmd->add_option("-m,--model", o->model, "GGUF model (default: the embedded tiny reasoner)");
    cmd->add_option("--system", o->system, "system message");
    cmd->add_flag("--hide-thinking", o->hide_thinking, "show only the answer");
    cmd->add_flag("--json", o->json, "print {reasoning, content, tokens, finish_reason} as JSON");
    add_thinking_options(cmd, o->thinking);
    add_sampling_options(cmd, o->sampling);
    add_run_analysis_options(cmd, o->analysis);
    cmd->callback([o, cmd] { run_chat(*o, *cmd); });
  }
  {
    auto* cmd = app.add_subcommand("template", "Render a chat template exactly as the model would see it");
    struct Opts {
      std::string model, messages, kwargs, template_file, bos, eos, date;
      bool no_generation_prompt = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-m,--model", o->model, "GGUF model (template and bos/eos tokens)");
    cmd->add_option("--messages", o->messages, "JSON file: an array of messages, or {\"messages\": [...]}")->required();
    cmd->add_flag("--no-generation-prompt", o->no_generation_prompt, "do not open the assistant's turn");
    cmd->add_option("--kwargs", o->kwargs, "template variables as a JSON object");
    cmd->add_option("--template", o->template_file, "Jinja template file (instead of the model's)");
    auto* bos = cmd->add_option("--bos", o->bos, "bos_token text");
    auto* eos = cmd->add_option("--eos", o->eos, "eos_token text");
    cmd->add_option("--date", o->date,
                    "the date strftime_now() sees, YYYY-MM-DD (default: today), for reproducible renders");
    cmd->callback([o, bos, eos] {
      if (o->model.empty() && o->template_file.empty()) throw Error("template needs -m MODEL or --template FILE");
      ojson doc;
      try {
        doc = ojson::parse(read_file(o->messages));
      } catch (const nlohmann::json::exception& e) {
        throw Error(o->messages + ": not valid JSON: " + e.what());
      }
      chat::ChatRequest req;
      req.messages = doc.is_object() && doc.contains("messages") ? doc["messages"] : doc;
      if (!req.messages.is_array()) throw Error(o->messages + ": expected an array of messages");
      req.add_generation_prompt = !o->no_generation_prompt;
      if (!o->kwargs.empty()) {
        try {
          req.kwargs = ojson::parse(o->kwargs);
        } catch (const nlohmann::json::exception& e) {
          throw Error(std::string("--kwargs is not valid JSON: ") + e.what());
        }
        if (!req.kwargs.is_object()) throw Error("--kwargs must be a JSON object");
      }
      std::string source;
      if (!o->model.empty()) {
        const VocabFile v = load_vocab(o->model);
        if (v.tokenizer->bos() >= 0) req.bos_token = v.tokenizer->token_text(v.tokenizer->bos());
        if (v.tokenizer->eos() >= 0) req.eos_token = v.tokenizer->token_text(v.tokenizer->eos());
        source = v.file->get_string("tokenizer.chat_template").value_or("");
      }
      if (!o->template_file.empty()) source = read_file(o->template_file);
      if (source.empty()) throw Error(o->model + " has no chat template (tokenizer.chat_template)");
      if (bos->count()) req.bos_token = o->bos;
      if (eos->count()) req.eos_token = o->eos;
      if (!o->date.empty()) {
        std::tm tm{};
        int y = 0, mo = 0, d = 0;
        char tail = 0;
        if (std::sscanf(o->date.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || mo < 1 || mo > 12 || d < 1 ||
            d > 31)
          throw Error("--date must be YYYY-MM-DD, got '" + o->date + "'");
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_isdst = -1;
        std::time_t t = timegm(&tm);  // normalises and fills the weekday and day of the year
        gmtime_r(&t, &tm);
        req.now = tm;
      }
      const std::string out = chat::render_chat(source, req);
      std::fwrite(out.data(), 1, out.size(), stdout);
    });
  }
  {
    auto* cmd = app.add_subcommand("eval", "Accuracy on a JSONL problem set ({\"question\", \"answer\"} per line)");
    auto o = std::make_shared<EvalOpts>();
    o->sampling.temperature = 0.0f;  // greedy
    cmd->add_option("-m,--model", o->model, "GGUF model (default: the embedded tiny reasoner)");
    cmd->add_option("--problems", o->problems, "JSONL file")->required();
    cmd->add_option("--limit", o->limit, "only the first N problems");
    cmd->add_flag("--json", o->json, "machine-readable summary with every item");
    add_thinking_options(cmd, o->thinking);
    add_sampling_options(cmd, o->sampling);
    cmd->callback([o] { run_eval(*o); });
  }
}

}  // namespace glassbox::cli
