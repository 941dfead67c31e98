#include "nn/bias.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "common/first_error.h"
#include "nn/activations.h"
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

// db[c] = sum over rows of some per-row values, split over threads: each thread
// calls add_rows(r0, r1, acc) for its own block of rows, which adds the column
// sums of rows [r0, r1) into a private double vector acc (the rows of one block
// stream through, the C accumulators stay in L1/L2 for the usual C); the
// per-thread partials are added at the end in a fixed order, so the result does
// not depend on scheduling. rows == 0 gives zeros.
namespace {
template <class AddRows>
void column_sums(int64_t rows, int64_t C, float* db, AddRows&& add_rows) {
  if (C <= 0) return;
  if (rows <= 0) {
    for (int64_t c = 0; c < C; ++c) db[c] = 0.f;
    return;
  }
  const int nt = threads_for(rows * C, kElemGrain);
  std::vector<double> part(static_cast<std::size_t>(nt) * C, 0.0);
  auto body = [&](int t, int T) {
    add_rows(rows * t / T, rows * (t + 1) / T, part.data() + static_cast<std::size_t>(t) * C);
  };
  if (nt <= 1) {
    body(0, 1);
  } else {
#ifdef PYNN_OPENMP
    FirstError err;  // add_rows may allocate (act_bias_backward's block sums): MemoryError, not std::terminate
#pragma omp parallel num_threads(nt)
    err.run([&] { body(omp_get_thread_num(), omp_get_num_threads()); });
    err.rethrow();
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
}  // namespace

void bias_grad(const float* __restrict dy, float* __restrict db, int64_t rows, int64_t C) {
  column_sums(rows, C, db, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dy + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += g[c];
    }
  });
}

// Each thread walks its rows in blocks of about 16 KiB: the (vectorised,
// ISA-dispatched) act_backward writes the block of dz, which is then summed from
// L1 into float partials (a block is a few dozen rows: no precision concern) and
// folded into the thread's double accumulators. A block is below the elementwise
// grain, so act_backward does not fork inside the outer team.
void act_bias_backward(Act a, const float* y, const float* dy, float* dz, float* db, int64_t rows,
                       int64_t C) {
  const int64_t block = std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1));
  column_sums(rows, C, db, [&](int64_t r0, int64_t r1, double* acc) {
    std::vector<float> sum(static_cast<std::size_t>(C));
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
      const int64_t b1 = std::min(r1, b0 + block);
      const int64_t off = b0 * C;
      act_backward(a, y + off, y + off, dy + off, dz + off, (b1 - b0) * C, 0.f);
      std::fill(sum.begin(), sum.end(), 0.f);
      float* __restrict s = sum.data();
      for (int64_t r = b0; r < b1; ++r) {
        const float* __restrict g = dz + r * C;
        for (int64_t c = 0; c < C; ++c) s[c] += g[c];
      }
      for (int64_t c = 0; c < C; ++c) acc[c] += s[c];
    }
  });
}

}  // namespace pynn::nn
