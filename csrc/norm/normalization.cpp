#include "norm/normalization.h"

#include <cmath>
#include <vector>

#include "common/parallel.h"

namespace pynn {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per thread below which forking costs more than it saves

// Per-channel sums over rows in double (common/parallel.h column_sums); f(r, j) gives the term.
template <class F>
void channel_sums(int64_t rows, int64_t c, double* out, F f) {
  column_sums(rows, c, kGrain, out, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < c; ++j) acc[j] += f(r, j);
  });
}

}  // namespace

void batch_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  std::vector<double> sum(c), sq(c);
  channel_sums(rows, c, sum.data(), [&](int64_t r, int64_t j) { return static_cast<double>(x[r * c + j]); });
  const double inv_rows = rows > 0 ? 1.0 / rows : 0.0;
  for (int64_t j = 0; j < c; ++j) mean[j] = static_cast<float>(sum[j] * inv_rows);
  // Two passes (mean, then squared deviations): no cancellation for large means.
  channel_sums(rows, c, sq.data(), [&](int64_t r, int64_t j) {
    const double d = static_cast<double>(x[r * c + j]) - mean[j];
    return d * d;
  });
  std::vector<float> scale(c), shift(c);
  for (int64_t j = 0; j < c; ++j) {
    inv_std[j] = static_cast<float>(1.0 / std::sqrt(sq[j] * inv_rows + eps));
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
  std::vector<double> sdy(c), sdyx(c);
  channel_sums(rows, c, sdy.data(), [&](int64_t r, int64_t j) { return static_cast<double>(dy[r * c + j]); });
  channel_sums(rows, c, sdyx.data(), [&](int64_t r, int64_t j) {
    return static_cast<double>(dy[r * c + j]) * (static_cast<double>(x[r * c + j]) - mean[j]) * inv_std[j];
  });
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

// Layer norm rows are short (C is a model width, ~64-4096), so row statistics
// accumulate in float; `omp simd reduction` lets the compiler reorder those sums
// into SIMD lanes (it may not without -ffast-math). Cross-row sums use double.
void layer_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  parallel_for(rows, c, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < c; ++j) s += xr[j];
      const float mu = c > 0 ? s / static_cast<float>(c) : 0.f;
      float q = 0.f;
#pragma omp simd reduction(+ : q)
      for (int64_t j = 0; j < c; ++j) q += (xr[j] - mu) * (xr[j] - mu);
      const float inv = 1.f / std::sqrt((c > 0 ? q / static_cast<float>(c) : 0.f) + eps);
      mean[r] = mu;
      inv_std[r] = inv;
      if (gamma && beta) {
        for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - mu) * inv * gamma[j] + beta[j];
      } else {
        for (int64_t j = 0; j < c; ++j)
          yr[j] = (xr[j] - mu) * inv * (gamma ? gamma[j] : 1.f) + (beta ? beta[j] : 0.f);
      }
    }
  });
}

// One pass per row: row sums Σg and Σg·x̂, then dx; dgamma/dbeta accumulate in
// per-thread float partials (each thread sums rows/threads values), reduced in double.
void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta) {
  const int nt = threads_for(rows * c, kGrain);
  std::vector<float> part_g(static_cast<size_t>(nt) * c, 0.f), part_b(static_cast<size_t>(nt) * c, 0.f);
  parallel_team_checked(nt, [&](int t, int T) {
    float* pg = part_g.data() + static_cast<size_t>(t) * c;
    float* pb = part_b.data() + static_cast<size_t>(t) * c;
    std::vector<float> xhat(c), g(c);
    for (int64_t r = rows * t / T; r < rows * (t + 1) / T; ++r) {
      const float* xr = x + r * c;
      const float* dyr = dy + r * c;
      float* dxr = dx + r * c;
      const float mu = mean[r], inv = inv_std[r];
      float sg = 0.f, sgx = 0.f;
#pragma omp simd reduction(+ : sg, sgx)
      for (int64_t j = 0; j < c; ++j) {
        xhat[j] = (xr[j] - mu) * inv;
        g[j] = dyr[j] * (gamma ? gamma[j] : 1.f);
        sg += g[j];
        sgx += g[j] * xhat[j];
        pb[j] += dyr[j];
        pg[j] += dyr[j] * xhat[j];
      }
      const float a = c > 0 ? sg / static_cast<float>(c) : 0.f, b = c > 0 ? sgx / static_cast<float>(c) : 0.f;
      for (int64_t j = 0; j < c; ++j) dxr[j] = inv * (g[j] - a - xhat[j] * b);
    }
  });
  for (int64_t j = 0; j < c; ++j) {
    double sgm = 0.0, sbt = 0.0;
    for (int t = 0; t < nt; ++t) {
      sgm += part_g[static_cast<size_t>(t) * c + j];
      sbt += part_b[static_cast<size_t>(t) * c + j];
    }
    dgamma[j] = static_cast<float>(sgm);
    dbeta[j] = static_cast<float>(sbt);
  }
}

}  // namespace pynn
