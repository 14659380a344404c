#include "cli/common.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace glassbox::cli {

namespace {
bool g_repack = true;
}  // namespace

void set_repack(bool on) { g_repack = on; }

std::unique_ptr<Model> load_model(const std::string& path, bool load_tokenizer, bool pack_for_generation) {
  LoadOptions o;
  o.load_tokenizer = load_tokenizer;
  o.pack_for_generation = pack_for_generation && g_repack;
  const bool tty = isatty(STDERR_FILENO) != 0;
  int last_percent = -1;
  if (tty) {
    o.progress = [&](uint64_t done, uint64_t total) {
      const int pct = total ? static_cast<int>(done * 100 / total) : 100;
      if (pct == last_percent) return;
      last_percent = pct;
      const int width = 30, fill = pct * width / 100;
      std::fprintf(stderr, "\rloading %s [%.*s%*s] %3d%%", path.c_str(), fill, "##############################",
                   width - fill, "", pct);
      std::fflush(stderr);
    };
  }
  auto m = Model::load(path, o);
  if (tty && last_percent >= 0) std::fprintf(stderr, "\r\033[K");
  return m;
}

VocabFile load_vocab(const std::string& path) {
  VocabFile v;
  v.file = gguf::File::open(path);
  v.tokenizer = Tokenizer::from_gguf(*v.file);
  return v;
}

std::vector<TokenId> parse_id_list(const std::string& text) {
  std::vector<TokenId> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) {
      if (comma == text.size() && ids.empty() && text.find_first_not_of(' ') == std::string::npos) break;
      throw Error("empty token id in list '" + text + "'");
    }
    TokenId v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || end != item.data() + item.size()) throw Error("'" + item + "' is not a valid token id");
    ids.push_back(v);
    pos = comma + 1;
  }
  return ids;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string format_float(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) != 0; }

CLI::Option* add_kv_cache_option(CLI::App* cmd, KvCacheType* type) {
  return cmd->add_option_function<std::string>(
      "--kv-cache-type",
      [type](const std::string& name) {
        const auto parsed = parse_kv_cache_type(name);
        if (!parsed) throw Error("--kv-cache-type: '" + name + "' is not one of f32, f16, q8_0");
        *type = *parsed;
      },
      "KV cache element type: f16 (default), f32, or q8_0 (8-bit, about half the memory of f16; faster at long "
      "contexts; head sizes multiples of 32)");
}

}  // namespace glassbox::cli
