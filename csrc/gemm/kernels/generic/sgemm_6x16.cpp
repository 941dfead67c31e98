// Portable 6x16 microkernel: plain loops over a local accumulator tile that the
// compiler vectorises with whatever the baseline ISA offers (SSE2 on x86-64).
// Always built; it is the fallback on CPUs without AVX2 and the oracle the AVX2
// kernel is tested against (PYNN_ISA=generic / _C.set_isa("generic")).
#define PYNN_ISA generic
#include "gemm/kernels/act_tile_impl.h"

namespace pynn::gemm::generic {

void sgemm_6x16(int64_t k, float alpha, const float* a, const float* b, float beta, float* c, int64_t rs_c,
                const float* bias) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * NR;
    const float* ap = a + p * MR;
    for (int r = 0; r < MR; ++r) {
      const float ar = ap[r];
      for (int j = 0; j < NR; ++j) acc[r][j] += ar * bp[j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * rs_c;
    for (int j = 0; j < NR; ++j) {
      float v = alpha * acc[r][j];
      if (beta != 0.f) v += beta * cr[j];
      if (bias) v += bias[j];
      cr[j] = v;
    }
  }
}

}  // namespace pynn::gemm::generic
