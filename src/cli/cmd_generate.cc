// glassbox generate: raw continuation of a prompt (no chat template).
#include <cstdio>
#include <memory>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "generate/sampler.h"

namespace glassbox::cli {

void add_sampling_options(CLI::App* cmd, SamplingParams& s) {
  cmd->add_option("--temp", s.temperature, "temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "top-k (<= 0: off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "top-p nucleus (1: off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "min-p relative to the best token (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalties look back over")->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "frequency penalty")->capture_default_str();
  cmd->add_option("--seed", s.seed, "random seed")->capture_default_str();
}

void register_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a raw prompt (no chat template)");
  struct Opts {
    std::string model, prompt;
    int n_predict = 128;
    int threads = 0;
    int ctx = 0;
    bool no_bos = false;
    KvCacheType kv_cache = KvCacheType::Auto;
    SamplingParams sampling;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", o->prompt, "prompt text")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens to generate")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  cmd->add_option("-c,--ctx-size", o->ctx, "context size (default: the model's, at most 4096)");
  add_kv_cache_option(cmd, &o->kv_cache);
  cmd->add_flag("--no-bos", o->no_bos, "do not prepend BOS even if the vocabulary asks for it");
  add_sampling_options(cmd, o->sampling);
  cmd->callback([o] {
    validate(o->sampling);
    if (o->n_predict < 0) throw Error("--n-predict must be >= 0");
    auto model = load_model(o->model);
    const Tokenizer& tok = model->tokenizer();
    std::vector<TokenId> ids = tok.encode(o->prompt, true, tok.add_bos_default() && !o->no_bos);
    if (ids.empty()) ids.push_back(tok.bos() >= 0 ? tok.bos() : 0);
    ContextOptions co;
    co.n_threads = o->threads;
    co.n_ctx = o->ctx;
    co.kv_cache = o->kv_cache;
    Context ctx(*model, co);
    if (static_cast<int>(ids.size()) >= ctx.n_ctx())
      throw Error("the prompt (" + std::to_string(ids.size()) + " tokens) does not fit the context of " +
                  std::to_string(ctx.n_ctx()));
    ctx.eval(ids);
    Sampler sampler(o->sampling, ctx.n_vocab());
    StreamDecoder decoder(tok, /*render_special=*/false);
    std::vector<TokenId> history = ids;
    for (int i = 0; i < o->n_predict && ctx.n_past() < ctx.n_ctx(); ++i) {
      const TokenId next = sampler.sample(ctx.logits(), ctx.n_vocab(), history);
      if (tok.is_end_of_generation(next)) break;
      history.push_back(next);
      const std::string piece = decoder.push(next);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      if (ctx.n_past() >= ctx.n_ctx()) break;
      ctx.eval(std::span<const TokenId>(&next, 1));
    }
    const std::string rest = decoder.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace glassbox::cli
