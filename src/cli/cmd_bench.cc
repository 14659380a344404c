// bench: llama-bench-like speed table plus weight bytes per token against
// the measured read bandwidth. quantize: convert a GGUF model to another file
// type. synth-model: write a random-weight benchmark model.
#include "cli/cmd_bench.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/stats.h"
#include "base/thread_pool.h"
#include "cli/common.h"
#include "kernels/kernels.h"
#include "quantize/bench.h"
#include "quantize/model_files.h"
#include "quantize/quantize.h"
#include "session/chat_session.h"

namespace glassbox::cli {
namespace {

bool stderr_is_terminal() { return isatty(STDERR_FILENO) != 0; }

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// llama-bench prints sizes in GiB from 1 GiB on, MiB below.
std::string format_size(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  return b >= 1024.0 * 1024 * 1024 ? format("%.2f GiB", b / (1024.0 * 1024 * 1024))
                                   : format("%.2f MiB", b / (1024.0 * 1024));
}

std::string format_params(uint64_t n) {
  const double v = static_cast<double>(n);
  return v >= 1e9 ? format("%.2f B", v / 1e9) : format("%.2f M", v / 1e6);
}

// "qwen3 0.6B Q4_K - Medium": architecture, size class from the parameter
// count, file type.
std::string model_label(const Model& model, uint64_t n_params) {
  const double p = static_cast<double>(n_params);
  const std::string size = p >= 1e8 ? format("%.1fB", p / 1e9) : format("%.0fM", p / 1e6);
  const auto ftype = model.file().get_int("general.file_type");
  const std::string type =
      ftype ? std::string(quantize::file_type_description(static_cast<uint32_t>(*ftype))) : "unknown type";
  return model.config().arch + " " + size + " " + type;
}

// Writes a progress line on stderr when it is a terminal; clear() erases it.
class ProgressLine {
 public:
  ProgressLine() : enabled_(stderr_is_terminal()) {}
  void show(const std::string& text) {
    if (!enabled_) return;
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (enabled_ && shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }
  // A (done, total) byte-progress callback that shows "<label> NN%".
  quantize::WriteProgressFn bytes(const std::string& label) {
    if (!enabled_) return {};
    return [this, label, last = -1](uint64_t done, uint64_t total) mutable {
      const int pct = total ? static_cast<int>(done * 100 / total) : 100;
      if (pct == last) return;
      last = pct;
      show(label + " " + std::to_string(pct) + "%");
    };
  }

 private:
  bool enabled_;
  bool shown_ = false;
};

// ------------------------------------------------------------ bench

struct BenchArgs {
  std::string model;
  std::vector<int> n_prompt{512};
  std::vector<int> n_gen{128};
  std::vector<int> n_depth{0};
  std::vector<int> threads{0};
  int repetitions = 3;
  bool json = false;
  int bandwidth_mib = 1024;
  int bandwidth_runs = 5;
  uint64_t seed = 42;
  int trace_top_k = -1;  // >= 0: tg also with the per-token trace
  KvCacheType kv_cache = KvCacheType::Auto;
  std::string isa = "auto";  // the kernels' instruction set (kernels::force_isa)
};

struct ThreadResults {
  int threads = 0;
  KvCacheType kv_cache = KvCacheType::F16;  // as resolved
  bench::Bandwidth bandwidth;
  std::vector<bench::TestResult> tests;
  // tg tests run with and without the trace: indices into tests.
  struct TracePair {
    size_t plain, traced;
  };
  std::vector<TracePair> trace_pairs;
};

// What the trace adds to a token's time: by the mean speeds and by the
// median tokens of the paired runs.
struct TraceCost {
  double by_mean = 0, by_median_token = 0;
};
TraceCost trace_cost(const bench::TestResult& plain, const bench::TestResult& traced) {
  TraceCost c;
  if (plain.tps.mean > 0 && traced.tps.mean > 0) c.by_mean = plain.tps.mean / traced.tps.mean - 1.0;
  const double p = quantile(plain.token_seconds, 0.5), t = quantile(traced.token_seconds, 0.5);
  if (p > 0) c.by_median_token = t / p - 1.0;
  return c;
}

double gbps(double bytes_per_second) { return bytes_per_second / 1e9; }

// The fractions of the steady repetitions (RepetitionShare::steady).
std::vector<double> steady_fractions(const std::vector<bench::RepetitionShare>& shares) {
  std::vector<double> f;
  for (const bench::RepetitionShare& s : shares)
    if (s.steady) f.push_back(s.fraction);
  return f;
}

// Each tg repetition against the probe reads just before and after it.
void print_repetition_shares(const bench::TestResult& t, uint64_t bytes_per_token) {
  const std::vector<bench::RepetitionShare> shares = bench::repetition_shares(t, bytes_per_token);
  if (shares.empty()) return;
  std::printf("    per repetition, of the faster probe read just before / after it:");
  for (size_t i = 0; i < shares.size(); ++i) {
    const bench::RepetitionShare& s = shares[i];
    std::printf("%s %.1f%% (%.1f / %.1f GB/s%s)", i == 0 ? "" : ",", 100.0 * s.fraction, gbps(s.read_before),
                gbps(s.read_after), s.steady ? "" : ", memory speed changed");
  }
  std::printf("\n");
  const std::vector<double> steady = steady_fractions(shares);
  if (!steady.empty()) {
    std::printf("    in a steady memory phase (reads beside it within %.0f%%): median %.1f%%, best %.1f%% of %zu\n",
                100.0 * (1.0 - bench::kSteadyReadRatio), 100.0 * quantile(steady, 0.5), 100.0 * quantile(steady, 1.0),
                steady.size());
  }
}

void print_table(const Model& model, const bench::WeightFootprint& fp, const std::vector<ThreadResults>& results) {
  const std::string label = model_label(model, fp.n_params);
  const std::string backend = "CPU " + std::string(kernels::active_isa());
  struct Row {
    std::string cells[7];
  };
  std::vector<Row> rows;
  rows.push_back({{"model", "size", "params", "backend", "threads", "test", "t/s"}});
  for (const ThreadResults& tr : results) {
    for (const bench::TestResult& t : tr.tests) {
      rows.push_back(
          {{label, format_size(fp.file_tensor_bytes), format_params(fp.n_params), backend, std::to_string(tr.threads),
            t.name, format("%.2f", t.tps.mean) + " ± " + format("%.2f", t.tps.sd)}});
    }
  }
  // Widths in characters, not bytes: "±" is two bytes of UTF-8.
  auto display_width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xc0) != 0x80;
    return n;
  };
  size_t width[7] = {};
  for (const Row& r : rows) {
    for (int c = 0; c < 7; ++c) width[c] = std::max(width[c], display_width(r.cells[c]));
  }
  const bool right_aligned[7] = {false, true, true, false, true, true, true};
  auto print_row = [&](const Row& r) {
    std::printf("|");
    for (int c = 0; c < 7; ++c) {
      const std::string pad(width[c] - display_width(r.cells[c]), ' ');
      if (right_aligned[c]) {
        std::printf(" %s%s |", pad.c_str(), r.cells[c].c_str());
      } else {
        std::printf(" %s%s |", r.cells[c].c_str(), pad.c_str());
      }
    }
    std::printf("\n");
  };
  print_row(rows[0]);
  std::printf("|");
  for (int c = 0; c < 7; ++c) {
    const std::string dashes(width[c] > 0 ? width[c] - (right_aligned[c] ? 1 : 0) : 0, '-');
    std::printf(" %s%s |", dashes.c_str(), right_aligned[c] ? ":" : "");
  }
  std::printf("\n");
  for (size_t i = 1; i < rows.size(); ++i) print_row(rows[i]);

  std::printf(
      "\nweights read per generated token: %s (%.1f MB: every layer matrix, the output matrix, one "
      "embedding row)\n",
      format_size(fp.bytes_per_token).c_str(), static_cast<double>(fp.bytes_per_token) / 1e6);
  if (!results.empty())
    std::printf("KV cache: %s\n", std::string(kv_cache_type_name(results.front().kv_cache)).c_str());
  for (const ThreadResults& tr : results) {
    std::printf(
        "measured read bandwidth, %d thread%s: %.2f GB/s (best of %d reads of a %s buffer, before and "
        "after the tests; median %.2f)\n",
        tr.threads, tr.threads == 1 ? "" : "s", gbps(tr.bandwidth.bytes_per_second), tr.bandwidth.runs,
        format_size(tr.bandwidth.buffer_bytes).c_str(), gbps(quantile(tr.bandwidth.run_bytes_per_second, 0.5)));
    const double limit = tr.bandwidth.bytes_per_second;
    for (const bench::TestResult& t : tr.tests) {
      if (t.n_gen == 0) continue;
      const double used = t.tps.mean * static_cast<double>(fp.bytes_per_token);
      std::printf("  %s: %.2f t/s x %.1f MB = %.2f GB/s of weights = %.1f%% of measured bandwidth\n", t.name.c_str(),
                  t.tps.mean, static_cast<double>(fp.bytes_per_token) / 1e6, gbps(used),
                  limit > 0 ? 100.0 * used / limit : 0.0);
      const double median = quantile(t.token_seconds, 0.5);
      if (median > 0) {
        const double at_median = static_cast<double>(fp.bytes_per_token) / median;
        std::printf(
            "    per token: median %.2f ms, p90 %.2f, p99 %.2f, max %.2f; at the median %.2f GB/s of weights = "
            "%.1f%% of measured bandwidth\n",
            1e3 * median, 1e3 * quantile(t.token_seconds, 0.9), 1e3 * quantile(t.token_seconds, 0.99),
            1e3 * quantile(t.token_seconds, 1.0), gbps(at_median), limit > 0 ? 100.0 * at_median / limit : 0.0);
      }
      print_repetition_shares(t, fp.bytes_per_token);
    }
    for (const ThreadResults::TracePair& pair : tr.trace_pairs) {
      const bench::TestResult& plain = tr.tests[pair.plain];
      const bench::TestResult& traced = tr.tests[pair.traced];
      const TraceCost c = trace_cost(plain, traced);
      std::printf(
          "  the per-token trace (%s) costs %+.1f%% of generation time by the mean speeds, %+.1f%% at the median "
          "token (%.2f -> %.2f ms); traced and plain tokens alternate in each sequence\n",
          traced.name.c_str(), 100.0 * c.by_mean, 100.0 * c.by_median_token, 1e3 * quantile(plain.token_seconds, 0.5),
          1e3 * quantile(traced.token_seconds, 0.5));
    }
  }
}

void print_json(const BenchArgs& a, const Model& model, const bench::WeightFootprint& fp,
                const std::vector<ThreadResults>& results, double load_average) {
  using nlohmann::json;
  json out;
  out["model_filename"] = a.model;
  out["model_type"] = model_label(model, fp.n_params);
  out["model_size"] = fp.file_tensor_bytes;
  out["model_n_params"] = fp.n_params;
  out["backend"] = "CPU";
  out["isa"] = std::string(kernels::active_isa());
  out["repetitions"] = a.repetitions;
  out["load_average_at_start"] = load_average;
  out["weight_bytes_per_token"] = fp.bytes_per_token;
  json bandwidth = json::array();
  json tests = json::array();
  for (const ThreadResults& tr : results) {
    bandwidth.push_back({{"n_threads", tr.threads},
                         {"read_bytes_per_second", tr.bandwidth.bytes_per_second},
                         {"median_read_bytes_per_second", quantile(tr.bandwidth.run_bytes_per_second, 0.5)},
                         {"samples_read_bytes_per_second", tr.bandwidth.run_bytes_per_second},
                         {"buffer_bytes", tr.bandwidth.buffer_bytes},
                         {"runs", tr.bandwidth.runs}});
    for (size_t ti = 0; ti < tr.tests.size(); ++ti) {
      const bench::TestResult& t = tr.tests[ti];
      json j;
      j["test"] = t.name;
      j["n_threads"] = tr.threads;
      j["type_kv"] = kv_cache_type_name(tr.kv_cache);
      j["n_prompt"] = t.n_prompt;
      j["n_gen"] = t.n_gen;
      j["n_depth"] = t.n_depth;
      std::vector<double> ns;
      for (double s : t.seconds) ns.push_back(s * 1e9);
      const bench::MeanSd ns_stats = bench::mean_sd(ns);
      j["avg_ns"] = ns_stats.mean;
      j["stddev_ns"] = ns_stats.sd;
      j["avg_ts"] = t.tps.mean;
      j["stddev_ts"] = t.tps.sd;
      j["samples_ns"] = ns;
      j["samples_ts"] = t.tokens_per_sec;
      if (t.n_gen > 0) {
        const double used = t.tps.mean * static_cast<double>(fp.bytes_per_token);
        j["weight_read_bytes_per_second"] = used;
        j["fraction_of_read_bandwidth"] =
            tr.bandwidth.bytes_per_second > 0 ? used / tr.bandwidth.bytes_per_second : 0.0;
        const double median = quantile(t.token_seconds, 0.5);
        j["token_ns_median"] = median * 1e9;
        j["token_ns_p90"] = quantile(t.token_seconds, 0.9) * 1e9;
        j["token_ns_p99"] = quantile(t.token_seconds, 0.99) * 1e9;
        j["token_ns_max"] = quantile(t.token_seconds, 1.0) * 1e9;
        j["fraction_of_read_bandwidth_at_median_token"] =
            median > 0 && tr.bandwidth.bytes_per_second > 0
                ? static_cast<double>(fp.bytes_per_token) / median / tr.bandwidth.bytes_per_second
                : 0.0;
        const std::vector<bench::RepetitionShare> shares = bench::repetition_shares(t, fp.bytes_per_token);
        if (!shares.empty()) {
          json reps = json::array();
          for (const bench::RepetitionShare& s : shares) {
            reps.push_back({{"weight_read_bytes_per_second", s.weight_bytes_per_second},
                            {"read_bytes_per_second_before", s.read_before},
                            {"read_bytes_per_second_after", s.read_after},
                            {"fraction_of_read_beside", s.fraction},
                            {"steady", s.steady}});
          }
          j["repetitions_against_reads_beside"] = std::move(reps);
          const std::vector<double> steady = steady_fractions(shares);
          if (!steady.empty()) j["fraction_of_read_beside_steady_median"] = quantile(steady, 0.5);
        }
      }
      for (const ThreadResults::TracePair& pair : tr.trace_pairs) {
        if (pair.traced != ti) continue;
        const TraceCost c = trace_cost(tr.tests[pair.plain], t);
        j["trace_top_k"] = a.trace_top_k;
        j["trace_cost_fraction"] = c.by_mean;
        j["trace_cost_fraction_at_median_token"] = c.by_median_token;
      }
      tests.push_back(std::move(j));
    }
  }
  out["read_bandwidth"] = std::move(bandwidth);
  out["tests"] = std::move(tests);
  std::printf("%s\n", out.dump(2).c_str());
}

void run_bench(const BenchArgs& a) {
  auto positive = [](const std::vector<int>& v, const char* what, int min) {
    for (int x : v) {
      if (x < min) throw Error(std::string("bench: ") + what + " must be >= " + std::to_string(min));
    }
  };
  positive(a.n_prompt, "-p", 0);
  positive(a.n_gen, "-n", 0);
  positive(a.threads, "-t", 0);
  positive(a.n_depth, "-d", 0);
  if (a.repetitions < 1) throw Error("bench: -r must be >= 1");
  if (a.bandwidth_mib < 1) throw Error("bench: --bandwidth-mib must be >= 1");
  if (a.trace_top_k < -1) throw Error("bench: --trace-top-k must be >= 0 (or -1: no trace)");
  if (a.trace_top_k >= 0 && std::any_of(a.n_gen.begin(), a.n_gen.end(), [](int n) { return n == 1; }))
    throw Error("bench: --trace-top-k needs tg tests of 2 tokens or more (the trace runs after every other token)");
  if (a.n_prompt.empty() || a.n_gen.empty() || a.n_depth.empty() || a.threads.empty())
    throw Error("bench: -p, -n, -d and -t each need at least one value");
  // Before the model loads: the loader packs the matrices in the form the
  // chosen instruction set's kernels read.
  if (!kernels::force_isa(a.isa))
    throw Error("bench: --isa " + a.isa +
                ": not an instruction set this CPU runs (auto, avx512vnni, avx512, avx2, scalar)");
  const int max_prompt = *std::max_element(a.n_prompt.begin(), a.n_prompt.end());
  const int max_gen = *std::max_element(a.n_gen.begin(), a.n_gen.end());
  const int64_t context_needed =
      int64_t{std::max({max_prompt, max_gen, 1})} + *std::max_element(a.n_depth.begin(), a.n_depth.end());
  if (context_needed > (int64_t{1} << 24))
    throw Error("bench: -d plus the longest test (" + std::to_string(context_needed) +
                " tokens) exceeds the 16M-token limit of a bench context");

  // On a busy machine every figure measures the CPU share this process gets
  // rather than the hardware: say so.
  double load_average[1] = {0};
  const unsigned hw_threads = std::max(1u, std::thread::hardware_concurrency());
  if (getloadavg(load_average, 1) == 1 && load_average[0] > hw_threads) {
    std::fprintf(stderr,
                 "warning: load average %.1f on %u hardware threads: other processes compete for the CPU, so "
                 "speeds and the bandwidth probe understate this machine\n",
                 load_average[0], hw_threads);
  }

  const std::unique_ptr<Model> model = load_model(a.model, /*load_tokenizer=*/false);
  const bench::WeightFootprint fp = bench::weight_footprint(*model);
  ProgressLine line;
  std::vector<ThreadResults> results;
  // One probe buffer for the whole run, freed only after the last test (see
  // bench::ReadProbe: freeing it before a test slowed that test down).
  std::optional<bench::ReadProbe> probe;
  for (int threads : a.threads) {
    ContextOptions co;
    co.n_ctx = static_cast<int>(context_needed);
    co.n_batch = std::max(max_prompt, 1);  // a pp test is one batch
    co.n_threads = threads;
    co.kv_cache = a.kv_cache;
    Context ctx(*model, co);
    ThreadResults tr;
    tr.threads = ctx.pool().size();
    tr.kv_cache = ctx.kv_cache_type();
    line.show("bench: measuring read bandwidth with " + std::to_string(tr.threads) + " threads");
    if (!probe) probe.emplace(ctx.pool(), uint64_t(a.bandwidth_mib) << 20);
    tr.bandwidth = probe->measure(ctx.pool(), a.bandwidth_runs);
    bench::SpeedOptions so;
    so.repetitions = a.repetitions;
    so.seed = a.seed;
    // One read of the probe beside each tg repetition (20-40 ms a read on
    // the development VM, against a second or more a repetition).
    so.read_beside = [&] { return probe->measure(ctx.pool(), 1).bytes_per_second; };
    so.progress = [&](std::string_view test, int rep, int reps) {
      line.show("bench: " + std::string(test) +
                (rep < 0    ? std::string()
                 : rep == 0 ? " warm-up done"
                            : " " + std::to_string(rep) + "/" + std::to_string(reps)));
    };
    // The trace as a session records it (ChatSession::generate): every
    // token's statistics kept, the alternatives' vectors allocated anew.
    std::vector<TokenStats> trace(static_cast<size_t>(std::max(max_gen, 1)));
    size_t traced = 0;
    const bench::TokenHook trace_hook = [&](const float* logits, int n_vocab, TokenId chosen) {
      trace[traced++ % trace.size()] = trace_token_stats(logits, n_vocab, chosen, a.trace_top_k);
    };
    for (int depth : a.n_depth) {
      so.depth = depth;
      for (int p : a.n_prompt) {
        if (p > 0) tr.tests.push_back(bench::bench_prompt(ctx, p, so));
      }
      for (int n : a.n_gen) {
        if (n == 0) continue;
        if (a.trace_top_k < 0) {
          tr.tests.push_back(bench::bench_generation(ctx, n, so));
          continue;
        }
        auto [plain, with_trace] =
            bench::bench_generation_paired(ctx, n, so, trace_hook, "+trace" + std::to_string(a.trace_top_k));
        tr.trace_pairs.push_back({tr.tests.size(), tr.tests.size() + 1});
        tr.tests.push_back(std::move(plain));
        tr.tests.push_back(std::move(with_trace));
      }
    }
    // Probe again after the tests and keep the better figure: on a shared
    // machine one probe can land in a busy moment.
    line.show("bench: measuring read bandwidth again");
    const bench::Bandwidth after = probe->measure(ctx.pool(), a.bandwidth_runs);
    tr.bandwidth.bytes_per_second = std::max(tr.bandwidth.bytes_per_second, after.bytes_per_second);
    tr.bandwidth.runs += after.runs;
    tr.bandwidth.run_bytes_per_second.insert(tr.bandwidth.run_bytes_per_second.end(),
                                             after.run_bytes_per_second.begin(), after.run_bytes_per_second.end());
    results.push_back(std::move(tr));
  }
  line.clear();
  if (a.json) {
    print_json(a, *model, fp, results, load_average[0]);
  } else {
    print_table(*model, fp, results);
  }
}

// ------------------------------------------------------------ quantize / synth-model

quantize::FileType file_type_arg(const std::string& name) {
  const auto t = quantize::parse_file_type(name);
  if (!t) throw Error("unknown type '" + name + "' (use F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K_M or Q6_K)");
  return *t;
}

void print_plan_summary(const std::string& path, const std::vector<quantize::TensorPlan>& plan) {
  std::map<std::string, int> counts;
  uint64_t bytes = 0, params = 0;
  for (const auto& p : plan) {
    counts[std::string(dtype_name(p.to))]++;
    bytes += p.bytes_to;
    uint64_t e = 1;
    for (int64_t d : p.ne) e *= static_cast<uint64_t>(d);
    params += e;
  }
  std::printf("wrote %s: %zu tensors, %s parameters, %s of tensor data; types:", path.c_str(), plan.size(),
              format_params(params).c_str(), format_size(bytes).c_str());
  for (const auto& [name, n] : counts) std::printf(" %s x%d", name.c_str(), n);
  std::printf("\n");
}

}  // namespace

void register_bench_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand(
        "bench", "Measure prompt-processing and generation speed (like llama-bench) and memory-bandwidth use");
    auto a = std::make_shared<BenchArgs>();
    cmd->add_option("-m,--model", a->model, "GGUF model file")->required();
    cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens per pp test, comma-separated (0: none)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-n,--n-gen", a->n_gen, "generated tokens per tg test, comma-separated (0: none)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-d,--n-depth", a->n_depth,
                    "tokens already in the context when each test starts, comma-separated (as llama-bench's -d)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-t,--threads", a->threads, "threads, comma-separated (0: all hardware threads)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-r,--repetitions", a->repetitions, "timed repetitions of each test (after a warm-up)")
        ->capture_default_str();
    cmd->add_flag("--json", a->json, "print the results as JSON");
    add_kv_cache_option(cmd, &a->kv_cache);
    cmd->add_option("--bandwidth-mib", a->bandwidth_mib, "buffer size of the read-bandwidth probe in MiB")
        ->capture_default_str();
    cmd->add_option("--bandwidth-runs", a->bandwidth_runs, "reads of the probe buffer (the best counts)")
        ->capture_default_str();
    cmd->add_option("--seed", a->seed, "seed of the random token ids")->capture_default_str();
    cmd->add_option("--isa", a->isa,
                    "the kernels' instruction set: auto (the best this CPU runs), avx512vnni, avx512, avx2 or scalar, "
                    "to compare them on one machine")
        ->capture_default_str();
    cmd->add_option("--trace-top-k", a->trace_top_k,
                    "run the per-token trace (log-probability, entropy and the top K alternatives, as a chat "
                    "session records it) after every other token of each tg test, and report the traced and the "
                    "plain tokens apart (-1: no trace)")
        ->capture_default_str();
    cmd->callback([a] { run_bench(*a); });
  }
  {
    auto* cmd = app.add_subcommand("quantize", "Convert a GGUF model to another type (llama-quantize's type mix)");
    struct Opts {
      std::string in, out, type;
      bool pure = false;
      int threads = 0;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-m,--model", o->in, "input GGUF model")->required();
    cmd->add_option("-o,--output", o->out, "output GGUF file")->required();
    cmd->add_option("--type", o->type, "F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K_M or Q6_K")->required();
    cmd->add_flag("--pure", o->pure, "every matrix in the default type (no Q6_K output / attn_v / ffn_down rules)");
    cmd->add_option("-t,--threads", o->threads, "threads (default: all hardware threads)");
    cmd->callback([o] {
      quantize::QuantizeOptions q;
      q.file_type = file_type_arg(o->type);
      q.pure = o->pure;
      q.n_threads = o->threads;
      ProgressLine line;
      q.progress = line.bytes("quantize: " + o->out);
      const auto plan = quantize::quantize_model_file(o->in, o->out, q);
      line.clear();
      print_plan_summary(o->out, plan);
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "synth-model", "Write a random-weight model with the exact shapes and metadata of a real one (benchmarks)");
    struct Opts {
      std::string preset, type, vocab, out;
      uint64_t seed = 1;
      int threads = 0;
    };
    auto o = std::make_shared<Opts>();
    std::string presets;
    for (const auto& p : quantize::synth_presets()) presets += (presets.empty() ? "" : ", ") + std::string(p.name);
    cmd->add_option("--preset", o->preset, "model to imitate: " + presets)->required();
    cmd->add_option("--type", o->type, "F16, BF16, Q8_0, Q4_0, Q4_K_M, Q6_K or F32")->required();
    cmd->add_option("--vocab", o->vocab, "GGUF whose tokenizer is copied (e.g. qwen3.vocab.gguf)")->required();
    cmd->add_option("-o,--output", o->out, "output GGUF file")->required();
    cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
    cmd->add_option("-t,--threads", o->threads, "threads (default: all hardware threads)");
    cmd->callback([o, presets] {
      quantize::SynthOptions s;
      s.preset = quantize::find_synth_preset(o->preset);
      if (!s.preset) throw Error("unknown preset '" + o->preset + "' (use " + presets + ")");
      s.file_type = file_type_arg(o->type);
      s.vocab_path = o->vocab;
      s.out_path = o->out;
      s.seed = o->seed;
      s.n_threads = o->threads;
      ProgressLine line;
      s.progress = line.bytes("synth-model: " + o->out);
      const auto plan = quantize::write_synth_model(s);
      line.clear();
      print_plan_summary(o->out, plan);
    });
  }
}

}  // namespace glassbox::cli
