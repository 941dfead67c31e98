// AVX2+FMA tiles of the direct convolution kernels (conv/direct.h; the drivers are
// in conv/direct.cpp). Register plan of the 6x16 GEMM kernel: 12 ymm accumulators
// (6 rows × 2×8 lanes), 2 for the 16-wide B row, one broadcast.
#include <immintrin.h>

#include "common/simd_avx2.h"

#include <algorithm>

#include "conv/direct.h"
#include "gemm/kernels/kernels.h"

namespace pynn::conv::avx2 {

namespace {
inline __m256i lane_mask(int n) { return simd::tail_mask(n); }
}  // namespace

#define PYNN_FMA6(A0, A1, A2, A3, A4, A5)                                 \
  do {                                                                    \
    __m256 av = _mm256_broadcast_ss(A0);                                  \
    c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01); \
    av = _mm256_broadcast_ss(A1);                                         \
    c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11); \
    av = _mm256_broadcast_ss(A2);                                         \
    c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21); \
    av = _mm256_broadcast_ss(A3);                                         \
    c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31); \
    av = _mm256_broadcast_ss(A4);                                         \
    c40 = _mm256_fmadd_ps(av, b0, c40), c41 = _mm256_fmadd_ps(av, b1, c41); \
    av = _mm256_broadcast_ss(A5);                                         \
    c50 = _mm256_fmadd_ps(av, b0, c50), c51 = _mm256_fmadd_ps(av, b1, c51); \
  } while (0)

void small_c_6x16(int64_t nk, const int64_t* off, const int64_t* brow, const float* const* a, const float* b,
                  float* c, int64_t rs_c, int mr, int nr, const float* bias, Act act, float act_alpha) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  const __m256 bi0 = _mm256_loadu_ps(bias), bi1 = _mm256_loadu_ps(bias + 8);
  __m256 c00 = bi0, c01 = bi1, c10 = bi0, c11 = bi1, c20 = bi0, c21 = bi1;
  __m256 c30 = bi0, c31 = bi1, c40 = bi0, c41 = bi1, c50 = bi0, c51 = bi1;
  for (int64_t t = 0; t < nk; ++t) {
    const int64_t o = off[t];
    const float* bp = b + brow[t] * gemm::NR;
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
    PYNN_FMA6(a0 + o, a1 + o, a2 + o, a3 + o, a4 + o, a5 + o);
  }
  __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  // ReLU in registers (max(0, v): NaN and -0 pass as relu_f32 passes them); other
  // activations run over the stored tile below.
  const bool relu_here = act == Act::Relu;
  if (relu_here)
    for (auto& row : acc) row[0] = _mm256_max_ps(_mm256_setzero_ps(), row[0]), row[1] = _mm256_max_ps(_mm256_setzero_ps(), row[1]);
  if (nr == gemm::NR) {
    for (int r = 0; r < mr; ++r) {
      _mm256_storeu_ps(c + r * rs_c, acc[r][0]);
      _mm256_storeu_ps(c + r * rs_c + 8, acc[r][1]);
    }
  } else {
    const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
    for (int r = 0; r < mr; ++r) {
      _mm256_maskstore_ps(c + r * rs_c, m0, acc[r][0]);
      _mm256_maskstore_ps(c + r * rs_c + 8, m1, acc[r][1]);
    }
  }
  if (!relu_here) gemm::avx2::act_tile(act, c, rs_c, mr, nr, act_alpha);
}

// Full 6-pixel tiles over every whole 16-channel panel in one call (the small-channel
// forward's common case): tile t's six window origins are a[6t..6t+5], tap k of pixel r reads
// a[6t+r][off[k]] and packed row k of the panel (identity rows, no index load). With K = 9 (a
// 1-channel 3x3 conv) a tile is only 108 FMAs, so small_c_6x16's per-call cost (the tile
// spilled to the stack for its row-by-row masked store, the call, the row-index load per tap)
// was ~40% of the time: here the accumulators go straight from registers to y.
void small_c_tiles_6x16(int64_t ntiles, const float* const* a, int64_t nk, const int64_t* off, const float* packed,
                        int64_t npanels, const float* bias, float* y, int64_t rs_y, Act act, float act_alpha) {
  const bool relu = act == Act::Relu;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t t = 0; t < ntiles; ++t, a += 6, y += 6 * rs_y) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t jp = 0; jp < npanels; ++jp) {
      const float* bp = packed + jp * nk * gemm::NR;
      const __m256 bi0 = _mm256_loadu_ps(bias + jp * gemm::NR), bi1 = _mm256_loadu_ps(bias + jp * gemm::NR + 8);
      __m256 c00 = bi0, c01 = bi1, c10 = bi0, c11 = bi1, c20 = bi0, c21 = bi1;
      __m256 c30 = bi0, c31 = bi1, c40 = bi0, c41 = bi1, c50 = bi0, c51 = bi1;
      for (int64_t k = 0; k < nk; ++k, bp += gemm::NR) {
        const int64_t o = off[k];
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        PYNN_FMA6(a0 + o, a1 + o, a2 + o, a3 + o, a4 + o, a5 + o);
      }
      if (relu) {  // max(0, v) as small_c_6x16 (and relu_f32) computes it
        c00 = _mm256_max_ps(zero, c00), c01 = _mm256_max_ps(zero, c01), c10 = _mm256_max_ps(zero, c10);
        c11 = _mm256_max_ps(zero, c11), c20 = _mm256_max_ps(zero, c20), c21 = _mm256_max_ps(zero, c21);
        c30 = _mm256_max_ps(zero, c30), c31 = _mm256_max_ps(zero, c31), c40 = _mm256_max_ps(zero, c40);
        c41 = _mm256_max_ps(zero, c41), c50 = _mm256_max_ps(zero, c50), c51 = _mm256_max_ps(zero, c51);
      }
      float* c = y + jp * gemm::NR;
      _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
      _mm256_storeu_ps(c + rs_y, c10), _mm256_storeu_ps(c + rs_y + 8, c11);
      _mm256_storeu_ps(c + 2 * rs_y, c20), _mm256_storeu_ps(c + 2 * rs_y + 8, c21);
      _mm256_storeu_ps(c + 3 * rs_y, c30), _mm256_storeu_ps(c + 3 * rs_y + 8, c31);
      _mm256_storeu_ps(c + 4 * rs_y, c40), _mm256_storeu_ps(c + 4 * rs_y + 8, c41);
      _mm256_storeu_ps(c + 5 * rs_y, c50), _mm256_storeu_ps(c + 5 * rs_y + 8, c51);
      if (!relu && act != Act::Linear) gemm::avx2::act_tile(act, c, rs_y, 6, gemm::NR, act_alpha);
    }
  }
}

// The max-pool forward's fold (simd::nan_max, shared with pool/pool_avx2.cpp), so the fused
// pooling below is bitwise the pooling of the stored conv output.
using simd::nan_max;

void small_c_pool2_row(int64_t npw, const float* a, int64_t dcol, int64_t drow, int64_t nk, const int64_t* off,
                       const float* packed, int64_t npanels, const float* bias, float* y, bool relu) {
  const __m256 zero = _mm256_setzero_ps();
  const int64_t oc = npanels * gemm::NR;
  for (int64_t pw = 0; pw < npw; ++pw, y += oc) {
    const float* p00 = a + 2 * pw * dcol;
    const float *p01 = p00 + dcol, *p10 = p00 + drow, *p11 = p00 + drow + dcol;
    for (int64_t jp = 0; jp < npanels; ++jp) {
      const float* bp = packed + jp * nk * gemm::NR;
      const __m256 bi0 = _mm256_loadu_ps(bias + jp * gemm::NR), bi1 = _mm256_loadu_ps(bias + jp * gemm::NR + 8);
      __m256 c00 = bi0, c01 = bi1, c10 = bi0, c11 = bi1, c20 = bi0, c21 = bi1, c30 = bi0, c31 = bi1;
      for (int64_t k = 0; k < nk; ++k, bp += gemm::NR) {
        const int64_t o = off[k];
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        __m256 av = _mm256_broadcast_ss(p00 + o);
        c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(p01 + o);
        c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(p10 + o);
        c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(p11 + o);
        c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);
      }
      if (relu) {  // per conv pixel, before the pooling, exactly as the unfused calls
        c00 = _mm256_max_ps(zero, c00), c01 = _mm256_max_ps(zero, c01), c10 = _mm256_max_ps(zero, c10);
        c11 = _mm256_max_ps(zero, c11), c20 = _mm256_max_ps(zero, c20), c21 = _mm256_max_ps(zero, c21);
        c30 = _mm256_max_ps(zero, c30), c31 = _mm256_max_ps(zero, c31);
      }
      // The pool's 2x2 order: (0,0) starts (max(v, -inf) is v, NaN included), then (0,1), (1,0), (1,1).
      __m256 m0 = nan_max(c10, c00), m1 = nan_max(c11, c01);
      m0 = nan_max(c20, m0), m1 = nan_max(c21, m1);
      m0 = nan_max(c30, m0), m1 = nan_max(c31, m1);
      _mm256_storeu_ps(y + jp * gemm::NR, m0), _mm256_storeu_ps(y + jp * gemm::NR + 8, m1);
    }
  }
}

void dw_6x16(int64_t rows, int64_t cols, const float* const* a, const int64_t* a_row, int64_t a_col,
             const float* b, int64_t b_row, int64_t b_col, float* acc, int64_t rs_acc, int mr, int nr) {
  const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
  const bool full = nr == gemm::NR;
  __m256 t[6][2];
  for (int r = 0; r < 6; ++r) {
    if (r < mr) {
      t[r][0] = _mm256_maskload_ps(acc + r * rs_acc, m0);
      t[r][1] = _mm256_maskload_ps(acc + r * rs_acc + 8, m1);
    } else {
      t[r][0] = t[r][1] = _mm256_setzero_ps();
    }
  }
  __m256 c00 = t[0][0], c01 = t[0][1], c10 = t[1][0], c11 = t[1][1], c20 = t[2][0], c21 = t[2][1];
  __m256 c30 = t[3][0], c31 = t[3][1], c40 = t[4][0], c41 = t[4][1], c50 = t[5][0], c51 = t[5][1];
  const int last = mr - 1;
  for (int64_t i = 0; i < rows; ++i) {
    const float* p0 = a[0] + i * a_row[0];
    const float* p1 = a[std::min(1, last)] + i * a_row[std::min(1, last)];
    const float* p2 = a[std::min(2, last)] + i * a_row[std::min(2, last)];
    const float* p3 = a[std::min(3, last)] + i * a_row[std::min(3, last)];
    const float* p4 = a[std::min(4, last)] + i * a_row[std::min(4, last)];
    const float* p5 = a[std::min(5, last)] + i * a_row[std::min(5, last)];
    const float* bi = b + i * b_row;
    if (full) {
      for (int64_t j = 0; j < cols; ++j, bi += b_col) {
        const __m256 b0 = _mm256_loadu_ps(bi), b1 = _mm256_loadu_ps(bi + 8);
        const int64_t o = j * a_col;
        PYNN_FMA6(p0 + o, p1 + o, p2 + o, p3 + o, p4 + o, p5 + o);
      }
    } else {
      for (int64_t j = 0; j < cols; ++j, bi += b_col) {
        const __m256 b0 = _mm256_maskload_ps(bi, m0), b1 = _mm256_maskload_ps(bi + 8, m1);
        const int64_t o = j * a_col;
        PYNN_FMA6(p0 + o, p1 + o, p2 + o, p3 + o, p4 + o, p5 + o);
      }
    }
  }
  const __m256 out[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < mr; ++r) {
    _mm256_maskstore_ps(acc + r * rs_acc, m0, out[r][0]);
    _mm256_maskstore_ps(acc + r * rs_acc + 8, m1, out[r][1]);
  }
}

void dwt_6x16(int64_t np, const float* const* ptr, int64_t off, const float* dy, int64_t rs_dy, float* acc, int mr,
              int nr) {
  __m256 c00 = _mm256_loadu_ps(acc), c01 = _mm256_loadu_ps(acc + 8);
  __m256 c10 = _mm256_loadu_ps(acc + 16), c11 = _mm256_loadu_ps(acc + 24);
  __m256 c20 = _mm256_loadu_ps(acc + 32), c21 = _mm256_loadu_ps(acc + 40);
  __m256 c30 = _mm256_loadu_ps(acc + 48), c31 = _mm256_loadu_ps(acc + 56);
  __m256 c40 = _mm256_loadu_ps(acc + 64), c41 = _mm256_loadu_ps(acc + 72);
  __m256 c50 = _mm256_loadu_ps(acc + 80), c51 = _mm256_loadu_ps(acc + 88);
  // Rows r >= mr repeat row mr-1 (their sums land in the caller's padding rows).
  const int64_t o1 = std::min(1, mr - 1), o2 = std::min(2, mr - 1), o3 = std::min(3, mr - 1);
  const int64_t o4 = std::min(4, mr - 1), o5 = std::min(5, mr - 1);
  if (nr == gemm::NR) {
    for (int64_t p = 0; p < np; ++p, dy += rs_dy) {
      const float* a = ptr[p] + off;
      const __m256 b0 = _mm256_loadu_ps(a), b1 = _mm256_loadu_ps(a + 8);
      PYNN_FMA6(dy, dy + o1, dy + o2, dy + o3, dy + o4, dy + o5);
    }
  } else {  // a run's last columns: masked lanes are never read (no fault past the run)
    const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
    for (int64_t p = 0; p < np; ++p, dy += rs_dy) {
      const float* a = ptr[p] + off;
      const __m256 b0 = _mm256_maskload_ps(a, m0), b1 = _mm256_maskload_ps(a + 8, m1);
      PYNN_FMA6(dy, dy + o1, dy + o2, dy + o3, dy + o4, dy + o5);
    }
  }
  _mm256_storeu_ps(acc, c00), _mm256_storeu_ps(acc + 8, c01);
  _mm256_storeu_ps(acc + 16, c10), _mm256_storeu_ps(acc + 24, c11);
  _mm256_storeu_ps(acc + 32, c20), _mm256_storeu_ps(acc + 40, c21);
  _mm256_storeu_ps(acc + 48, c30), _mm256_storeu_ps(acc + 56, c31);
  _mm256_storeu_ps(acc + 64, c40), _mm256_storeu_ps(acc + 72, c41);
  _mm256_storeu_ps(acc + 80, c50), _mm256_storeu_ps(acc + 88, c51);
}

#undef PYNN_FMA6

}  // namespace pynn::conv::avx2
