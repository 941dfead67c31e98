// The small-matrix driver of the GEMM frame (BLIS's "sup" path), AVX2: products
// of at most kSmallWork multiply-adds, and skinny ones (min(m, n) <= kSkinnyMaxMN),
// run here without blocking (gemm.cpp splits the skinny ones across threads).
// Intrinsics, so this frame file is an *_avx2.cpp (built with -mavx2 -mfma,
// reached only after CPUID dispatch).
//
// At these sizes (the lecture MLP's 32x64x128, 32x128x10 and their backprop
// transposes) a call is 1-6 us, so every fixed cost and every wasted FMA shows:
//  - the rows are cut into register tiles of exactly the rows there are (R = 1..6
//    rows x 16 columns, tile_rows below): the old path padded the last tile to 6
//    rows, so 32 rows cost 36 (and 128 cost 132);
//  - a right edge of at most 8 columns runs 8-wide (NV = 1), not 16-wide;
//  - B is read in place when it has unit column stride; a transposed B (the
//    dX = dY W^T of a backward pass) is packed once into 16-column panels with
//    8x8 register transposes, which is cheap next to the m x k x n FMAs.
#include <immintrin.h>

#include <algorithm>

#include "common/aligned_buffer.h"
#include "gemm/kernels/kernels.h"

namespace pynn::gemm::avx2 {

namespace {

// Rows [0, R) x columns [0, 8 * NV) of alpha * A.B (+ beta * C + bias), A read
// through its strides (broadcasts), B rows rs_b apart with at least 8 * NV
// readable floats each. full: the tile is R x 8NV inside C and C has unit
// column stride, so it is stored straight from the registers; otherwise it goes
// through acc (R x NR) and only rows < R, columns < nr reach C.
template <int R, int NV>
inline void tile(int64_t k, float alpha, const float* a, int64_t rs_a, int64_t cs_a, const float* b, int64_t rs_b,
                 float beta, float* c, int64_t rs_c, int64_t cs_c, int64_t nr, const float* bias, Act act,
                 float act_alpha) {
  __m256 acc[R][NV];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  const float* ar[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) ar[r] = a + r * rs_a;
  int64_t off = 0;
  for (int64_t p = 0; p < k; ++p, b += rs_b, off += cs_a) {
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(ar[r] + off);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  // Epilogue in the packed kernels' order: alpha*ab + beta*c + bias, then act.
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (nr == 8 * NV && cs_c == 1) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      float* cr = c + r * rs_c;
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        __m256 x = alpha == 1.f ? acc[r][v] : _mm256_mul_ps(va, acc[r][v]);  // 1 * x == x exactly
        if (beta != 0.f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * v), x);
        if (bias) x = _mm256_add_ps(x, _mm256_loadu_ps(bias + 8 * v));
        _mm256_storeu_ps(cr + 8 * v, x);
      }
    }
    act_tile(act, c, rs_c, R, nr, act_alpha);
    return;
  }
  alignas(32) float t[MR * NR];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm256_store_ps(t + r * NR + 8 * v, _mm256_mul_ps(va, acc[r][v]));
  for (int r = 0; r < R; ++r) {
    const float* cr = c + r * rs_c;
    for (int64_t q = 0; q < nr; ++q) {
      float x = t[r * NR + q];
      if (beta != 0.f) x = beta * cr[q * cs_c] + x;
      if (bias) x += bias[q];
      t[r * NR + q] = x;
    }
  }
  act_tile(act, t, NR, R, nr, act_alpha);
  for (int r = 0; r < R; ++r)
    for (int64_t q = 0; q < nr; ++q) c[r * rs_c + q * cs_c] = t[r * NR + q];
}

using TileFn = void (*)(int64_t, float, const float*, int64_t, int64_t, const float*, int64_t, float, float*, int64_t,
                        int64_t, int64_t, const float*, Act, float);

template <int NV>
constexpr TileFn kTiles[MR + 1] = {nullptr, tile<1, NV>, tile<2, NV>, tile<3, NV>, tile<4, NV>, tile<5, NV>,
                                   tile<6, NV>};

// The height of the next row tile when `left` rows remain: 6-row tiles (12 FMA
// chains, one row per cycle), and the remainder as at most two tiles of >= 4 rows
// where possible: a 2-row tile has 4 chains, bound by the 4-cycle FMA latency
// (2 cycles a row), so 6 + 2 rows run as 4 + 4 (8 cycles a k step, not 10),
// 6 + 1 as 4 + 3 and 6 + 3 as 4 + 5.
inline int next_rows(int64_t left) {
  return left >= MR + 4 || left == MR ? MR : left > MR ? 4 : static_cast<int>(left);
}

// Estimated cycles of sgemm_small for an m x n x k product (the model behind the
// orientation choice below): per k step a 16-wide panel costs max(R, 4) cycles
// per R-row tile (2 FMAs a cycle, or the 4-cycle FMA latency when a tile has
// fewer than 8 chains) and an 8-wide edge panel 4 cycles per tile; panels that are
// not read in place cost a copy (a transposed one ~1/4 cycle a float with the
// 8x8 register transposes, the edge of a row-major one ~1 cycle a row); a strided C costs ~2 cycles an element (scalar
// stores through the tile buffer), a unit-stride C an eighth of that.
double small_cost(int64_t m, int64_t n, int64_t k, int64_t rs_b, int64_t cs_b, int64_t cs_c) {
  const int64_t q = m / MR, r = m % MR;
  int64_t wide = 6 * q, tiles = q;  // per k step of one 16-wide panel
  if (r >= 4) {
    wide += r, tiles += 1;
  } else if (r && q >= 1) {
    wide += -2 + std::max<int64_t>(r + 2, 4), tiles += 1;
  } else if (r) {
    wide += 4, tiles += 1;
  }
  const int64_t full = n / NR, edge = n % NR;
  double per_k = static_cast<double>(full * wide);
  if (edge) per_k += edge <= 8 ? 4.0 * tiles : static_cast<double>(wide);
  const double panels = static_cast<double>(full + (edge ? 1 : 0));
  double pack = 0;
  if (cs_b != 1) pack = rs_b == 1 ? 0.25 * static_cast<double>(k) * n : 2.0 * static_cast<double>(k) * n;
  else if (edge) pack = 1.0 * static_cast<double>(k);  // two masked loads and stores a row
  const double store = (cs_c == 1 ? 0.25 : 2.0) * static_cast<double>(m) * n;
  return per_k * static_cast<double>(k) + pack + store + 30.0 * tiles * panels;
}

}  // namespace

// Unpacked ("sup") path for small products, where packing A and blocking cost
// more than they save. Computes exactly what sgemm documents; bias is n floats.
void sgemm_small(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                 const float* b, int64_t rs_b, int64_t cs_b, float beta, float* c, int64_t rs_c, int64_t cs_c,
                 const float* bias, Act act, float act_alpha) {
  // C^T = B^T A^T when that orientation tiles better (a narrow C: 32x128x10 runs as
  // 10x128x32, two full 16-wide panels instead of 16 columns computed for 10). The
  // bias runs along C's rows, so only without one.
  if (!bias && small_cost(n, m, k, cs_a, rs_a, rs_c) < 0.85 * small_cost(m, n, k, rs_b, cs_b, cs_c)) {
    sgemm_small(n, m, k, alpha, b, cs_b, rs_b, a, cs_a, rs_a, beta, c, cs_c, rs_c, nullptr, act, act_alpha);
    return;
  }
  // Panels that cannot be read in place (the right edge of a unit-stride B, or
  // every panel of a strided B) are copied into a k x NR panel, zero-padded, just
  // before their row tiles use it: masked loads (vmaskmovps) straight from B measured
  // 2-3x slower here. One panel at a time, so the buffer stays k x NR floats (in L1/L2)
  // however wide B is (the skinny products that also come here can have n in the
  // thousands).
  static thread_local Scratch scratch;  // 64-byte aligned
  float* const panel = scratch.get(static_cast<size_t>(k * NR));
  const bool in_place = cs_b == 1;
  for (int64_t j = 0; j < n; j += NR) {
    const int64_t nr = n - j < NR ? n - j : NR;
    const float* bp;
    int64_t rs_bp;
    if (in_place && nr == NR) {
      bp = b + j;
      rs_bp = rs_b;
    } else {
      float* d = panel;
      if (nr == NR && rs_b == 1) {
        pack_b_panel16_colmajor(k, b + j * cs_b, cs_b, d);
      } else if (cs_b == 1) {
        // The right edge of a row-major B (nr < NR columns, e.g. the 10 classes of a
        // classifier layer): two masked loads a row, zero-padded. The scalar copy took
        // ~1 us of a 5.7 us 128x128x10 product. Masked-off lanes are never read.
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nr)), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nr) - 8), lane);
        const float* src = b + j;
        for (int64_t p = 0; p < k; ++p, src += rs_b) {
          _mm256_store_ps(d + p * NR, _mm256_maskload_ps(src, m0));
          _mm256_store_ps(d + p * NR + 8, _mm256_maskload_ps(src + 8, m1));
        }
      } else {
        for (int64_t p = 0; p < k; ++p) {
          for (int64_t q = 0; q < nr; ++q) d[p * NR + q] = b[p * rs_b + (j + q) * cs_b];
          for (int64_t q = nr; q < NR; ++q) d[p * NR + q] = 0.f;
        }
      }
      bp = d;
      rs_bp = NR;
    }
    const TileFn* fns = nr <= 8 ? kTiles<1> : kTiles<2>;
    const float* bias_j = bias ? bias + j : nullptr;
    for (int64_t i = 0; i < m;) {
      const int rows = next_rows(m - i);
      fns[rows](k, alpha, a + i * rs_a, rs_a, cs_a, bp, rs_bp, beta, c + i * rs_c + j * cs_c, rs_c, cs_c, nr, bias_j,
                act, act_alpha);
      i += rows;
    }
  }
}

}  // namespace pynn::gemm::avx2
