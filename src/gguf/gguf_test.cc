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

// ------------------------------------------------------------------ hand-built files
//
// RawGguf writes GGUF bytes field by field, straight from the spec, so that
// tests can make files the Writer refuses to make, and can check the Writer's
// output against an independent encoding. `mark()` records section
// boundaries for the truncation tests.

struct RawGguf {
  std::vector<uint8_t> bytes;
  std::vector<size_t> marks;

  void mark() { marks.push_back(bytes.size()); }
  template <class T>
  void put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes.insert(bytes.end(), b, b + sizeof(T));
  }
  void u32(uint32_t v) { put(v); }
  void u64(uint64_t v) { put(v); }
  void str(std::string_view s) {
    u64(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
    u32(version);
    u64(n_tensors);
    u64(n_kv);
    mark();
  }
  void kv_u32(std::string_view key, uint32_t v) {
    str(key);
    u32(4);
    u32(v);
    mark();
  }
  void kv_str(std::string_view key, std::string_view v) {
    str(key);
    u32(8);
    str(v);
    mark();
  }
  void tensor_info(std::string_view name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(ne.size()));
    for (int64_t n : ne) put<int64_t>(n);
    u32(type);
    u64(offset);
    mark();
  }
  void pad(size_t alignment = 32) {
    while (bytes.size() % alignment) bytes.push_back(0);
    mark();
  }
  void data(size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(seed + i * 7));
    mark();
  }
};

// A small valid file with every kind of section: string, u32, nested array
// metadata; an F32 and a Q8_0 tensor; padding between them.
RawGguf small_valid_file() {
  RawGguf f;
  f.header(/*n_tensors=*/2, /*n_kv=*/4);
  f.kv_str("general.architecture", "llama");
  f.kv_u32("llama.block_count", 1);
  // tokenizer.ggml.tokens: ["a", "bc"]
  f.str("tokenizer.ggml.tokens");
  f.u32(9);
  f.u32(8);
  f.u64(2);
  f.str("a");
  f.str("bc");
  f.mark();
  // nested: [[1, 2], []] as int32
  f.str("test.nested");
  f.u32(9);
  f.u32(9);
  f.u64(2);
  f.u32(5);
  f.u64(2);
  f.put<int32_t>(1);
  f.put<int32_t>(2);
  f.u32(5);
  f.u64(0);
  f.mark();
  f.tensor_info("weight.f32", {4, 2}, /*F32=*/0, /*offset=*/0);
  f.tensor_info("weight.q8", {32}, /*Q8_0=*/8, /*offset=*/32);
  f.pad();
  f.data(32, 1);  // 4*2 floats
  f.data(34, 2);  // one Q8_0 block
  return f;
}

std::string error_of(const std::vector<uint8_t>& bytes, size_t size) {
  try {
    File::from_memory(bytes.data(), size, "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
std::string error_of(const std::vector<uint8_t>& bytes) { return error_of(bytes, bytes.size()); }

#define EXPECT_ERROR_MENTIONS(bytes, ...)                                                         \
  do {                                                                                            \
    const std::string message = error_of(bytes);                                                  \
    EXPECT_EQ(message.rfind("bad.gguf: ", 0), 0u) << message;                                     \
    for (std::string_view part : {__VA_ARGS__}) {                                                 \
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message; \
    }                                                                                             \
  } while (0)

TEST(GgufBadFiles, SmallValidFileParses) {
  const RawGguf f = small_valid_file();
  const auto file = File::from_memory(f.bytes.data(), f.bytes.size());
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->metadata().size(), 4u);
  EXPECT_EQ(file->get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "bc"}));
  const Array* nested = file->find("test.nested")->as_array();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].as_array()->items[1].as_int(), 2);
  EXPECT_TRUE(nested->items[1].as_array()->items.empty());
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->tensors()[1].data, f.bytes.data() + file->data_offset() + 32);
  EXPECT_EQ(file->tensors()[1].nbytes, 34u);
}

TEST(GgufBadFiles, WrongMagicAndVersions) {
  RawGguf f = small_valid_file();
  f.bytes[3] = 'X';
  EXPECT_ERROR_MENTIONS(f.bytes, "magic", "GGUX");

  RawGguf v1;
  v1.header(0, 0, /*version=*/1);
  EXPECT_ERROR_MENTIONS(v1.bytes, "version 1");
  RawGguf v4;
  v4.header(0, 0, /*version=*/4);
  EXPECT_ERROR_MENTIONS(v4.bytes, "version 4");
  RawGguf big_endian;
  big_endian.header(0, 0, /*version=*/0x03000000);
  EXPECT_ERROR_MENTIONS(big_endian.bytes, "big-endian");

  RawGguf v2;  // version 2 has the same layout as 3
  v2.header(0, 1, /*version=*/2);
  v2.kv_str("general.architecture", "llama");
  EXPECT_EQ(File::from_memory(v2.bytes.data(), v2.bytes.size())->version(), 2u);
}

TEST(GgufBadFiles, TruncatedAtEverySectionBoundary) {
  const RawGguf f = small_valid_file();
  std::vector<size_t> cuts = f.marks;
  cuts.push_back(0);
  cuts.push_back(4);  // after the magic
  cuts.push_back(8);  // after the version
  int checked = 0;
  for (size_t cut : cuts) {
    if (cut >= f.bytes.size()) continue;
    SCOPED_TRACE(cut);
    const std::string message = error_of(f.bytes, cut);
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

TEST(GgufBadFiles, TruncatedAtEveryByteLength) {
  const RawGguf f = small_valid_file();
  for (size_t cut = 0; cut < f.bytes.size(); ++cut) {
    // Copy the prefix so AddressSanitizer sees any read past the cut.
    const std::vector<uint8_t> prefix(f.bytes.begin(), f.bytes.begin() + static_cast<long>(cut));
    const std::string message = error_of(prefix);
    EXPECT_NE(message.find("truncated"), std::string::npos) << cut << ": " << message;
  }
}

TEST(GgufBadFiles, RealFileTruncatedAtManyLengths) {
  std::ifstream in(kModels / "stories260K.gguf", std::ios::binary);
  const std::vector<uint8_t> whole((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(whole.size(), 100000u);
  const auto file = File::from_memory(whole.data(), whole.size());
  std::vector<size_t> cuts;
  // Every header byte, then a spread through metadata, infos and data.
  for (size_t cut = 0; cut < 64; ++cut) cuts.push_back(cut);
  for (size_t cut = 64; cut < file->data_offset(); cut = cut * 5 / 4 + 3) cuts.push_back(cut);
  for (size_t cut = file->data_offset() - 40; cut < file->data_offset() + 40; ++cut) {
    cuts.push_back(cut);
  }
  for (size_t cut = file->data_offset(); cut < whole.size(); cut += whole.size() / 37) {
    cuts.push_back(cut);
  }
  cuts.push_back(whole.size() - 1);
  for (size_t cut : cuts) {
    const std::vector<uint8_t> prefix(whole.begin(), whole.begin() + static_cast<long>(cut));
    const std::string message = error_of(prefix);
    EXPECT_NE(message.find("truncated"), std::string::npos) << cut << ": " << message;
  }
}

TEST(GgufBadFiles, TruncationMessageNamesTheTensor) {
  const RawGguf f = small_valid_file();
  // Cut inside the second tensor info, after its name.
  const size_t cut = f.marks[5] + 8 + 9 + 2;
  const std::string message = error_of(f.bytes, cut);
  EXPECT_NE(message.find("truncated: tensor info 1 ('weight.q8')"), std::string::npos) << message;
  EXPECT_NE(message.find("at offset"), std::string::npos) << message;
}

TEST(GgufBadFiles, AbsurdCountsDoNotAllocate) {
  RawGguf many_tensors;
  many_tensors.header(uint64_t{1} << 62, 0);
  EXPECT_ERROR_MENTIONS(many_tensors.bytes, "4611686018427387904 tensors");
  RawGguf many_kv;
  many_kv.header(0, uint64_t{1} << 62);
  EXPECT_ERROR_MENTIONS(many_kv.bytes, "4611686018427387904 metadata entries");

  RawGguf long_key;
  long_key.header(0, 1);
  long_key.u64(uint64_t{1} << 60);
  long_key.bytes.resize(long_key.bytes.size() + 64);
  EXPECT_ERROR_MENTIONS(long_key.bytes, "truncated", "metadata entry 0", "1152921504606846976 bytes");

  RawGguf long_value;
  long_value.header(0, 1);
  long_value.str("general.name");
  long_value.u32(8);
  long_value.u64(uint64_t{1} << 60);
  EXPECT_ERROR_MENTIONS(long_value.bytes, "truncated", "'general.name'", "1152921504606846976 bytes");

  RawGguf huge_array;
  huge_array.header(0, 1);
  huge_array.str("tokenizer.ggml.scores");
  huge_array.u32(9);
  huge_array.u32(6);
  huge_array.u64(uint64_t{1} << 61);
  huge_array.bytes.resize(huge_array.bytes.size() + 100);
  EXPECT_ERROR_MENTIONS(huge_array.bytes, "array of 2305843009213693952 FLOAT32 items");

  RawGguf huge_string_array;
  huge_string_array.header(0, 1);
  huge_string_array.str("tokenizer.ggml.tokens");
  huge_string_array.u32(9);
  huge_string_array.u32(8);
  huge_string_array.u64(~uint64_t{0});
  EXPECT_ERROR_MENTIONS(huge_string_array.bytes, "array of", "STRING items");

  RawGguf long_tensor_name;
  long_tensor_name.header(1, 0);
  long_tensor_name.u64(uint64_t{1} << 60);
  long_tensor_name.bytes.resize(long_tensor_name.bytes.size() + 64);
  EXPECT_ERROR_MENTIONS(long_tensor_name.bytes, "truncated", "tensor info 0");
}

TEST(GgufBadFiles, DeeplyNestedArrays) {
  RawGguf f;
  f.header(0, 1);
  f.str("deep");
  f.u32(9);
  for (int i = 0; i < 100; ++i) {
    f.u32(9);
    f.u64(1);
  }
  f.u32(0);
  f.u64(0);
  EXPECT_ERROR_MENTIONS(f.bytes, "nested deeper");
}

TEST(GgufBadFiles, UnknownValueTypes) {
  RawGguf f;
  f.header(0, 1);
  f.str("general.name");
  f.u32(13);
  f.u32(0);
  EXPECT_ERROR_MENTIONS(f.bytes, "'general.name'", "unknown value type 13");

  RawGguf a;
  a.header(0, 1);
  a.str("some.array");
  a.u32(9);
  a.u32(77);
  a.u64(0);
  EXPECT_ERROR_MENTIONS(a.bytes, "'some.array'", "unknown element value type 77");
}

TEST(GgufBadFiles, DuplicateKey) {
  RawGguf f;
  f.header(0, 2);
  f.kv_u32("llama.block_count", 1);
  f.kv_u32("llama.block_count", 2);
  EXPECT_ERROR_MENTIONS(f.bytes, "duplicate metadata key 'llama.block_count'");
}

// A file with one tensor whose info fields are given.
std::vector<uint8_t> one_tensor_file(std::vector<int64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes,
                                     std::optional<uint32_t> alignment = {}) {
  RawGguf f;
  f.header(1, alignment ? 1 : 0);
  if (alignment) f.kv_u32("general.alignment", *alignment);
  f.tensor_info("blk.0.attn_q.weight", ne, type, offset);
  f.pad(alignment && *alignment > 0 && (*alignment & (*alignment - 1)) == 0 ? *alignment : 32);
  f.data(data_bytes, 3);
  return f.bytes;
}

TEST(GgufBadFiles, TensorInfoProblems) {
  // The well-formed baseline parses.
  EXPECT_EQ(error_of(one_tensor_file({32, 2}, 8, 0, 68)), "(no error)");
  EXPECT_EQ(error_of(one_tensor_file({32, 2}, 8, 0, 68, 64)), "(no error)");

  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 2}, 8, 0, 67), "truncated", "'blk.0.attn_q.weight'", "past the end");
  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 2}, 8, 1 << 20, 68), "'blk.0.attn_q.weight'", "past the end");
  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 2}, 8, ~uint64_t{0} - 31, 68), "past the end");
  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 2}, 8, 4, 100), "'blk.0.attn_q.weight'", "offset 4 is not aligned to 32");
  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 2}, 8, 32, 200, 64), "not aligned to 64");
  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 2}, 99, 0, 68), "'blk.0.attn_q.weight'", "unknown tensor type id 99");
  EXPECT_ERROR_MENTIONS(one_tensor_file({33, 2}, 8, 0, 68), "ne[0] = 33", "not a multiple of the Q8_0 block size 32");
  EXPECT_ERROR_MENTIONS(one_tensor_file({100}, 12, 0, 144), "not a multiple of the Q4_K block size 256");
  EXPECT_ERROR_MENTIONS(one_tensor_file({}, 0, 0, 4), "n_dims 0");
  EXPECT_ERROR_MENTIONS(one_tensor_file({1, 1, 1, 1, 1}, 0, 0, 4), "n_dims 5");
  EXPECT_ERROR_MENTIONS(one_tensor_file({4, -2}, 0, 0, 32), "dimension 1 is negative");
  EXPECT_ERROR_MENTIONS(one_tensor_file({int64_t{1} << 32, int64_t{1} << 32, int64_t{1} << 32}, 0, 0, 4),
                        "element count overflows");
  EXPECT_ERROR_MENTIONS(one_tensor_file({int64_t{1} << 62}, 0, 0, 4), "byte size overflows");
  // An empty tensor's other dimensions still multiply (rows() = ne[1] * ne[2] * ne[3]):
  // found by libFuzzer as a signed overflow in TensorView::rows().
  EXPECT_ERROR_MENTIONS(one_tensor_file({0, int64_t{1} << 32, int64_t{1} << 32}, 0, 0, 0), "element count overflows");
  EXPECT_ERROR_MENTIONS(one_tensor_file({32, 0, int64_t{1} << 40, int64_t{1} << 40}, 0, 0, 0),
                        "element count overflows");
  // ... and so does an empty tensor's row size (ne[0] F32 values: 4 * ne[0] bytes).
  EXPECT_ERROR_MENTIONS(one_tensor_file({int64_t{1} << 62, 0}, 0, 0, 0), "byte size overflows");
  EXPECT_ERROR_MENTIONS(one_tensor_file({int64_t{1} << 61, 1}, 0, 0, 0), "byte size overflows");
  // Types glassbox cannot compute with still load: the model layer decides.
  EXPECT_EQ(error_of(one_tensor_file({256}, /*Q2_K=*/10, 0, 84)), "(no error)");
  // A zero-sized dimension is legal (an empty tensor).
  EXPECT_EQ(error_of(one_tensor_file({32, 0}, 0, 0, 0)), "(no error)");
}

TEST(GgufBadFiles, BadAlignment) {
  EXPECT_ERROR_MENTIONS(one_tensor_file({8}, 0, 0, 32, 0), "general.alignment 0", "power of two");
  EXPECT_ERROR_MENTIONS(one_tensor_file({8}, 0, 0, 32, 3), "general.alignment 3", "power of two");
  RawGguf f;
  f.header(0, 1);
  f.kv_str("general.alignment", "32");
  EXPECT_ERROR_MENTIONS(f.bytes, "general.alignment must be an integer");
}

TEST(GgufBadFiles, DuplicateTensorName) {
  RawGguf f;
  f.header(2, 0);
  f.tensor_info("output.weight", {8}, 0, 0);
  f.tensor_info("output.weight", {8}, 0, 32);
  f.pad();
  f.data(64, 0);
  EXPECT_ERROR_MENTIONS(f.bytes, "duplicate tensor name 'output.weight'");
}

TEST(GgufBadFiles, NotAFile) {
  EXPECT_THROW(File::open(kModels.string()), Error);  // a directory
  const fs::path empty = fs::temp_directory_path() / "glassbox_gguf_empty.gguf";
  { std::ofstream touch(empty); }
  try {
    File::open(empty.string());
    ADD_FAILURE() << "empty file accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  fs::remove(empty);
}

// ------------------------------------------------------------------ writer

Value val(auto x) { return Value{x}; }
Value arr(ValueType elem, std::vector<Value> items) { return Value{Array{elem, std::move(items)}}; }

TEST(GgufWriter, MatchesHandEncoding) {
  // The same content as small_valid_file(), through the Writer.
  Writer w;
  w.set("general.architecture", val(std::string("llama")));
  w.set("llama.block_count", val(uint32_t{1}));
  w.set("tokenizer.ggml.tokens", arr(ValueType::STRING, {val(std::string("a")), val(std::string("bc"))}));
  w.set("test.nested",
        arr(ValueType::ARRAY, {arr(ValueType::INT32, {val(int32_t{1}), val(int32_t{2})}), arr(ValueType::INT32, {})}));
  const RawGguf raw = small_valid_file();
  const size_t data_start = raw.marks[7];
  w.add_tensor("weight.f32", DType::F32, {4, 2},
               std::vector<uint8_t>(raw.bytes.begin() + static_cast<long>(data_start),
                                    raw.bytes.begin() + static_cast<long>(data_start) + 32));
  w.add_tensor("weight.q8", DType::Q8_0, {32},
               std::vector<uint8_t>(raw.bytes.begin() + static_cast<long>(data_start) + 32,
                                    raw.bytes.begin() + static_cast<long>(data_start) + 66));
  std::vector<uint8_t> expected = raw.bytes;
  while (expected.size() % 32) expected.push_back(0);  // the Writer pads the last tensor too
  EXPECT_EQ(w.to_bytes(), expected);
}

TEST(GgufWriter, RoundTripsEveryValueType) {
  Writer w;
  w.set("u8", val(uint8_t{255}));
  w.set("i8", val(int8_t{-128}));
  w.set("u16", val(uint16_t{65535}));
  w.set("i16", val(int16_t{-32768}));
  w.set("u32", val(uint32_t{4294967295u}));
  w.set("i32", val(int32_t{-2147483647 - 1}));
  w.set("f32", val(1.5f));
  w.set("bool_t", val(true));
  w.set("bool_f", val(false));
  w.set("str", val(std::string("h\xc3\xa9llo\0world", 12)));
  w.set("empty_str", val(std::string()));
  w.set("u64", val(~uint64_t{0}));
  w.set("i64", val(std::numeric_limits<int64_t>::min()));
  w.set("f64", val(-2.25e300));
  w.set("arr_f32", arr(ValueType::FLOAT32, {val(0.5f), val(-1.0f)}));
  w.set("arr_i64", arr(ValueType::INT64, {val(int64_t{-5}), val(int64_t{7})}));
  w.set("arr_u8", arr(ValueType::UINT8, {val(uint8_t{1})}));
  w.set("arr_bool", arr(ValueType::BOOL, {val(true), val(false)}));
  w.set("arr_empty", arr(ValueType::FLOAT64, {}));
  w.set("arr_nested",
        arr(ValueType::ARRAY,
            {arr(ValueType::ARRAY, {arr(ValueType::STRING, {val(std::string("deep"))})}), arr(ValueType::ARRAY, {})}));
  w.set("u8", val(uint8_t{254}));  // set() replaces an existing key
  const std::vector<uint8_t> bytes = w.to_bytes();
  const auto f = File::from_memory(bytes.data(), bytes.size());
  ASSERT_EQ(f->metadata().size(), 20u);
  EXPECT_EQ(f->metadata()[0].first, "u8");
  const auto expect_same = [&](const char* key, const Value& want) {
    const Value* got = f->find(key);
    ASSERT_NE(got, nullptr) << key;
    EXPECT_EQ(got->type(), want.type()) << key;
    EXPECT_EQ(got->to_string(100), want.to_string(100)) << key;
  };
  expect_same("u8", val(uint8_t{254}));
  expect_same("arr_nested",
              arr(ValueType::ARRAY, {arr(ValueType::ARRAY, {arr(ValueType::STRING, {val(std::string("deep"))})}),
                                     arr(ValueType::ARRAY, {})}));
  EXPECT_EQ(f->get_int("u8"), 254);
  EXPECT_EQ(f->get_int("i8"), -128);
  EXPECT_EQ(f->get_int("u16"), 65535);
  EXPECT_EQ(f->get_int("i16"), -32768);
  EXPECT_EQ(f->get_int("u32"), 4294967295LL);
  EXPECT_EQ(f->get_int("i32"), -2147483648LL);
  EXPECT_EQ(f->get_float("f32"), 1.5);
  EXPECT_EQ(f->get_bool("bool_t"), true);
  EXPECT_EQ(f->get_bool("bool_f"), false);
  EXPECT_EQ(f->get_string("str"), std::string("h\xc3\xa9llo\0world", 12));
  EXPECT_EQ(f->get_string("empty_str"), "");
  EXPECT_EQ(std::get<uint64_t>(f->find("u64")->v), ~uint64_t{0});
  EXPECT_FALSE(f->find("u64")->as_int().has_value());  // does not fit int64
  EXPECT_THROW(f->get_int("u64"), Error);
  EXPECT_EQ(f->get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->get_float("f64"), -2.25e300);
  EXPECT_EQ(f->get_float_array("arr_f32"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(f->get_int_array("arr_i64"), (std::vector<int64_t>{-5, 7}));
  EXPECT_EQ(f->get_int_array("arr_u8"), (std::vector<int64_t>{1}));
  EXPECT_EQ(f->get_float_array("arr_empty"), std::vector<float>{});
  EXPECT_THROW(f->get_int_array("arr_f32"), Error);
  EXPECT_THROW(f->get_string_array("arr_nested"), Error);
  EXPECT_EQ(f->find("arr_bool")->to_string(), "[true, false]");
  EXPECT_EQ(f->find("str")->to_string(), "\"h\xc3\xa9llo\\x00world\"");
  const Array* nested = f->find("arr_nested")->as_array();
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->elem_type, ValueType::ARRAY);
  EXPECT_EQ(*nested->items[0].as_array()->items[0].as_array()->items[0].as_string(), "deep");
}

TEST(GgufWriter, RoundTripsTensorsThroughAFile) {
  Writer w;
  w.set("general.alignment", val(uint32_t{64}));
  std::vector<uint8_t> q4k(144 * 2 * 3);
  for (size_t i = 0; i < q4k.size(); ++i) q4k[i] = static_cast<uint8_t>(i * 31);
  std::vector<uint8_t> f16(2 * 5 * 3 * 2 * 2, 0x3c);
  std::vector<uint8_t> f32(4 * 3, 0x41);
  w.add_tensor("k", DType::Q4_K, {512, 3}, q4k);
  w.add_tensor("h", DType::F16, {5, 3, 2, 2}, f16);
  w.add_tensor("s", DType::F32, {3}, f32);
  const fs::path path = fs::temp_directory_path() / "glassbox_gguf_writer_test.gguf";
  w.write(path.string());
  const auto f = File::open(path.string());
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  ASSERT_EQ(f->tensors().size(), 3u);
  const std::vector<std::vector<uint8_t>*> data = {&q4k, &f16, &f32};
  for (size_t i = 0; i < 3; ++i) {
    const TensorInfo& t = f->tensors()[i];
    EXPECT_EQ(t.offset % 64, 0u);
    ASSERT_EQ(t.nbytes, data[i]->size());
    EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + t.nbytes), *data[i]);
  }
  EXPECT_EQ(f->tensors()[1].n_dims, 4);
  EXPECT_EQ(f->tensors()[1].elements(), 60);
  EXPECT_EQ(f->tensors()[0].view().rows(), 3);
  EXPECT_EQ(f->tensors()[0].view().row_stride, 288);
  const std::vector<uint8_t> bytes = w.to_bytes();
  EXPECT_EQ(bytes.size(), fs::file_size(path));
  fs::remove(path);
}

TEST(GgufWriter, RejectsInconsistentTensors) {
  Writer w;
  EXPECT_THROW(w.add_tensor("a", DType::F32, {4}, std::vector<uint8_t>(15)), Error);
  EXPECT_THROW(w.add_tensor("a", DType::Q8_0, {33}, std::vector<uint8_t>(34)), Error);
  EXPECT_THROW(w.add_tensor("a", DType::F32, {}, {}), Error);
  EXPECT_THROW(w.add_tensor("a", DType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)), Error);
  w.add_tensor("a", DType::F32, {4}, std::vector<uint8_t>(16));
  EXPECT_THROW(w.add_tensor("a", DType::F32, {4}, std::vector<uint8_t>(16)), Error);
  EXPECT_THROW(w.write("/nonexistent/dir/x.gguf"), Error);
  Writer bad_alignment;
  bad_alignment.set("general.alignment", val(uint32_t{48}));
  EXPECT_THROW(bad_alignment.to_bytes(), Error);
}

TEST(GgufValue, Conversions) {
  EXPECT_EQ(val(true).as_int(), 1);
  EXPECT_EQ(val(int16_t{-3}).as_float(), -3.0);
  EXPECT_FALSE(val(std::string("x")).as_int().has_value());
  EXPECT_FALSE(val(1.0f).as_int().has_value());
  EXPECT_FALSE(val(uint32_t{1}).as_bool().has_value());
  EXPECT_EQ(val(uint8_t{7}).to_string(), "7");
  Array many{ValueType::UINT32, {}};
  for (uint32_t i = 0; i < 20; ++i) many.items.push_back(val(i));
  EXPECT_EQ(Value{many}.to_string(3), "[0, 1, 2, ... (20 UINT32 items)]");
  EXPECT_EQ(value_type_name(ValueType::FLOAT64), "FLOAT64");
}

}  // namespace
}  // namespace glassbox::gguf
