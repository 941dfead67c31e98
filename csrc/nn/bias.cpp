#include "nn/bias.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "nn/activations.h"
#include "common/parallel.h"

namespace pynn::nn {

void bias_add(const float* __restrict x, const float* __restrict b, float* __restrict y,
              int64_t rows, int64_t C) {
  parallel_for(rows, C, kElemGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] + b[c];
    }
  });
}

namespace {
// db (float) from column_sums' double totals.
template <class AddRows>
void float_column_sums(int64_t rows, int64_t C, float* db, AddRows&& add_rows) {
  std::vector<double> sums(static_cast<std::size_t>(std::max<int64_t>(C, 0)));
  column_sums(rows, C, kElemGrain, sums.data(), add_rows);
  for (int64_t c = 0; c < C; ++c) db[c] = static_cast<float>(sums[c]);
}
}  // namespace

void bias_grad(const float* __restrict dy, float* __restrict db, int64_t rows, int64_t C) {
  float_column_sums(rows, C, db, [&](int64_t r0, int64_t r1, double* acc) {
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
  float_column_sums(rows, C, db, [&](int64_t r0, int64_t r1, double* acc) {
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
