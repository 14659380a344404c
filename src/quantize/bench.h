// Measurements behind `glassbox bench`: prompt-processing and generation
// speed (llama-bench's pp and tg tests), the weight bytes a generated token
// reads, and the machine's read bandwidth, measured rather than assumed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/large_buffer.h"
#include "model/model.h"

namespace glassbox {
class ThreadPool;
}

namespace glassbox::bench {

struct MeanSd {
  double mean = 0;
  double sd = 0;  // sample standard deviation (n - 1); 0 for one sample
};
MeanSd mean_sd(const std::vector<double>& values);

// Sizes of a model's weights.
struct WeightFootprint {
  uint64_t file_tensor_bytes = 0;  // every tensor in the file
  uint64_t n_params = 0;           // elements of every tensor
  // Weight bytes one generated token reads: every layer matrix, the output
  // matrix and one row of the token embedding (norms and biases, a few KiB,
  // are left out). With tied embeddings the output matrix is token_embd.
  uint64_t bytes_per_token = 0;
};
WeightFootprint weight_footprint(const Model& model);

struct TestResult {
  std::string name;  // "pp512", "tg128", "tg128 @ d4096"
  int n_prompt = 0;
  int n_gen = 0;
  int n_depth = 0;                     // tokens in the context before the test's own
  std::vector<double> seconds;         // one per repetition
  std::vector<double> tokens_per_sec;  // one per repetition
  MeanSd tps;
  // tg only: the time of every timed token, repetitions one after another
  // (vLLM's "time per output token"). Its median is the speed of an
  // undisturbed step; the mean above also carries the moments another
  // process or the hypervisor took a core away.
  std::vector<double> token_seconds;
  // tg with SpeedOptions::read_beside: the probe's read (bytes per second)
  // just before each repetition and after the last, repetitions + 1.
  std::vector<double> reads_beside;
};

// (test name, repetition done, repetitions); repetition 0 is the warm-up,
// -1 the start of filling the context to its depth.
using BenchProgressFn = std::function<void(std::string_view test, int rep, int reps)>;

struct SpeedOptions {
  int repetitions = 3;
  uint64_t seed = 42;  // random token ids
  // Random tokens evaluated (untimed, once per test) before each repetition,
  // as llama-bench's -d: the test then runs at that depth of context.
  int depth = 0;
  BenchProgressFn progress;
  // tg: when set, called just before each timed repetition and after the
  // last (TestResult::reads_beside): one read of the bandwidth probe, so
  // that each repetition can be set against the memory's speed at its own
  // time. On a virtual machine whose read bandwidth changes by half from
  // one minute to the next, a probe before and after all tests cannot say
  // which speed the tests met.
  std::function<double()> read_beside;
};

// pp: `n_prompt` random tokens evaluated as one batch in an empty context
// (after options.depth tokens), timed per repetition after one untimed
// warm-up run. The context must hold depth + n_prompt positions and its
// n_batch must be >= n_prompt for one batch.
TestResult bench_prompt(Context& ctx, int n_prompt, const SpeedOptions& options);
// tg: `n_gen` random tokens evaluated one at a time from an empty context
// (after options.depth tokens; as llama-bench's tg test), after a short
// untimed warm-up. The context must hold depth + n_gen positions.
TestResult bench_generation(Context& ctx, int n_gen, const SpeedOptions& options);

// Work done after each generated token within its timed span, as a session
// does it (e.g. the per-token trace statistics): the logits the token
// produced, and a token id standing for the one sampled from them.
using TokenHook = std::function<void(const float* logits, int n_vocab, TokenId chosen)>;
// tg with and without `hook` in one sequence: the hook runs after every
// other token (the odd ones), so that both kinds of token meet the same
// moments of a shared machine, whose memory speed can change by half from
// one minute to the next. {plain, hooked}: each has its own tokens' times
// (n_gen / 2 per repetition, the plain one more when n_gen is odd), its
// speed from those; the hooked result is named as the plain one + `suffix`.
std::pair<TestResult, TestResult> bench_generation_paired(Context& ctx, int n_gen, const SpeedOptions& options,
                                                          const TokenHook& hook, const std::string& suffix);

// A tg repetition set against the probe reads beside it: its weight bytes
// per second over the faster of the read just before and the one just
// after. `steady`: the two reads within steady_ratio of each other, so the
// memory kept one speed through the repetition (or changed and changed
// back). Empty without reads_beside.
struct RepetitionShare {
  double weight_bytes_per_second = 0;
  double read_before = 0, read_after = 0;
  double fraction = 0;
  bool steady = false;
};
constexpr double kSteadyReadRatio = 0.9;
std::vector<RepetitionShare> repetition_shares(const TestResult& t, uint64_t bytes_per_token,
                                               double steady_ratio = kSteadyReadRatio);

struct Bandwidth {
  double bytes_per_second = 0;               // best run
  std::vector<double> run_bytes_per_second;  // every run, in order
  uint64_t buffer_bytes = 0;
  int runs = 0;
  int threads = 0;
};
// The read-bandwidth probe: a buffer in huge pages, first touched by the
// pool's threads (so its pages sit near them), read with every thread.
//
// Keep one for as long as anything is being timed. Freeing a gigabyte just
// before the speed tests made them slower: virtual machines hand freed
// memory back to the host (virtio-balloon free page reporting, in 2 MiB
// blocks, about two seconds after the free), and the host's work on it
// stalls the guest's CPUs. Measured on the development VM, Qwen3-0.6B shape
// at Q4_K_M, tg128 x 3, 2 threads: with a 1 GiB buffer allocated and freed
// just before, tokens of 40-57 ms appeared from ~1 s on (median 14 ms) and
// the mean token took 14.9-15.1 ms; with the buffer kept alive, 14.1-14.3 ms
// and no token over 24 ms.
class ReadProbe {
 public:
  // Throws Error when the buffer cannot be allocated.
  ReadProbe(ThreadPool& pool, uint64_t bytes);

  // Reads the whole buffer `runs` times (at least once) with every thread
  // of `pool` and reports the best rate and every run's.
  Bandwidth measure(ThreadPool& pool, int runs);
  uint64_t buffer_bytes() const { return words_.size() * sizeof(uint64_t); }

 private:
  LargeArray<uint64_t> words_;
};

}  // namespace glassbox::bench
