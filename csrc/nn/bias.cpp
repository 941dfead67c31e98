#include "nn/bias.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "nn/activations.h"
#include "common/block_sums.h"
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

// Rows per block of the bias-gradient sums: fixed by the shape (common/block_sums.h), so db
// is the same bits at any thread count. 256 rows: a block of the CNN's 32-channel conv
// gradient is 32 KiB of dy, enough work per block that the fold (blocks x C double adds, 1/256
// of the input) and the per-block dispatch stay small.
constexpr int64_t kBiasBlockRows = 256;

void bias_grad(const float* __restrict dy, float* __restrict db, int64_t rows, int64_t C) {
  fixed_block_column_sums(rows, C, block_rows_for(rows, C, kBiasBlockRows), kElemGrain, db,
                          [&](int64_t r0, int64_t r1, float* part) { add_block_rows(dy + r0 * C, r1 - r0, C, part); });
}

// Blocks of 64 rows (fixed by the shape), each walked in sub-blocks of about 16 KiB: the
// (vectorised, ISA-dispatched) act_backward writes the sub-block of dz, which is then added
// from L1 into the block's float partial. The sub-blocks only split the act_backward calls;
// the partial still adds the block's rows in row order. act_backward runs inside the
// share_work body, so it does not fork.
void act_bias_backward(Act a, const float* y, const float* dy, float* dz, float* db, int64_t rows,
                       int64_t C) {
  const int64_t sub = std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1));
  fixed_block_column_sums(rows, C, block_rows_for(rows, C, 64), kElemGrain, db,
                          [&](int64_t r0, int64_t r1, float* part) {
                            for (int64_t b0 = r0; b0 < r1; b0 += sub) {
                              const int64_t b1 = std::min(r1, b0 + sub), off = b0 * C;
                              act_backward(a, y + off, y + off, dy + off, dz + off, (b1 - b0) * C, 0.f);
                              add_block_rows(dz + off, b1 - b0, C, part);
                            }
                          });
}

}  // namespace pynn::nn
