// What the kernel tests share: the instruction sets and weight types they
// run over, and a guard that restores automatic ISA selection when a test
// that forces one ends.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace glassbox::kernels::test_support {

inline constexpr const char* kAllIsas[] = {"scalar", "avx2", "avx512", "avx512vnni"};
inline constexpr DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                      DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q6_K};

class IsaGuard {
 public:
  IsaGuard() = default;
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
  ~IsaGuard() { force_isa("auto"); }
};

// The ISAs of kAllIsas this CPU runs (forcing each in turn).
inline std::vector<std::string> available_isas() {
  IsaGuard guard;
  std::vector<std::string> out;
  for (const char* isa : kAllIsas)
    if (force_isa(isa)) out.push_back(isa);
  return out;
}

}  // namespace glassbox::kernels::test_support
