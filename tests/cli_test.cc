// Runs the glassbox executable as a user would and checks exit codes, error
// messages (on stderr, naming the problem, no sanitizer report) and outputs
// against the reference data.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/gguf.h"

namespace {

namespace fs = std::filesystem;
const fs::path kRef = fs::path(GLASSBOX_TEST_DATA) / "reference";
const fs::path kBin = fs::path(GLASSBOX_BINARY_DIR) / "glassbox";

struct RunResult {
  int status = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path temp_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("glassbox-cli-test-" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Runs `glassbox ARGS` through the shell; ARGS must be shell-quoted already.
RunResult run(const std::string& args) {
  const fs::path err = temp_dir() / "stderr.txt";
  const std::string cmd = "'" + kBin.string() + "' " + args + " 2>'" + err.string() + "'";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.err = slurp(err);
  return r;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

void expect_clean_failure(const RunResult& r, const std::string& needle) {
  EXPECT_NE(r.status, 0);
  EXPECT_LT(r.status, 128) << "killed by a signal";
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(r.err.find("Sanitizer"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("runtime error"), std::string::npos) << r.err;
}

// A copy of a reference model with some tensors dropped, renamed or retyped,
// written with our GGUF writer.
fs::path doctored_model(const std::string& name, const std::string& drop, const std::string& reshape = "",
                        uint32_t retype = 0) {
  using namespace glassbox;
  auto src = gguf::File::open((kRef / "models" / "rand-qwen3.f32.gguf").string());
  gguf::Writer w;
  for (const auto& [k, v] : src->metadata())
    if (k != "general.alignment") w.set(k, v);
  for (const auto& t : src->tensors()) {
    if (t.name == drop) continue;
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    std::vector<uint8_t> data(t.data, t.data + t.nbytes);
    DType type = t.type;
    if (t.name == reshape && !retype) std::swap(ne[0], ne[1]);
    if (t.name == reshape && retype) {
      type = static_cast<DType>(retype);
      data.resize(static_cast<size_t>(row_bytes(type, ne[0]) * ne[1]));
    }
    w.add_tensor(t.name, type, ne, data);
  }
  const fs::path out = temp_dir() / name;
  w.write(out.string());
  return out;
}

TEST(Cli, InspectDescribesAModel) {
  const RunResult r = run("inspect -m " + q(kRef / "models" / "rand-qwen3-kq.q4_k_m.gguf"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("architecture:    qwen3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("head dim:        k 64, v 64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q4_K   12"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q6_K   3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tied"), std::string::npos) << r.out;
}

TEST(Cli, LogitsMatchReferenceBatchedAndSequential) {
  for (const std::string model : {"rand-llama.q4_0", "rand-qwen2.bf16", "rand-qwen3-kq.q6_k"}) {
    const auto ref = nlohmann::json::parse(slurp(kRef / "logits" / (model + ".dequant-f32.logits.json")));
    std::string ids;
    for (const auto& t : ref["tokens"]) {
      if (!ids.empty()) ids += ',';
      ids += std::to_string(t.get<int>());
    }
    for (const std::string mode : {"", " --sequential"}) {
      const RunResult r = run("logits -m " + q(kRef / "models" / (model + ".gguf")) + " --tokens " + ids + mode);
      ASSERT_EQ(r.status, 0) << r.err;
      const auto got = nlohmann::json::parse(r.out);
      ASSERT_EQ(got["n_vocab"], ref["n_vocab"]);
      ASSERT_EQ(got["logits"].size(), ref["logits"].size());
      double worst = 0;
      for (size_t p = 0; p < got["logits"].size(); ++p)
        for (size_t i = 0; i < got["logits"][p].size(); ++i)
          worst = std::max(worst, std::abs(got["logits"][p][i].get<double>() - ref["logits"][p][i].get<double>()));
      EXPECT_LE(worst, 1e-4) << model << mode;
    }
  }
}

TEST(Cli, BadFilesFailCleanly) {
  expect_clean_failure(run("inspect -m " + q(kRef / "models" / "stories260K.v1-legacy.gguf")), "version 1");
  expect_clean_failure(run("inspect -m " + q(temp_dir() / "does-not-exist.gguf")), "does-not-exist.gguf");

  const std::string good = slurp(kRef / "models" / "rand-qwen3.q8_0.gguf");
  const fs::path bad_magic = temp_dir() / "bad-magic.gguf";
  std::ofstream(bad_magic, std::ios::binary) << "GGUX" << good.substr(4);
  expect_clean_failure(run("inspect -m " + q(bad_magic)), "magic");

  const fs::path truncated = temp_dir() / "truncated.gguf";
  std::ofstream(truncated, std::ios::binary) << good.substr(0, good.size() / 2);
  expect_clean_failure(run("logits -m " + q(truncated) + " --tokens 1,2"), "truncated.gguf");

  expect_clean_failure(run("inspect -m " + q(doctored_model("no-ffn-up.gguf", "blk.1.ffn_up.weight"))),
                       "missing required tensor 'blk.1.ffn_up.weight'");
  // attn_k is [128, 64]: stored as [64, 128] it no longer fits the config.
  expect_clean_failure(run("inspect -m " + q(doctored_model("swapped.gguf", "", "blk.0.attn_k.weight"))),
                       "'blk.0.attn_k.weight' has shape");
  // Q4_1 is a valid ggml type the engine does not compute with.
  expect_clean_failure(run("inspect -m " + q(doctored_model("q4_1.gguf", "", "blk.0.ffn_down.weight", 3))),
                       "'blk.0.ffn_down.weight' has type Q4_1");
}

TEST(Cli, BadArgumentsFailCleanly) {
  const std::string m = q(kRef / "models" / "rand-qwen2.f32.gguf");
  expect_clean_failure(run("logits -m " + m + " --tokens 1,x,3"), "'x' is not a valid token id");
  expect_clean_failure(run("logits -m " + m + " --tokens 1,99999"), "out of range");
  expect_clean_failure(run("generate -m " + m + " -p hi --temp -1"), "temperature");
  expect_clean_failure(run("detokenize -m " + m + " --ids 5,70000"), "out of range");
  const RunResult usage = run("frobnicate");
  EXPECT_NE(usage.status, 0);
}

TEST(Cli, TokenizeAndDetokenizeRoundTrip) {
  const std::string vocab = q(kRef / "tokenizers" / "qwen3.vocab.gguf");
  const RunResult r = run("tokenize -m " + vocab + " --text 'Hello world'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"], nlohmann::json::parse("[9707, 1879]"));
  const RunResult d = run("detokenize -m " + vocab + " --ids 9707,1879");
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out, "Hello world\n");
}

TEST(Cli, GenerateStories260KGreedy) {
  // BOS + "Once upon a time" are the first 5 reference ids; the greedy
  // continuation must spell the next reference ids exactly.
  const auto ref = nlohmann::json::parse(slurp(kRef / "logits" / "stories260K.greedy200.json"));
  const std::string model = q(kRef / "models" / "stories260K.gguf");
  const RunResult tok = run("tokenize -m " + model + " --text 'Once upon a time' --add-bos");
  ASSERT_EQ(tok.status, 0) << tok.err;
  const auto ids = nlohmann::json::parse(tok.out)["ids"].get<std::vector<int>>();
  ASSERT_EQ(ids, std::vector<int>(ref["ids"].begin(), ref["ids"].begin() + 5));
  std::string next;
  for (int i = 5; i < 25; ++i) {
    if (!next.empty()) next += ',';
    next += std::to_string(ref["ids"][i].get<int>());
  }
  const RunResult expected = run("detokenize -m " + model + " --ids " + next);
  ASSERT_EQ(expected.status, 0) << expected.err;
  const RunResult r = run("generate -m " + model + " -p 'Once upon a time' -n 20 --temp 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, expected.out) << r.out;
}

// --no-repack (before or after the subcommand) keeps the weights in the
// file's layout only; greedy generation on a Q4_K_M model (Q4_K and Q6_K
// matrices, packed by default where the CPU has the kernels) is the same.
TEST(Cli, NoRepackGeneratesTheSame) {
  const std::string model = q(kRef / "models" / "rand-qwen3-kq.q4_k_m.gguf");
  const std::string args = " -m " + model + " -p 'Once upon' -n 12 --temp 0 -t 2";
  const RunResult packed = run("generate" + args);
  ASSERT_EQ(packed.status, 0) << packed.err;
  const RunResult after = run("generate --no-repack" + args);
  ASSERT_EQ(after.status, 0) << after.err;
  const RunResult before = run("--no-repack generate" + args);
  ASSERT_EQ(before.status, 0) << before.err;
  EXPECT_FALSE(packed.out.empty());
  EXPECT_EQ(after.out, packed.out);
  EXPECT_EQ(before.out, packed.out);
}

// --kv-cache-type on generate and bench: q8_0 generates on a model with heads
// of 64; an unknown type, and q8_0 for heads of 8 (stories260K), are refused
// with the reason.
TEST(Cli, KvCacheTypeOption) {
  const std::string model = q(kRef / "models" / "rand-qwen3-kq.q4_k_m.gguf");
  const std::string args = "generate -m " + model + " -p 'Once upon' -n 12 --temp 0 -t 2 --kv-cache-type ";
  for (const char* type : {"f32", "f16", "q8_0"}) {
    const RunResult r = run(args + type);
    ASSERT_EQ(r.status, 0) << type << ": " << r.err;
    EXPECT_FALSE(r.out.empty()) << type;
  }
  expect_clean_failure(run(args + "q4_0"), "'q4_0' is not one of f32, f16, q8_0");
  expect_clean_failure(
      run("generate -m " + q(kRef / "models" / "stories260K.gguf") + " -p 'Once upon' -n 4 --kv-cache-type q8_0"),
      "multiples of 32");
  const RunResult j = run("bench -m " + model + " -t 2 --bandwidth-mib 8 -p 4 -n 3 -r 1 --bandwidth-runs 1 --json " +
                          "--kv-cache-type q8_0");
  ASSERT_EQ(j.status, 0) << j.err;
  const auto report = nlohmann::json::parse(j.out);
  ASSERT_FALSE(report.at("tests").empty());
  for (const auto& test : report.at("tests")) EXPECT_EQ(test.at("type_kv"), "q8_0");
}

// A `glassbox bench` command line on the small reference model, 2 threads,
// with an 8 MiB bandwidth probe (quick), and the given options.
std::string bench_command(const std::string& options) {
  return "bench -m " + q(kRef / "models" / "rand-qwen3-kq.q4_k_m.gguf") + " -t 2 --bandwidth-mib 8 " + options;
}

// `glassbox bench`: every figure of the report is there and consistent with
// the others (no speed is asserted: the machines are shared).
TEST(Cli, BenchReportsSpeedsTokenTimesAndBandwidth) {
  const std::string args = bench_command("-p 8 -n 6 -r 2 --bandwidth-runs 2");
  const RunResult j = run(args + " --json");
  ASSERT_EQ(j.status, 0) << j.err;
  const auto out = nlohmann::json::parse(j.out);
  const double bytes_per_token = out.at("weight_bytes_per_token").get<double>();
  EXPECT_GT(bytes_per_token, 0.0);
  const auto& bw = out.at("read_bandwidth").at(0);
  const auto reads = bw.at("samples_read_bytes_per_second").get<std::vector<double>>();
  ASSERT_EQ(reads.size(), 4u);  // two reads before the tests, two after
  EXPECT_EQ(bw.at("runs").get<int>(), 4);
  const double best = bw.at("read_bytes_per_second").get<double>();
  EXPECT_DOUBLE_EQ(best, *std::max_element(reads.begin(), reads.end()));
  const double median_read = bw.at("median_read_bytes_per_second").get<double>();
  EXPECT_GE(median_read, *std::min_element(reads.begin(), reads.end()));
  EXPECT_LE(median_read, best);
  ASSERT_EQ(out.at("tests").size(), 2u);
  const auto& pp = out.at("tests").at(0);
  const auto& tg = out.at("tests").at(1);
  EXPECT_EQ(pp.at("test"), "pp8");
  EXPECT_EQ(pp.at("samples_ts").size(), 2u);
  EXPECT_FALSE(pp.contains("token_ns_median"));
  EXPECT_EQ(tg.at("test"), "tg6");
  EXPECT_EQ(tg.at("samples_ts").size(), 2u);
  const double median = tg.at("token_ns_median").get<double>(), p90 = tg.at("token_ns_p90").get<double>(),
               p99 = tg.at("token_ns_p99").get<double>(), slowest = tg.at("token_ns_max").get<double>();
  EXPECT_GT(median, 0.0);
  EXPECT_LE(median, p90);
  EXPECT_LE(p90, p99);
  EXPECT_LE(p99, slowest);
  // The slowest token is no longer than its whole repetition.
  const auto rep_ns = tg.at("samples_ns").get<std::vector<double>>();
  EXPECT_LE(slowest, *std::max_element(rep_ns.begin(), rep_ns.end()));
  EXPECT_NEAR(tg.at("fraction_of_read_bandwidth_at_median_token").get<double>(),
              bytes_per_token / (median * 1e-9) / best, 1e-9 * bytes_per_token / (median * 1e-9) / best);
  EXPECT_NEAR(tg.at("fraction_of_read_bandwidth").get<double>(), tg.at("avg_ts").get<double>() * bytes_per_token / best,
              1e-9);

  const RunResult text = run(args);
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find(" tg6 |"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("measured read bandwidth, 2 threads:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("per token: median "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("at the median "), std::string::npos) << text.out;
}

// `glassbox bench -d`: each test at each depth, named as llama-bench names
// them.
TEST(Cli, BenchRunsEachTestAtEachDepth) {
  const RunResult j = run(bench_command("-p 4 -n 3 -d 0,5 -r 1 --bandwidth-runs 1 --json"));
  ASSERT_EQ(j.status, 0) << j.err;
  const auto tests = nlohmann::json::parse(j.out).at("tests");
  ASSERT_EQ(tests.size(), 4u);
  const char* names[] = {"pp4", "tg3", "pp4 @ d5", "tg3 @ d5"};
  const int depths[] = {0, 0, 5, 5};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(tests.at(i).at("test"), names[i]);
    EXPECT_EQ(tests.at(i).at("n_depth"), depths[i]);
  }
  const RunResult bad = run(bench_command("-p 4 -n 3 -d -1"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("-d must be >= 0"), std::string::npos) << bad.err;
}

// `glassbox bench --isa`: the kernels of the named instruction set run (and
// the report names them); one this CPU cannot run is refused by name.
TEST(Cli, BenchRunsTheNamedInstructionSet) {
  const RunResult j = run(bench_command("-p 4 -n 3 -r 1 --bandwidth-runs 1 --isa scalar --json"));
  ASSERT_EQ(j.status, 0) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out).at("isa"), "scalar");
  const RunResult text = run(bench_command("-p 0 -n 3 -r 1 --bandwidth-runs 1 --isa scalar"));
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find(" CPU scalar "), std::string::npos) << text.out;
  const RunResult bad = run(bench_command("-p 0 -n 3 --isa neon"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--isa neon"), std::string::npos) << bad.err;
}

// `glassbox bench --trace-top-k K`: each tg test also runs with the
// per-token trace, and the cost figures follow from the two results.
TEST(Cli, BenchTimesTheTraceAgainstPlainGeneration) {
  const std::string args = bench_command("-p 0 -n 6 -r 2 --bandwidth-runs 1");
  const RunResult j = run(args + " --trace-top-k 5 --json");
  ASSERT_EQ(j.status, 0) << j.err;
  const auto out = nlohmann::json::parse(j.out);
  ASSERT_EQ(out.at("tests").size(), 2u);
  const auto& plain = out.at("tests").at(0);
  const auto& traced = out.at("tests").at(1);
  EXPECT_EQ(plain.at("test"), "tg6");
  EXPECT_FALSE(plain.contains("trace_top_k"));
  EXPECT_EQ(traced.at("test"), "tg6+trace5");
  EXPECT_EQ(traced.at("trace_top_k"), 5);
  EXPECT_EQ(traced.at("samples_ts").size(), 2u);
  EXPECT_NEAR(traced.at("trace_cost_fraction").get<double>(),
              plain.at("avg_ts").get<double>() / traced.at("avg_ts").get<double>() - 1.0, 1e-9);
  EXPECT_NEAR(traced.at("trace_cost_fraction_at_median_token").get<double>(),
              traced.at("token_ns_median").get<double>() / plain.at("token_ns_median").get<double>() - 1.0, 1e-9);

  const RunResult text = run(args + " --trace-top-k 20");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find(" tg6+trace20 |"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("the per-token trace (tg6+trace20) costs "), std::string::npos) << text.out;

  const RunResult bad = run(args + " --trace-top-k -2");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--trace-top-k"), std::string::npos) << bad.err;
  const RunResult one = run(bench_command("-p 0 -n 1 --trace-top-k 5"));  // no token to compare with
  EXPECT_NE(one.status, 0);
  EXPECT_NE(one.err.find("2 tokens or more"), std::string::npos) << one.err;
}

// The embedded default model: `glassbox run` with no -m finds and uses it.
const fs::path kSourceRoot = fs::path(GLASSBOX_TEST_DATA).parent_path().parent_path();
const fs::path kTinyReasoner = kSourceRoot / "models" / "glassbox-tiny-reasoner.gguf";

long long last_integer(const std::string& text) {
  long long value = 0;
  bool found = false;
  for (size_t i = 0; i < text.size();) {
    const bool minus = text[i] == '-' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]));
    if (minus || std::isdigit(static_cast<unsigned char>(text[i]))) {
      size_t end = i + (minus ? 1 : 0);
      while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
      value = std::stoll(text.substr(i, end - i));
      found = true;
      i = end;
    } else {
      ++i;
    }
  }
  return found ? value : -999999;
}

TEST(Cli, RunAnswersWithTheEmbeddedTinyReasoner) {
  ASSERT_TRUE(fs::exists(kTinyReasoner)) << kTinyReasoner;
  const RunResult r = run("run 'What is (17 + 25) * 3 - 4?' -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  // The thinking is shown apart from the answer, and the answer is right:
  // (17 + 25) * 3 - 4 = 122.
  const size_t answer_at = r.out.rfind("The answer is");
  ASSERT_NE(answer_at, std::string::npos) << r.out;
  EXPECT_EQ(last_integer(r.out.substr(answer_at)), 122) << r.out;
  EXPECT_NE(r.out.find("17+25"), std::string::npos) << "the thinking is printed: " << r.out;
}

TEST(Cli, EvalScoresTheFixedProblemSet) {
  ASSERT_TRUE(fs::exists(kTinyReasoner)) << kTinyReasoner;
  const fs::path problems = kSourceRoot / "models" / "eval" / "ci-small.jsonl";
  std::vector<nlohmann::json> expected;
  {
    std::ifstream in(problems);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) expected.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(expected.size(), 20u);

  const RunResult think = run("eval --problems " + q(problems) + " --json -t 1");
  ASSERT_EQ(think.status, 0) << think.err;
  const auto j = nlohmann::json::parse(think.out);
  ASSERT_EQ(j["problems"], 20);
  ASSERT_EQ(j["items"].size(), 20u);
  int correct = 0;
  double thinking = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& item = j["items"][i];
    EXPECT_EQ(item["question"], expected[i]["question"]);
    EXPECT_EQ(item["answer"], expected[i]["answer"]);
    EXPECT_EQ(item["correct"].get<bool>(), !item["predicted"].is_null() && item["predicted"] == item["answer"]);
    correct += item["correct"].get<bool>();
    thinking += item["reasoning_tokens"].get<double>();
  }
  EXPECT_EQ(j["correct"], correct);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), correct / 20.0);
  EXPECT_NEAR(j["mean_thinking_tokens"].get<double>(), thinking / 20, 1e-9);
  // The model card's floor for this set: a broken engine, tokenizer or
  // template scores near zero.
  EXPECT_GE(correct, 19) << think.out;

  // Without thinking, no thinking tokens, and (the point of thinking) far
  // fewer right answers; a budget of 16 tokens sits in between.
  const RunResult no_think = run("eval --problems " + q(problems) + " --json --no-think -t 1");
  ASSERT_EQ(no_think.status, 0) << no_think.err;
  const auto n = nlohmann::json::parse(no_think.out);
  EXPECT_EQ(n["mean_thinking_tokens"].get<double>(), 0.0);
  EXPECT_TRUE(n["no_think"].get<bool>());
  EXPECT_LE(n["correct"].get<int>() + 8, correct) << no_think.out;
  const RunResult budget = run("eval --problems " + q(problems) + " --json --think-budget 16 -t 1");
  ASSERT_EQ(budget.status, 0) << budget.err;
  const auto b = nlohmann::json::parse(budget.out);
  EXPECT_EQ(b["think_budget"], 16);
  for (const auto& item : b["items"]) EXPECT_LE(item["reasoning_tokens"].get<int>(), 18) << item;

  // The human-readable summary names the same accuracy.
  const RunResult text = run("eval --problems " + q(problems) + " --limit 4 -t 1");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("accuracy:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("problems:              4"), std::string::npos) << text.out;
}

TEST(Cli, EvalRejectsBadProblemFiles) {
  const fs::path bad = temp_dir() / "bad.jsonl";
  std::ofstream(bad) << "{\"question\": \"What is 1 + 2?\", \"answer\": 3}\n{\"question\": 5}\n";
  expect_clean_failure(run("eval --problems " + q(bad) + " -t 1"), "bad.jsonl");
  expect_clean_failure(run("eval --problems " + q(temp_dir() / "missing.jsonl") + " -t 1"), "missing.jsonl");
}

}  // namespace
