// Packing: copy a block of A (or B) from whatever strided layout the caller has
// into the contiguous micro-panel order the microkernel streams through. This
// is where strides and transposes are absorbed: after packing, every layout
// looks the same, and the edge panels are zero-padded to full MR / NR width.
#include <algorithm>
#include <cstring>

#include "gemm/kernels/kernels.h"
#include "gemm/pack.h"

namespace pynn {
namespace gemm {

// One MR-row panel of A, k-major: dst[p * MR + r] = A(r, p), rows >= mr are 0.
static void pack_a_panel(int64_t mr, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a,
                         float* dst) {
  if (mr == MR && cs_a == 1) {
#ifdef PYNN_X86_64
    if (use_avx2()) {
      avx2::pack_a_panel6_rowmajor(kc, a, rs_a, dst);
      return;
    }
#endif
    // Row-major A (the common case): six row streams, one contiguous write stream.
    const float* rows[MR];
    for (int r = 0; r < MR; ++r) rows[r] = a + r * rs_a;
    for (int64_t p = 0; p < kc; ++p, dst += MR)
      for (int r = 0; r < MR; ++r) dst[r] = rows[r][p];  // MR is constant: fully unrolled
    return;
  }
  if (mr == MR && rs_a == 1) {
    // Column-major A (A = X^T of a row-major X): each k step is MR contiguous floats.
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = a + p * cs_a;
      for (int r = 0; r < MR; ++r) dst[r] = src[r];
      dst += MR;
    }
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    int64_t r = 0;
    for (; r < mr; ++r) dst[r] = a[r * rs_a + p * cs_a];
    for (; r < MR; ++r) dst[r] = 0.f;
    dst += MR;
  }
}

// One NR-column panel of B: dst[p * NR + j] = B(p, j), columns >= nr are 0.
static void pack_b_panel(int64_t nr, int64_t kc, const float* b, int64_t rs_b, int64_t cs_b,
                         float* dst) {
  if (nr == NR && cs_b == 1) {
    // Row-major B: each k step is NR contiguous floats.
    for (int64_t p = 0; p < kc; ++p) {
      std::memcpy(dst, b + p * rs_b, NR * sizeof(float));
      dst += NR;
    }
    return;
  }
#ifdef PYNN_X86_64
  if (nr == NR && rs_b == 1 && use_avx2()) {
    avx2::pack_b_panel16_colmajor(kc, b, cs_b, dst);
    return;
  }
#endif
  if (rs_b == 1) {
    // Column-major B (B = W^T of a row-major W, a Dense backward): read each
    // column contiguously, scatter with stride NR (stays in L1: 16 KiB panel).
    for (int64_t j = 0; j < nr; ++j) {
      const float* col = b + j * cs_b;
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = col[p];
    }
    for (int64_t j = nr; j < NR; ++j)
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = 0.f;
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    int64_t j = 0;
    for (; j < nr; ++j) dst[j] = b[p * rs_b + j * cs_b];
    for (; j < NR; ++j) dst[j] = 0.f;
    dst += NR;
  }
}

void pack_a_panels(int64_t mc, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a,
                   float* dst, int64_t p0, int64_t p1) {
  for (int64_t ip = p0; ip < p1; ++ip) {
    const int64_t i = ip * MR;
    pack_a_panel(std::min<int64_t>(MR, mc - i), kc, a + i * rs_a, rs_a, cs_a, dst + ip * kc * MR);
  }
}

void pack_b_panels(int64_t kc, int64_t nc, const float* b, int64_t rs_b, int64_t cs_b,
                   float* dst, int64_t p0, int64_t p1) {
#ifdef PYNN_X86_64
  if (cs_b == 1 && use_avx2()) {
    const int64_t pfull = std::min(p1, nc / NR);  // panels with all NR columns
    if (pfull > p0) {
      avx2::pack_b_rowmajor(kc, b, rs_b, dst, p0, pfull);
      p0 = pfull;
    }
  }
#endif
  for (int64_t jp = p0; jp < p1; ++jp) {
    const int64_t j = jp * NR;
    pack_b_panel(std::min<int64_t>(NR, nc - j), kc, b + j * cs_b, rs_b, cs_b, dst + jp * kc * NR);
  }
}

void pack_a(int64_t mc, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, float* dst) {
  pack_a_panels(mc, kc, a, rs_a, cs_a, dst, 0, (mc + MR - 1) / MR);
}

void pack_b(int64_t kc, int64_t nc, const float* b, int64_t rs_b, int64_t cs_b, float* dst) {
  pack_b_panels(kc, nc, b, rs_b, cs_b, dst, 0, (nc + NR - 1) / NR);
}

}  // namespace gemm
}  // namespace pynn
