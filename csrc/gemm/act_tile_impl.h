// The fused activation on an mr x nr tile of C (unit column stride) after the
// kernel has stored it, still in L1. Included by gemm.cpp (portable flags) and
// kernel_avx2.cpp (-mavx2 -mfma): the same source compiled per ISA, each copy
// in its translation unit's anonymous namespace. Full rows of NR have a
// constant trip count, so in the AVX2 unit g++ turns act_forward into two
// 8-wide vectors per row (relu cost 3.5% of a 128x784x256 product on the
// SSE2/runtime-trip-count path; here it is noise). The switch is hoisted out
// of the loops.
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "gemm/config.h"

namespace pynn::gemm {
namespace {

template <Act A>
void act_tile_t(float* c, int64_t rs, int64_t mr, int64_t nr, float alpha) {
  for (int64_t r = 0; r < mr; ++r) {
    float* cr = c + r * rs;
    if (nr == NR) {
      for (int j = 0; j < NR; ++j) cr[j] = act_forward(A, cr[j], alpha);
    } else {
      for (int64_t j = 0; j < nr; ++j) cr[j] = act_forward(A, cr[j], alpha);
    }
  }
}

void act_tile_switch(Act act, float* c, int64_t rs, int64_t mr, int64_t nr, float alpha) {
  switch (act) {
    case Act::Linear: return;
    case Act::Relu: return act_tile_t<Act::Relu>(c, rs, mr, nr, alpha);
    case Act::LeakyRelu: return act_tile_t<Act::LeakyRelu>(c, rs, mr, nr, alpha);
    case Act::Sigmoid: return act_tile_t<Act::Sigmoid>(c, rs, mr, nr, alpha);
    case Act::Tanh: return act_tile_t<Act::Tanh>(c, rs, mr, nr, alpha);
    case Act::Gelu: return act_tile_t<Act::Gelu>(c, rs, mr, nr, alpha);
    case Act::Elu: return act_tile_t<Act::Elu>(c, rs, mr, nr, alpha);
  }
}

}  // namespace
}  // namespace pynn::gemm
