// The peak probe's loop, compiled once per ISA (common/dispatch.h): fma_peak.cpp (generic:
// SSE2 on x86-64, no FMA, so each multiply-add is a multiply and an add) and
// fma_peak_avx2.cpp (-mavx2 -mfma: one vfmadd231ps per chain step).
//
// 12 chains of 8 lanes: the FMA latency (4 cycles on Zen 3, Haswell..) times the 2 FMA
// pipes needs >= 8 independent chains to keep both busy; 12 is the GEMM microkernel's
// accumulator count, so the probe measures what a 6x16 tile can issue. Written with GCC's
// vector extension (one source for both ISAs; GNU mode contracts a * m + c into an FMA
// where the ISA has one). Each step maps a into a * m + c with m < 1, which converges to
// c / (1 - m): no overflow, no subnormals, and a result the compiler cannot fold.
#ifndef PYNN_ISA
#error "define PYNN_ISA (generic or avx2) before including this file"
#endif
#include <cstdint>

#include "common/fma_peak.h"

namespace pynn::PYNN_ISA {

float fma_chains(int64_t iterations) {
  typedef float v8 __attribute__((vector_size(32)));
  static_assert(sizeof(v8) / sizeof(float) == kFmaPeakLanes, "lanes");
  const v8 m = {0.999999f, 0.999999f, 0.999999f, 0.999999f, 0.999999f, 0.999999f, 0.999999f, 0.999999f};
  const v8 c = {1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f};
  v8 a0 = c * 0.f, a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
  v8 a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
  for (int64_t i = 0; i < iterations; ++i) {
    // 12 named accumulators, not an array: they must live in registers.
    a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
    a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
    a8 = a8 * m + c; a9 = a9 * m + c; a10 = a10 * m + c; a11 = a11 * m + c;
  }
  const v8 s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
  float total = 0.f;
  for (int l = 0; l < kFmaPeakLanes; ++l) total += s[l];
  return total;
}

}  // namespace pynn::PYNN_ISA
