// inspect, logits, tokenize, detokenize.
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace glassbox::cli {
namespace {

void print_inspect(const Model& m) {
  const ModelConfig& c = m.config();
  const gguf::File& f = m.file();
  std::printf("file:            %s (%llu bytes, GGUF v%u)\n", f.path().c_str(),
              static_cast<unsigned long long>(f.file_size()), f.version());
  std::printf("architecture:    %s\n", c.arch.c_str());
  std::printf("name:            %s\n", c.name.c_str());
  std::printf("layers:          %d\n", c.n_layer);
  std::printf("embedding:       %d\n", c.n_embd);
  std::printf("heads:           %d (kv %d, GQA group %d)\n", c.n_head, c.n_head_kv, c.n_head / c.n_head_kv);
  std::printf("head dim:        k %d, v %d\n", c.head_dim_k, c.head_dim_v);
  std::printf("feed-forward:    %d\n", c.n_ff);
  std::printf("context (train): %d\n", c.n_ctx_train);
  std::printf("rope:            %s, dims %d, base %g",
              c.rope_mode == RopeMode::Norm ? "norm (adjacent pairs)" : "neox (half split)", c.rope_dims,
              static_cast<double>(c.rope_base));
  if (c.rope_scaling != RopeScaling::None)
    std::printf(", %s scaling x%g", c.rope_scaling == RopeScaling::Linear ? "linear" : "yarn",
                1.0 / static_cast<double>(c.rope_freq_scale));
  if (c.rope_freq_factors) std::printf(", frequency factors");
  std::printf("\n");
  std::printf("norm epsilon:    %g\n", static_cast<double>(c.norm_eps));
  std::printf("qkv bias:        %s\n", c.qkv_bias ? "yes" : "no");
  std::printf("q/k norm:        %s\n", c.qk_norm ? "yes" : "no");
  std::printf("output matrix:   %s\n", c.tied_output ? "tied to token embedding" : "separate");
  std::map<std::string, int> types;
  uint64_t params = 0, bytes = 0;
  for (const auto& t : f.tensors()) {
    types[std::string(dtype_name(t.type))]++;
    params += static_cast<uint64_t>(t.elements());
    bytes += t.nbytes;
  }
  std::printf("tensors:         %zu, %llu parameters, %.2f MiB\n", f.tensors().size(),
              static_cast<unsigned long long>(params), static_cast<double>(bytes) / (1 << 20));
  for (const auto& [name, count] : types) std::printf("  %-6s %d\n", name.c_str(), count);
  if (m.has_tokenizer()) {
    const Tokenizer& tok = m.tokenizer();
    std::printf("vocabulary:      %s (pre-tokenizer %s), %d tokens, bos %d, eos %d\n", tok.model_name().c_str(),
                tok.pre_name().empty() ? "default" : tok.pre_name().c_str(), tok.vocab_size(), tok.bos(), tok.eos());
  }
  const bool has_template = f.find("tokenizer.chat_template") != nullptr;
  std::printf("chat template:   %s\n", has_template ? "present" : "absent");
}

}  // namespace

void register_model_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("inspect", "Print a model's architecture, hyper-parameters and tensors");
    auto path = std::make_shared<std::string>();
    cmd->add_option("-m,--model", *path, "GGUF model file")->required();
    cmd->callback([path] { print_inspect(*load_model(*path, true, /*pack_for_generation=*/false)); });
  }
  {
    auto* cmd = app.add_subcommand("logits", "Print the logits of a token sequence as JSON");
    struct Opts {
      std::string model, tokens;
      bool sequential = false;
      bool fast = false;
      int threads = 0;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
    cmd->add_option("--tokens", o->tokens, "comma-separated token ids")->required();
    cmd->add_flag("--sequential", o->sequential, "evaluate token by token instead of one batch");
    cmd->add_flag("--fast", o->fast,
                  "use the fast path (8-bit activations, F16 KV cache) instead of exact F32 arithmetic");
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
    cmd->callback([o] {
      auto model = load_model(o->model, false, /*pack_for_generation=*/o->fast);
      const std::vector<TokenId> ids = parse_id_list(o->tokens);
      if (ids.empty()) throw Error("--tokens is empty");
      ContextOptions co;
      co.n_ctx = static_cast<int>(ids.size());
      co.n_threads = o->threads;
      // Exact F32 arithmetic by default: this command is how logits are
      // compared with other engines.
      co.precision = o->fast ? Precision::Fast : Precision::Exact;
      Context ctx(*model, co);
      const int n_vocab = ctx.n_vocab();
      std::string out = "{\"n_vocab\": " + std::to_string(n_vocab) + ", \"logits\": [";
      auto append_row = [&](const float* row, bool first) {
        out += first ? "[" : ", [";
        for (int i = 0; i < n_vocab; ++i) {
          if (i) out += ", ";
          out += format_float(row[i]);
        }
        out += "]";
      };
      if (o->sequential) {
        for (size_t p = 0; p < ids.size(); ++p) {
          ctx.eval(std::span<const TokenId>(&ids[p], 1));
          append_row(ctx.logits(), p == 0);
        }
      } else {
        ctx.eval(ids, true);
        for (size_t p = 0; p < ids.size(); ++p) append_row(ctx.logits(static_cast<int>(p)), p == 0);
      }
      out += "]}\n";
      std::fwrite(out.data(), 1, out.size(), stdout);
    });
  }
  {
    auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as JSON");
    struct Opts {
      std::string model, text, file;
      bool no_parse_special = false, add_bos = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-m,--model", o->model, "GGUF model (or vocab-only) file")->required();
    auto* text = cmd->add_option("--text", o->text, "text to tokenize");
    auto* file = cmd->add_option("--file", o->file, "file whose bytes to tokenize");
    text->excludes(file);
    cmd->add_flag("--no-parse-special", o->no_parse_special, "treat special-token text as plain text");
    cmd->add_flag("--add-bos", o->add_bos, "prepend the BOS token");
    cmd->callback([o, text, file] {
      if (text->count() == 0 && file->count() == 0) throw Error("tokenize needs --text or --file");
      const std::string input = file->count() ? read_file(o->file) : o->text;
      const VocabFile vocab = load_vocab(o->model);
      const auto ids = vocab.tokenizer->encode(input, !o->no_parse_special, o->add_bos);
      nlohmann::json j;
      j["ids"] = ids;
      std::printf("%s\n", j.dump().c_str());
    });
  }
  {
    auto* cmd = app.add_subcommand("detokenize", "Print the text of token ids");
    struct Opts {
      std::string model, ids;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-m,--model", o->model, "GGUF model (or vocab-only) file")->required();
    cmd->add_option("--ids", o->ids, "comma-separated token ids")->required();
    cmd->callback([o] {
      const VocabFile vocab = load_vocab(o->model);
      const auto ids = parse_id_list(o->ids);
      for (TokenId id : ids)
        if (id < 0 || id >= vocab.tokenizer->vocab_size())
          throw Error("token id " + std::to_string(id) + " is out of range for a vocabulary of " +
                      std::to_string(vocab.tokenizer->vocab_size()));
      const std::string text = vocab.tokenizer->decode(ids);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fputc('\n', stdout);
    });
  }
}

}  // namespace glassbox::cli
