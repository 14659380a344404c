// libFuzzer target for the GGUF reader: any input must either parse or raise
// glassbox::Error; crashes, sanitizer reports, leaks and other exception types
// are findings. Built only with -DGLASSBOX_FUZZ=ON (clang); see run_fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "gguf/gguf.h"

// Keeps the reads below from being optimised away.
volatile size_t gguf_fuzz_sink = 0;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = glassbox::gguf::File::from_memory(data, size, "fuzz.gguf");
    // Touch what consumers touch: metadata rendering and every tensor's bytes
    // (first and last), which must lie inside the input.
    size_t sink = 0;
    for (const auto& [key, value] : file->metadata()) sink += key.size() + value.to_string().size();
    for (const auto& t : file->tensors()) {
      if (t.nbytes > 0) sink += t.data[0] + t.data[t.nbytes - 1];
      const auto view = t.view();
      sink += static_cast<size_t>(view.rows() + view.elements() + view.row_stride);
    }
    (void)file->get_string("general.architecture");
    gguf_fuzz_sink = sink;
  } catch (const glassbox::Error&) {
    // Expected for malformed input.
  }
  return 0;
}
