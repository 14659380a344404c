// Tests of the GGUF reader and writer against the reference files (written
// by gguf-py / llama-quantize, described in tests/data/reference) and against
// deliberately broken files.
#include "gguf/gguf.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace glassbox::gguf {
namespace {

namespace fs = std::filesystem;
const fs::path kReference = fs::path(GLASSBOX_TEST_DATA) / "reference";
const fs::path kModels = kReference / "models";
const fs::path kTokenizers = kReference / "tokenizers";

std::string sha256_prefix16(const uint8_t* data, size_t n) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(data, n, digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::vector<fs::path> gguf_files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".gguf") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// True when the header region holds a U+FFFD replacement character inside a
// binary field: the signature of a file that was decoded as text.
bool looks_utf8_mangled(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find("\xef\xbf\xbd") != std::string::npos;
}

// ------------------------------------------------------------------ reference files

TEST(GgufReference, EveryReferenceFileOpens) {
  std::vector<fs::path> files = gguf_files_under(kModels);
  const std::vector<fs::path> vocab = gguf_files_under(kTokenizers);
  files.insert(files.end(), vocab.begin(), vocab.end());
  ASSERT_GE(files.size(), 35u);
  int opened = 0;
  for (const fs::path& path : files) {
    if (path.filename() == "stories260K.v1-legacy.gguf") continue;
    SCOPED_TRACE(path.string());
    if (path.parent_path().filename() == "llama.cpp-vocab" && looks_utf8_mangled(path)) {
      // These copies went through a UTF-8 decode that replaced invalid bytes
      // with U+FFFD (EF BF BD), e.g. llama.rope.freq_base 00 50 C3 47 became
      // 00 50 EF BF BD 47, shifting every later field: they are corrupt and
      // must be rejected cleanly.
      EXPECT_THROW(File::open(path.string()), Error);
      continue;
    }
    int progress_calls = 0;
    uint64_t last_done = 0;
    std::unique_ptr<File> file;
    ASSERT_NO_THROW(file = File::open(path.string(), [&](uint64_t done, uint64_t total) {
                      EXPECT_EQ(total, fs::file_size(path));
                      EXPECT_GE(done, last_done);
                      last_done = done;
                      ++progress_calls;
                    }));
    EXPECT_GE(progress_calls, 2);
    EXPECT_EQ(last_done, fs::file_size(path));
    EXPECT_TRUE(file->version() == 2 || file->version() == 3);
    EXPECT_EQ(file->file_size(), fs::file_size(path));
    EXPECT_TRUE(file->get_string("general.architecture").has_value());
    EXPECT_EQ(file->data_offset() % file->alignment(), 0u);
    ++opened;
  }
  EXPECT_GE(opened, 34);
}

TEST(GgufReference, TensorsMatchTensorTypesJson) {
  std::ifstream in(kModels / "tensor_types.json");
  ASSERT_TRUE(in) << "missing tensor_types.json";
  const nlohmann::json expected_all = nlohmann::json::parse(in);
  ASSERT_GE(expected_all.size(), 30u);
  for (const auto& [filename, expected] : expected_all.items()) {
    SCOPED_TRACE(filename);
    const auto file = File::open((kModels / filename).string());
    EXPECT_EQ(file->file_size(), expected["bytes"].get<uint64_t>());
    EXPECT_EQ(file->get_int("general.file_type"), expected["file_type"].get<int64_t>());
    const auto& tensors = expected["tensors"];
    ASSERT_EQ(file->tensors().size(), tensors.size());
    std::map<std::string, int> type_counts;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const TensorInfo& t = file->tensors()[i];
      const auto& want = tensors[i];
      SCOPED_TRACE(want["name"].get<std::string>());
      EXPECT_EQ(t.name, want["name"].get<std::string>());
      EXPECT_EQ(dtype_name(t.type), want["type"].get<std::string>());
      const auto ne = want["ne"].get<std::vector<int64_t>>();
      ASSERT_EQ(t.n_dims, static_cast<int>(ne.size()));
      for (size_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], d < ne.size() ? ne[d] : 1);
      EXPECT_EQ(file->find_tensor(t.name), &t);
      // The data hash proves offsets and sizes point at the right bytes.
      EXPECT_EQ(sha256_prefix16(t.data, t.nbytes), want["sha256_16"].get<std::string>());
      const TensorView view = t.view();
      EXPECT_EQ(view.data, t.data);
      EXPECT_EQ(view.rows() * view.row_stride, static_cast<int64_t>(t.nbytes));
      ++type_counts[want["type"].get<std::string>()];
    }
    for (const auto& [type, count] : expected["type_counts"].items()) {
      EXPECT_EQ(type_counts[type], count.get<int>()) << type;
    }
  }
}

TEST(GgufReference, MetadataSpotChecks) {
  // Values from MODELS.md's model table and models.spec.json.
  const auto qwen3 = File::open((kModels / "rand-qwen3.f32.gguf").string());
  EXPECT_EQ(qwen3->get_string("general.architecture"), "qwen3");
  EXPECT_EQ(qwen3->get_int("qwen3.attention.key_length"), 32);
  EXPECT_EQ(qwen3->get_int("qwen3.attention.head_count"), 4);
  EXPECT_EQ(qwen3->get_int("qwen3.attention.head_count_kv"), 2);
  EXPECT_EQ(qwen3->get_int("qwen3.block_count"), 4);
  EXPECT_EQ(qwen3->get_int("qwen3.context_length"), 4096);
  EXPECT_EQ(qwen3->get_int("qwen3.embedding_length"), 128);
  EXPECT_EQ(qwen3->get_int("qwen3.feed_forward_length"), 352);
  EXPECT_DOUBLE_EQ(*qwen3->get_float("qwen3.rope.freq_base"), 1e6);
  EXPECT_NEAR(*qwen3->get_float("qwen3.attention.layer_norm_rms_epsilon"), 1e-6, 1e-12);
  EXPECT_EQ(qwen3->find_tensor("output.weight"), nullptr);  // tied embeddings
  ASSERT_NE(qwen3->find_tensor("blk.0.attn_q_norm.weight"), nullptr);
  EXPECT_EQ(qwen3->find_tensor("blk.0.attn_q_norm.weight")->ne[0], 32);
  const auto tokens = qwen3->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  EXPECT_EQ(tokens->size(), 512u);
  // Asking for the wrong type is an error, not a silent default.
  EXPECT_THROW(qwen3->get_int("general.architecture"), Error);
  EXPECT_THROW(qwen3->get_string_array("qwen3.block_count"), Error);
  EXPECT_FALSE(qwen3->get_int("no.such.key").has_value());

  const auto qwen3kq = File::open((kModels / "rand-qwen3-kq.f32.gguf").string());
  EXPECT_EQ(qwen3kq->get_int("qwen3.attention.key_length"), 64);
  EXPECT_EQ(qwen3kq->get_int("qwen3.embedding_length"), 256);

  const auto llama = File::open((kModels / "rand-llama.q8_0.gguf").string());
  EXPECT_EQ(llama->get_string("general.architecture"), "llama");
  EXPECT_EQ(llama->get_int("llama.context_length"), 2048);
  EXPECT_EQ(llama->get_int("llama.rope.dimension_count"), 16);
  EXPECT_DOUBLE_EQ(*llama->get_float("llama.rope.freq_base"), 1e4);

  const auto qwen2 = File::open((kModels / "rand-qwen2.q4_0.gguf").string());
  EXPECT_EQ(qwen2->get_string("general.architecture"), "qwen2");
  EXPECT_NE(qwen2->find_tensor("blk.0.attn_q.bias"), nullptr);

  const auto stories = File::open((kModels / "stories260K.gguf").string());
  EXPECT_EQ(stories->get_string("general.architecture"), "llama");
  const auto stories_tokens = stories->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(stories_tokens.has_value());
  EXPECT_EQ(stories_tokens->size(), 512u);
  const auto scores = stories->get_float_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.has_value());
  EXPECT_EQ(scores->size(), 512u);

  const auto tiny = File::open((kModels / "llama-2-tiny-random.gguf").string());
  EXPECT_EQ(tiny->get_int("llama.embedding_length"), 8);
  EXPECT_EQ(tiny->get_string_array("tokenizer.ggml.tokens")->size(), 32000u);
}

TEST(GgufReference, VocabOnlyFiles) {
  // Counts from tokenizers/README.md and MODELS.md section 4.
  const auto qwen3 = File::open((kTokenizers / "qwen3.vocab.gguf").string());
  EXPECT_TRUE(qwen3->tensors().empty());
  EXPECT_EQ(qwen3->get_string_array("tokenizer.ggml.tokens")->size(), 151936u);
  EXPECT_EQ(qwen3->get_string_array("tokenizer.ggml.merges")->size(), 151387u);
  EXPECT_EQ(qwen3->get_int_array("tokenizer.ggml.token_type")->size(), 151936u);
  EXPECT_EQ(qwen3->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(qwen3->get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(qwen3->get_int("tokenizer.ggml.eos_token_id"), 151645);
  EXPECT_EQ(qwen3->get_int("tokenizer.ggml.bos_token_id"), 151643);
  EXPECT_EQ(qwen3->get_bool("tokenizer.ggml.add_bos_token"), false);
  EXPECT_TRUE(qwen3->get_string("tokenizer.chat_template").has_value());

  const auto llama3 = File::open((kTokenizers / "llama3.vocab.gguf").string());
  EXPECT_EQ(llama3->get_string_array("tokenizer.ggml.tokens")->size(), 128256u);
  EXPECT_EQ(llama3->get_string_array("tokenizer.ggml.merges")->size(), 280147u);

  const auto deepseek = File::open((kTokenizers / "deepseek-v3.vocab.gguf").string());
  EXPECT_EQ(deepseek->get_string_array("tokenizer.ggml.tokens")->size(), 129280u);
}

TEST(GgufReference, Version1IsRejected) {
  const std::string path = (kModels / "stories260K.v1-legacy.gguf").string();
  try {
    File::open(path);
    FAIL() << "version 1 file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(GgufReference, MissingFileNamesPath) {
  try {
    File::open("/nonexistent/dir/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace glassbox::gguf
