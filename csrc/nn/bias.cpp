#include "nn/bias.h"

#include <cstddef>
#include <vector>

#include "nn/parallel.h"

namespace pynn::nn {

void bias_add(const float* __restrict x, const float* __restrict b, float* __restrict y,
              int64_t rows, int64_t C) {
  parallel_for(rows, C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] + b[c];
    }
  });
}

// Each thread sums its own block of rows into a private double vector (the
// rows of one block stream through, the C accumulators stay in L1/L2 for the
// usual C); the per-thread partials are added at the end in a fixed order, so
// the result does not depend on scheduling.
void bias_grad(const float* __restrict dy, float* __restrict db, int64_t rows, int64_t C) {
  if (C <= 0) return;
  if (rows <= 0) {
    for (int64_t c = 0; c < C; ++c) db[c] = 0.f;
    return;
  }
  const int nt = threads_for(rows * C, kElemGrain);
  std::vector<double> part(static_cast<std::size_t>(nt) * C, 0.0);
  auto body = [&](int t, int T) {
    double* acc = part.data() + static_cast<std::size_t>(t) * C;
    const int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dy + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += g[c];
    }
  };
  if (nt <= 1) {
    body(0, 1);
  } else {
#ifdef PYNN_OPENMP
#pragma omp parallel num_threads(nt)
    body(omp_get_thread_num(), omp_get_num_threads());
#else
    body(0, 1);
#endif
  }
  for (int64_t c = 0; c < C; ++c) {
    double s = 0.0;
    for (int t = 0; t < nt; ++t) s += part[static_cast<std::size_t>(t) * C + c];
    db[c] = static_cast<float>(s);
  }
}

}  // namespace pynn::nn
