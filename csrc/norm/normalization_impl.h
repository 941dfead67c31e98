// Batch- and layer-norm kernels, included once per ISA (normalization.cpp generic,
// normalization_avx2.cpp with -mavx2 -mfma), each inside its own PYNN_ISA namespace.
// No #pragma once.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/dispatch.h"
#include "common/block_sums.h"
#include "common/parallel.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (common/dispatch.h) before including this file"
#endif

namespace pynn::PYNN_ISA {
namespace {
constexpr int64_t kNormGrain = 1 << 15;  // elements per thread below which forking costs more than it saves

#ifndef PYNN_LN_ROW_MOMENTS
// Σx and Σx² of a row, in double (the portable build; normalization_avx2.cpp defines its
// own with eight independent vector accumulators before including this file).
inline void ln_row_moments(const float* __restrict x, int64_t c, double* sum, double* sum_sq) {
  double s = 0.0, q = 0.0;
  for (int64_t j = 0; j < c; ++j) {
    const double v = x[j];
    s += v;
    q += v * v;
  }
  *sum = s;
  *sum_sq = q;
}
#endif

#ifndef PYNN_LN_BACKWARD_ROW_SUMS
// One backward row: returns Σg and Σg·x̂ (g = dy·gamma, x̂ = (x − mu)·inv) and adds dy and
// dy·x̂ into the column partials pb, pg (the portable build; normalization_avx2.cpp has its own).
inline void ln_backward_row_sums(const float* __restrict xr, const float* __restrict dyr, const float* __restrict gm,
                                 float mu, float inv, int64_t c, float* __restrict pb, float* __restrict pg,
                                 float* sum_g, float* sum_gx) {
  float sg = 0.f, sgx = 0.f;
#pragma omp simd reduction(+ : sg, sgx)
  for (int64_t j = 0; j < c; ++j) {
    const float xh = (xr[j] - mu) * inv;
    const float gj = dyr[j] * gm[j];
    sg += gj;
    sgx += gj * xh;
    pb[j] += dyr[j];
    pg[j] += dyr[j] * xh;
  }
  *sum_g = sg;
  *sum_gx = sgx;
}
#endif
}  // namespace

// Forward: the row statistics in one pass, Σx and Σx² accumulated in double, var = Σx²/C − mean²
// (double keeps ~16 digits, so the subtraction loses nothing a float input can hold unless
// |mean| / std > ~1e4, where float x itself resolves deviations to 1e-3 of std); then one
// pass writing y. The earlier two float passes (Σx, then Σ(x − mean)²) were each one
// vector accumulator long, latency-bound at 4 cycles per 8 floats: forward (4096, 256) took
// 0.50 ms against PyTorch's 0.39 (one thread, CPU time).
// Backward rows: float row sums (`omp simd reduction` lets the compiler reorder them into
// SIMD lanes, which it may not without -ffast-math). Cross-row sums use double.
namespace {
// One row of the forward: statistics of xr, then yr = (xr − mu)·inv·gm + bt.
inline void ln_forward_row(const float* __restrict xr, int64_t c, const float* __restrict gm,
                           const float* __restrict bt, float eps, float* __restrict yr, float* mean, float* inv_std) {
  double s = 0.0, q = 0.0;
  ln_row_moments(xr, c, &s, &q);
  const double mu_d = c > 0 ? s / static_cast<double>(c) : 0.0;
  const double var = c > 0 ? std::max(q / static_cast<double>(c) - mu_d * mu_d, 0.0) : 0.0;
  const float mu = static_cast<float>(mu_d);
  const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  *mean = mu;
  *inv_std = inv;
#pragma omp simd
  for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - mu) * inv * gm[j] + bt[j];
}

// Rows per block of the backward's column sums (dgamma, dbeta, Σ dx): at least 32 (a float
// partial over 32 values), fixed by the shape (block_rows_for): the sums are the same bits at
// any thread count.
constexpr int64_t kLnBlockRows = 32;
}  // namespace

void layer_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  // Null gamma/beta as rows of ones/zeros (×1 and +0 as before), so the row loop has no branch.
  std::vector<float> ones(gamma ? 0 : static_cast<size_t>(c), 1.f), zeros(beta ? 0 : static_cast<size_t>(c), 0.f);
  const float* __restrict gm = gamma ? gamma : ones.data();
  const float* __restrict bt = beta ? beta : zeros.data();
  parallel_for(rows, c, kNormGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) ln_forward_row(x + r * c, c, gm, bt, eps, y + r * c, mean + r, inv_std + r);
  });
}

// s = x + r, then the forward on s, row by row while the row is in L1: the post-norm
// residual LN(x + f(x)) without a separate add pass. s is the same float sum as x + r, so
// the result is bitwise that of an add followed by layer_norm_forward.
void add_layer_norm_forward(const float* x, const float* res, int64_t rows, int64_t c, const float* gamma,
                            const float* beta, float eps, float* s, float* y, float* mean, float* inv_std) {
  std::vector<float> ones(gamma ? 0 : static_cast<size_t>(c), 1.f), zeros(beta ? 0 : static_cast<size_t>(c), 0.f);
  const float* __restrict gm = gamma ? gamma : ones.data();
  const float* __restrict bt = beta ? beta : zeros.data();
  parallel_for(rows, c, kNormGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * c;
      const float* __restrict rr = res + r * c;
      float* __restrict sr = s + r * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) sr[j] = xr[j] + rr[j];
      ln_forward_row(sr, c, gm, bt, eps, y + r * c, mean + r, inv_std + r);
    }
  });
}

// One pass per row: row sums Σg and Σg·x̂, then dx. dgamma, dbeta (and Σ dx over the rows
// when dx_sum is given: the bias gradient of a layer whose output is x, e.g. the Dense
// before a residual LayerNorm) accumulate in float partials per block of kLnBlockRows
// rows, added in block order in double: the same bits at any thread count.
void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta,
                         float* dx_sum) {
  // gamma == null as a row of ones (×1 is exact), so the row loop has no branch.
  std::vector<float> ones(gamma ? 0 : static_cast<size_t>(c), 1.f);
  const float* gm = gamma ? gamma : ones.data();
  const int parts = dx_sum ? 3 : 2;
  // The partials of a block are [dgamma | dbeta | Σdx], `parts` × c floats
  // (common/block_sums.h folds them in block order in double).
  std::vector<float> sums(static_cast<size_t>(parts * c));
  fixed_block_column_sums(rows, parts * c, block_rows_for(rows, c, kLnBlockRows), kNormGrain * parts, sums.data(), [&](int64_t r0, int64_t r1, float* part) {
    const float* __restrict gmr = gm;
    {
      float* __restrict pg = part;
      float* __restrict pb = pg + c;
      float* __restrict pd = dx_sum ? pb + c : nullptr;
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict xr = x + r * c;
        const float* __restrict dyr = dy + r * c;
        float* __restrict dxr = dx + r * c;
        const float mu = mean[r], inv = inv_std[r];
        // x̂ and g are recomputed in the second loop (same expressions, same bits) rather than
        // stored: two scratch rows cost more load/store traffic than the few flops they save.
        float sg = 0.f, sgx = 0.f;
        ln_backward_row_sums(xr, dyr, gmr, mu, inv, c, pb, pg, &sg, &sgx);
        const float a = c > 0 ? sg / static_cast<float>(c) : 0.f, b = c > 0 ? sgx / static_cast<float>(c) : 0.f;
        if (pd) {
#pragma omp simd
          for (int64_t j = 0; j < c; ++j) {
            const float xh = (xr[j] - mu) * inv;
            dxr[j] = inv * (dyr[j] * gmr[j] - a - xh * b);
            pd[j] += dxr[j];
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < c; ++j) {
            const float xh = (xr[j] - mu) * inv;
            dxr[j] = inv * (dyr[j] * gmr[j] - a - xh * b);
          }
        }
      }
    }
  });
  if (c <= 0) return;
  std::copy(sums.begin(), sums.begin() + c, dgamma);
  std::copy(sums.begin() + c, sums.begin() + 2 * c, dbeta);
  if (dx_sum) std::copy(sums.begin() + 2 * c, sums.end(), dx_sum);
}


// ---------------------------------------------------------------- batch norm
// Every reduction over the rows runs on common/block_sums.h's fixed blocks: the statistics and
// the backward's sums are the same bits at any thread count (issue #17).
namespace {
// Rows per block: at least 32 (a block of 32 × C floats is summed in float while it sits in L1,
// and a float partial holds 32 terms), more for a very tall input (block_rows_for).
constexpr int64_t kBnBlockRows = 32;

// One block's moments per channel, in float, from two passes over the nb × c block (the
// second reads it from L1): m = Σx/nb, then s = Σ(x − m) and q = Σ(x − m)². m, s and q are
// zero on entry. m is rounded (Σx of 32 values near 1e4 is off by ~0.01): s carries what m
// misses, so the fold takes mean m + s/nb and M2 q − s²/nb (the corrected two-pass formula,
// Chan, Golub & LeVeque 1983) instead of the bias M2 would get from the rounded m.
inline void bn_block_moments(const float* __restrict x, int64_t nb, int64_t c, float* __restrict m,
                             float* __restrict s, float* __restrict q) {
  for (int64_t r = 0; r < nb; ++r) {
    const float* __restrict xr = x + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) m[j] += xr[j];
  }
  const float inv_nb = 1.f / static_cast<float>(nb);
#pragma omp simd
  for (int64_t j = 0; j < c; ++j) m[j] *= inv_nb;
  for (int64_t r = 0; r < nb; ++r) {
    const float* __restrict xr = x + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      const float d = xr[j] - m[j];
      s[j] += d;
      q[j] += d * d;
    }
  }
}
}  // namespace

// Statistics: each block's mean and M2 (bn_block_moments), merged in block order in double by
// Chan et al.'s pairwise formula. Robust to a large mean like the two-pass method (deviations
// are taken from the block mean), at one read of x instead of two. Then y = x·scale + shift.
void batch_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  std::vector<double> mu_v(static_cast<size_t>(c), 0.0), m2_v(static_cast<size_t>(c), 0.0);
  double* __restrict mu = mu_v.data();
  double* __restrict m2 = m2_v.data();
  int64_t n = 0;
  fixed_block_reduce<float>(
      rows, 3 * c, block_rows_for(rows, 3 * c, kBnBlockRows), 3 * kNormGrain,
      [&](int64_t r0, int64_t r1, float* part) {
        bn_block_moments(x + r0 * c, r1 - r0, c, part, part + c, part + 2 * c);
      },
      [&](int64_t r0, int64_t r1, const float* __restrict part) {
        const int64_t nb = r1 - r0;
        const double nbd = static_cast<double>(nb), inv_nb = 1.0 / nbd, n_new = static_cast<double>(n + nb);
        const double w = nbd / n_new, cross = static_cast<double>(n) * nbd / n_new;
        for (int64_t j = 0; j < c; ++j) {
          const double sb = part[c + j];
          const double delta = (static_cast<double>(part[j]) + sb * inv_nb) - mu[j];
          mu[j] += delta * w;
          m2[j] += (static_cast<double>(part[2 * c + j]) - sb * sb * inv_nb) + delta * delta * cross;
        }
        n += nb;
      });
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  std::vector<float> scale_v(static_cast<size_t>(c)), shift_v(static_cast<size_t>(c));
  float* __restrict scale = scale_v.data();
  float* __restrict shift = shift_v.data();
  for (int64_t j = 0; j < c; ++j) {
    mean[j] = static_cast<float>(mu[j]);
    inv_std[j] = static_cast<float>(1.0 / std::sqrt(m2[j] * inv_rows + static_cast<double>(eps)));
    scale[j] = inv_std[j] * (gamma ? gamma[j] : 1.f);
    shift[j] = (beta ? beta[j] : 0.f) - mean[j] * scale[j];
  }
  parallel_for(rows, c, kNormGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * c;
      float* __restrict yr = y + r * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) yr[j] = xr[j] * scale[j] + shift[j];
    }
  });
}

// Σdy and Σdy·(x − mean) in one pass over fixed blocks (float per block, folded in block order
// in double), then dx = k·(dy − dbeta/R − x̂·dgamma/R) with k = gamma·inv_std.
void batch_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta) {
  // [Σdy | Σdy·(x − mean)], kept in double: dgamma is that sum times inv_std, rounded once.
  std::vector<double> sums(static_cast<size_t>(2 * c));
  fixed_block_column_sums(rows, 2 * c, block_rows_for(rows, 2 * c, kBnBlockRows), 2 * kNormGrain, sums.data(),
                          [&](int64_t r0, int64_t r1, float* part) {
                            float* __restrict pd = part;
                            float* __restrict px = part + c;
                            const float* __restrict mu = mean;
                            for (int64_t r = r0; r < r1; ++r) {
                              const float* __restrict xr = x + r * c;
                              const float* __restrict dyr = dy + r * c;
#pragma omp simd
                              for (int64_t j = 0; j < c; ++j) {
                                pd[j] += dyr[j];
                                px[j] += dyr[j] * (xr[j] - mu[j]);
                              }
                            }
                          });
  std::vector<float> a_v(static_cast<size_t>(c)), b_v(static_cast<size_t>(c)), k_v(static_cast<size_t>(c));
  float* __restrict a = a_v.data();
  float* __restrict b = b_v.data();
  float* __restrict k = k_v.data();
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  for (int64_t j = 0; j < c; ++j) {
    const double sdy = sums[static_cast<size_t>(j)], sdyx = sums[static_cast<size_t>(c + j)] * inv_std[j];
    dbeta[j] = static_cast<float>(sdy);
    dgamma[j] = static_cast<float>(sdyx);
    k[j] = (gamma ? gamma[j] : 1.f) * inv_std[j];
    a[j] = static_cast<float>(sdy * inv_rows);
    b[j] = static_cast<float>(sdyx * inv_rows) * inv_std[j];
  }
  parallel_for(rows, c, kNormGrain, [&](int64_t r0, int64_t r1) {
    const float* __restrict mu = mean;
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * c;
      const float* __restrict dyr = dy + r * c;
      float* __restrict dxr = dx + r * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) dxr[j] = k[j] * (dyr[j] - a[j] - (xr[j] - mu[j]) * b[j]);
    }
  });
}

}  // namespace pynn::PYNN_ISA
