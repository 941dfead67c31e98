// The forward kernel (kh, kw, C, OC), i.e. the (K, OC) matrix B of a conv, packed the way
// both AVX2 forward kernels read it (the small-channel direct tiles and the implicit GEMM):
// 16-column panels of K × 16 floats, zeros past OC, and the bias zero-padded to whole
// panels. Packed once per call; a chunked caller (conv2d_max_pool_forward) packs once and
// hands the same panels to every chunk.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/aligned_buffer.h"
#include "gemm/config.h"

namespace pynn {

struct ConvPanels {
  int64_t K, OC, np;
  AlignedBuf w, b;
  // b may be null (zero bias).
  ConvPanels(int64_t k, int64_t oc, const float* kernel, const float* bias)
      : K(k), OC(oc), np((oc + gemm::NR - 1) / gemm::NR), w(np * k * gemm::NR), b(np * gemm::NR) {
    constexpr int64_t NR = gemm::NR;
    for (int64_t jp = 0; jp < np; ++jp) {
      const int64_t j0 = jp * NR, nr = std::min<int64_t>(NR, OC - j0);
      float* dst = w.p + jp * K * NR;
      for (int64_t kk = 0; kk < K; ++kk, dst += NR) {
        for (int64_t q = 0; q < nr; ++q) dst[q] = kernel[kk * OC + j0 + q];
        for (int64_t q = nr; q < NR; ++q) dst[q] = 0.f;
      }
    }
    for (int64_t j = 0; j < np * NR; ++j) b.p[j] = bias && j < OC ? bias[j] : 0.f;
  }
};

}  // namespace pynn
