#include "norm/normalization.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"

#define PYNN_ISA generic
#include "norm/normalization_impl.h"
#undef PYNN_ISA

namespace pynn {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per thread below which forking costs more than it saves

}  // namespace

// Rows per block of the batch-norm reductions: a block (kBlock × C floats) is summed in
// float while it sits in L1, then merged into double accumulators, so a 10^5-row batch
// never accumulates more than kBlock terms in float.
constexpr int64_t kBlock = 32;

// Per-channel mean and M2 = Σ(x − mean)² in one pass over x: each block's own mean and
// M2 (its second pass reads the block from L1), merged by Chan et al.'s pairwise
// formula in double. Robust to large means like the two-pass method (deviations are
// taken from the block mean), at one read of x instead of two.
// Threads take contiguous row ranges and are merged in thread order (deterministic).
static void channel_mean_m2(const float* x, int64_t rows, int64_t c, double* mean_out, double* m2_out) {
  const int T = rows > 0 ? threads_for(rows * c, kGrain) : 1;
  std::vector<double> mean(static_cast<size_t>(T) * c, 0.0), m2(static_cast<size_t>(T) * c, 0.0);
  std::vector<int64_t> cnt(static_cast<size_t>(T), 0);
  int used = 1;
  parallel_team_checked(T, [&](int t, int nt) {
    if (t == 0) used = nt;
    double* mu = mean.data() + static_cast<size_t>(t) * c;
    double* q = m2.data() + static_cast<size_t>(t) * c;
    std::vector<float> bs(c), bq(c);
    int64_t n = 0;
    const int64_t r_hi = rows * (t + 1) / nt;
    for (int64_t r0 = rows * t / nt; r0 < r_hi; r0 += kBlock) {
      const int64_t nb = std::min(kBlock, r_hi - r0);
      const float* xb = x + r0 * c;
      for (int64_t j = 0; j < c; ++j) bs[j] = 0.f, bq[j] = 0.f;
      for (int64_t r = 0; r < nb; ++r)
        for (int64_t j = 0; j < c; ++j) bs[j] += xb[r * c + j];
      const float inv_nb = 1.f / static_cast<float>(nb);
      for (int64_t j = 0; j < c; ++j) bs[j] *= inv_nb;  // block mean
      for (int64_t r = 0; r < nb; ++r)
        for (int64_t j = 0; j < c; ++j) {
          const float d = xb[r * c + j] - bs[j];
          bq[j] += d * d;
        }
      const double n_new = static_cast<double>(n + nb), w = static_cast<double>(nb) / n_new;
      const double cross = static_cast<double>(n) * static_cast<double>(nb) / n_new;
      for (int64_t j = 0; j < c; ++j) {
        const double delta = static_cast<double>(bs[j]) - mu[j];
        mu[j] += delta * w;
        q[j] += static_cast<double>(bq[j]) + delta * delta * cross;
      }
      n += nb;
    }
    cnt[static_cast<size_t>(t)] = n;
  });
  for (int64_t j = 0; j < c; ++j) mean_out[j] = 0.0, m2_out[j] = 0.0;
  int64_t n = 0;
  for (int t = 0; t < used; ++t) {
    const int64_t nb = cnt[static_cast<size_t>(t)];
    if (nb == 0) continue;
    const double n_new = static_cast<double>(n + nb), w = static_cast<double>(nb) / n_new;
    const double cross = static_cast<double>(n) * static_cast<double>(nb) / n_new;
    for (int64_t j = 0; j < c; ++j) {
      const double bm = mean[static_cast<size_t>(t) * c + j], delta = bm - mean_out[j];
      mean_out[j] += delta * w;
      m2_out[j] += m2[static_cast<size_t>(t) * c + j] + delta * delta * cross;
    }
    n += nb;
  }
}

void batch_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  std::vector<double> mu(c), m2(c);
  channel_mean_m2(x, rows, c, mu.data(), m2.data());
  const double inv_rows = rows > 0 ? 1.0 / rows : 0.0;
  std::vector<float> scale(c), shift(c);
  for (int64_t j = 0; j < c; ++j) {
    mean[j] = static_cast<float>(mu[j]);
    inv_std[j] = static_cast<float>(1.0 / std::sqrt(m2[j] * inv_rows + eps));
    scale[j] = inv_std[j] * (gamma ? gamma[j] : 1.f);
    shift[j] = (beta ? beta[j] : 0.f) - mean[j] * scale[j];
  }
  parallel_for(rows, c, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      for (int64_t j = 0; j < c; ++j) yr[j] = xr[j] * scale[j] + shift[j];
    }
  });
}

void batch_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta) {
  // Σdy and Σdy·(x − mean) in one pass: float sums per block of kBlock rows (vectorised over
  // channels), added into double per-thread partials, threads added in order.
  const int T = rows > 0 ? threads_for(rows * c, kGrain) : 1;
  std::vector<double> part(static_cast<size_t>(T) * 2 * c, 0.0);
  int used = 1;
  parallel_team_checked(T, [&](int t, int nt) {
    if (t == 0) used = nt;
    double* pd = part.data() + static_cast<size_t>(t) * 2 * c;
    double* px = pd + c;
    std::vector<float> bd(c), bx(c);
    const int64_t r_hi = rows * (t + 1) / nt;
    for (int64_t r0 = rows * t / nt; r0 < r_hi; r0 += kBlock) {
      const int64_t nb = std::min(kBlock, r_hi - r0);
      for (int64_t j = 0; j < c; ++j) bd[j] = 0.f, bx[j] = 0.f;
      for (int64_t r = r0; r < r0 + nb; ++r) {
        const float* xr = x + r * c;
        const float* dyr = dy + r * c;
        for (int64_t j = 0; j < c; ++j) {
          bd[j] += dyr[j];
          bx[j] += dyr[j] * (xr[j] - mean[j]);
        }
      }
      for (int64_t j = 0; j < c; ++j) pd[j] += bd[j], px[j] += bx[j];
    }
  });
  std::vector<double> sdy(c, 0.0), sdyx(c, 0.0);
  for (int t = 0; t < used; ++t)
    for (int64_t j = 0; j < c; ++j) {
      sdy[j] += part[static_cast<size_t>(t) * 2 * c + j];
      sdyx[j] += part[static_cast<size_t>(t) * 2 * c + c + j] * inv_std[j];
    }
  std::vector<float> a(c), b(c), k(c);
  const double inv_rows = rows > 0 ? 1.0 / rows : 0.0;
  for (int64_t j = 0; j < c; ++j) {
    dbeta[j] = static_cast<float>(sdy[j]);
    dgamma[j] = static_cast<float>(sdyx[j]);
    const float g = gamma ? gamma[j] : 1.f;
    // dx = k·(dy − dbeta/R − x̂·dgamma/R), with k = gamma·inv_std and x̂ = (x − mean)·inv_std.
    k[j] = g * inv_std[j];
    a[j] = static_cast<float>(sdy[j] * inv_rows);
    b[j] = static_cast<float>(sdyx[j] * inv_rows) * inv_std[j];
  }
  parallel_for(rows, c, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * c;
      const float* dyr = dy + r * c;
      float* dxr = dx + r * c;
      for (int64_t j = 0; j < c; ++j) dxr[j] = k[j] * (dyr[j] - a[j] - (xr[j] - mean[j]) * b[j]);
    }
  });
}

// The layer-norm row kernels live in normalization_impl.h, compiled here (generic) and in
// normalization_avx2.cpp (AVX2/FMA: 8-lane row reductions); dispatched at run time.
void layer_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  PYNN_ISA_CALL(layer_norm_forward, x, rows, c, gamma, beta, eps, y, mean, inv_std);
}

void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta,
                         float* dx_sum) {
  PYNN_ISA_CALL(layer_norm_backward, x, dy, rows, c, mean, inv_std, gamma, dx, dgamma, dbeta, dx_sum);
}

void add_layer_norm_forward(const float* x, const float* res, int64_t rows, int64_t c, const float* gamma,
                            const float* beta, float eps, float* s, float* y, float* mean, float* inv_std) {
  PYNN_ISA_CALL(add_layer_norm_forward, x, res, rows, c, gamma, beta, eps, s, y, mean, inv_std);
}

}  // namespace pynn
