// How close can generation come to the machine's read bandwidth with this
// engine's structure? For a model file, in turn (so that all three meet the
// same moments of a shared machine, whose memory speed changes by half from
// one minute to the next):
//   1. the read probe of `glassbox bench` (1 GiB, every thread: the limit);
//   2. a token's weight bytes read with the forward pass's sections and
//      joins and no arithmetic: per layer the Q/K/V matrices, attention (a
//      join without weights), the output projection, gate and up, down,
//      then the output matrix, each section
//      split into one contiguous run per thread of the pool, the packed
//      copies where the engine reads those (the stream ceiling);
//   3. real tokens generated with the same pool size.
// The gap between 1 and 2 is what the sections and joins cost; the gap
// between 2 and 3 is the kernels' arithmetic and the steps between the
// products. Run by hand (bench/README.md, "How far generation is from the
// probe"):
//   build/bench/stream_ceiling_probe MODEL.gguf [rounds]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/large_buffer.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "quantize/bench.h"

namespace {

using glassbox::TensorView;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The bytes a one-token product reads of W: its packed copy when it has one.
struct Span {
  const uint8_t* data;
  int64_t bytes;
};
Span span_of(const TensorView& W) {
  if (W.rows16 != nullptr) return {W.rows16, glassbox::kernels::rows16_bytes(W)};
  return {static_cast<const uint8_t*>(W.data), W.rows() * W.row_stride};
}

// Sums bytes [begin, end) of a section's spans in 32-byte loads (AVX2 where
// the CPU has it; the sum only keeps the reads from being optimised away).
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, int64_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) total += p[i];
  return total;
}

uint64_t sum_plain(const uint8_t* p, int64_t n) {
  uint64_t acc[8] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 8; ++k) {
      uint64_t w;
      __builtin_memcpy(&w, p + i + 8 * k, 8);
      acc[k] += w;
    }
  uint64_t total = 0;
  for (uint64_t a : acc) total += a;
  for (; i < n; ++i) total += p[i];
  return total;
}

using Section = std::vector<Span>;

uint64_t read_section(const Section& s, int64_t begin, int64_t end, bool avx2) {
  uint64_t total = 0;
  int64_t at = 0;
  for (const Span& span : s) {
    const int64_t lo = std::max(begin, at), hi = std::min(end, at + span.bytes);
    if (lo < hi) total += avx2 ? sum_avx2(span.data + (lo - at), hi - lo) : sum_plain(span.data + (lo - at), hi - lo);
    at += span.bytes;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: stream_ceiling_probe MODEL.gguf [rounds]\n");
    return 2;
  }
  const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 6;
  try {
    glassbox::LoadOptions lo;
    lo.load_tokenizer = false;
    const auto model = glassbox::Model::load(argv[1], lo);
    const glassbox::Weights& w = model->weights();
    std::vector<Section> sections;
    for (const glassbox::LayerWeights& l : w.layers) {
      sections.push_back({span_of(l.wq), span_of(l.wk), span_of(l.wv)});
      sections.push_back({});  // attention: a join, no weights
      sections.push_back({span_of(l.wo)});
      sections.push_back({span_of(l.w_gate), span_of(l.w_up)});
      sections.push_back({span_of(l.w_down)});
    }
    sections.push_back({span_of(w.output)});
    int64_t token_bytes = 0;
    std::vector<int64_t> section_bytes;
    for (const Section& s : sections) {
      int64_t b = 0;
      for (const Span& span : s) b += span.bytes;
      section_bytes.push_back(b);
      token_bytes += b;
    }

    glassbox::ContextOptions co;
    co.n_ctx = 256;
    co.n_threads = 2;
    glassbox::Context ctx(*model, co);
    glassbox::ThreadPool& pool = ctx.pool();
    glassbox::bench::ReadProbe probe(pool, uint64_t{1} << 30);
    const bool avx2 = __builtin_cpu_supports("avx2");
    std::vector<uint64_t> sink(static_cast<size_t>(pool.size()));
    std::mt19937 rng(1);
    std::printf("%s: %.1f MB read per token (packed copies where the engine reads them), %d threads\n", argv[1],
                static_cast<double>(token_bytes) / 1e6, pool.size());
    std::printf("%6s %12s %26s %26s\n", "round", "probe GB/s", "stream ceiling ms (GB/s)", "generation ms (GB/s)");
    for (int round = 0; round < rounds; ++round) {
      const double probe_bps = probe.measure(pool, 2).bytes_per_second;
      // 16 tokens of each, alternating; their medians.
      std::vector<double> stream_s, token_s;
      ctx.truncate(0);
      for (int i = 0; i < 16; ++i) {
        auto t = Clock::now();
        for (size_t s = 0; s < sections.size(); ++s) {
          const Section* sec = &sections[s];
          const int64_t n = section_bytes[s];
          pool.ParallelFor(pool.size(), [&, sec, n](int64_t, int64_t, int thread) {
            const int64_t per = (n + pool.size() - 1) / pool.size();
            sink[static_cast<size_t>(thread)] +=
                read_section(*sec, std::min(n, per * thread), std::min(n, per * (thread + 1)), avx2);
          });
        }
        stream_s.push_back(seconds_since(t));
        const glassbox::TokenId token = static_cast<glassbox::TokenId>(rng() % model->config().n_vocab);
        t = Clock::now();
        ctx.eval(std::span(&token, 1));
        token_s.push_back(seconds_since(t));
      }
      std::sort(stream_s.begin(), stream_s.end());
      std::sort(token_s.begin(), token_s.end());
      const double stream = stream_s[stream_s.size() / 2], token = token_s[token_s.size() / 2];
      const auto gbps = [&](double s) { return static_cast<double>(token_bytes) / s / 1e9; };
      std::printf("%6d %12.1f %12.2f (%4.1f, %3.0f%%) %12.2f (%4.1f, %3.0f%%)\n", round + 1, probe_bps / 1e9,
                  stream * 1e3, gbps(stream), 100 * gbps(stream) * 1e9 / probe_bps, token * 1e3, gbps(token),
                  100 * gbps(token) * 1e9 / probe_bps);
    }
    volatile uint64_t keep = 0;
    for (uint64_t s : sink) keep = keep + s;
  } catch (const glassbox::Error& e) {
    std::fprintf(stderr, "stream_ceiling_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
