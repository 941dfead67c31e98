// The fused activation on an mr x nr tile of C (unit column stride) after the
// kernel has stored it, still in L1. Compiled per ISA (common/dispatch.h) by
// kernels/generic/sgemm_6x16.cpp and kernels/avx2/sgemm_6x16_avx2.cpp. Full rows
// of NR have a constant trip count, so in the AVX2 unit g++ turns act_forward
// into two 8-wide vectors per row (relu cost 3.5% of a 128x784x256 product on
// the SSE2/runtime-trip-count path; here it is noise). No #pragma once.
#include "gemm/kernels/kernels.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (common/dispatch.h) before including this file"
#endif

namespace pynn::gemm::PYNN_ISA {

void act_tile(Act act, float* c, int64_t rs, int64_t mr, int64_t nr, float alpha) {
  if (act == Act::Linear) return;
  with_act(act, [=](auto A) {
    for (int64_t r = 0; r < mr; ++r) {
      float* cr = c + r * rs;
      if (nr == NR) {
        for (int j = 0; j < NR; ++j) cr[j] = act_forward(A.value, cr[j], alpha);
      } else {
        for (int64_t j = 0; j < nr; ++j) cr[j] = act_forward(A.value, cr[j], alpha);
      }
    }
  });
}

}  // namespace pynn::gemm::PYNN_ISA
