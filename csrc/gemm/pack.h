// Packing (pack.cpp; the AVX2 fast cases are gemm/kernels/avx2/pack_avx2.cpp).
// Both zero-pad the edge panels to full MR / NR width so the microkernel only
// ever sees full tiles.
#pragma once
#include <cstdint>

namespace pynn::gemm {

// A block rows [0, mc) x cols [0, kc) of the strided A -> ceil(mc/MR) panels of kc*MR.
void pack_a(int64_t mc, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, float* dst);
// B block rows [0, kc) x cols [0, nc) of the strided B -> ceil(nc/NR) panels of kc*NR.
void pack_b(int64_t kc, int64_t nc, const float* b, int64_t rs_b, int64_t cs_b, float* dst);
// Only NR panels [p0, p1) of the block (for cooperative packing by several threads).
void pack_b_panels(int64_t kc, int64_t nc, const float* b, int64_t rs_b, int64_t cs_b, float* dst, int64_t p0,
                   int64_t p1);
void pack_a_panels(int64_t mc, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, float* dst, int64_t p0,
                   int64_t p1);

}  // namespace pynn::gemm
