// Column sums that are the same bits at any thread count (issue #17).
//
//   block_rows_for(rows, width, min_rows)   rows per block, from the shape only
//   fixed_block_column_sums(rows, width, block_rows, grain, out, block_fn)
//
// The rows are cut into fixed blocks of block_rows (chosen from the shape, never from the
// thread count); block_fn(r0, r1, partial) fills one block's `width` float partial sums
// (zeroed before the call) and may write other outputs for those rows (dz, dx). The blocks
// run on the share_work pool in any order, on any thread; their partials are then folded in
// block order in double and rounded to float once. So which thread summed which block, and
// how many threads there were, never changes a bit of the result.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/parallel.h"

namespace pynn {

// min_rows rows per block (a float partial over that many values: no precision concern
// before the double fold), more when the partials (blocks x width floats) would pass 2^20
// floats, so a very tall input does not allocate partials the size of itself.
inline int64_t block_rows_for(int64_t rows, int64_t width, int64_t min_rows) {
  const int64_t max_blocks = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(width, 1));
  return std::max<int64_t>(std::max<int64_t>(min_rows, 1), (rows + max_blocks - 1) / max_blocks);
}

// out[j] (j < width) = Σ over blocks, in block order and in double, of the partials that
// block_fn(r0, r1, partial) writes for rows [r0, r1) (blocks of block_rows rows; the last one
// shorter). rows <= 0 gives zeros (block_fn is not called). Threads are sized by
// threads_for(rows * width, grain); a block body runs inside a share_work body, so kernels it
// calls (act_backward) stay on its thread.
template <class BlockFn>
void fixed_block_column_sums(int64_t rows, int64_t width, int64_t block_rows, int64_t grain, float* out,
                             BlockFn&& block_fn) {
  if (width <= 0) return;
  if (rows <= 0) {
    std::fill(out, out + width, 0.f);
    return;
  }
  block_rows = std::max<int64_t>(block_rows, 1);
  const int64_t nblk = (rows + block_rows - 1) / block_rows;
  std::vector<float> part(static_cast<std::size_t>(nblk * width), 0.f);
  shared_for_each(nblk, block_rows * width, grain, [&](int64_t blk) {
    const int64_t r0 = blk * block_rows;
    block_fn(r0, std::min(rows, r0 + block_rows), part.data() + static_cast<std::size_t>(blk * width));
  });
  std::vector<double> acc(static_cast<std::size_t>(width), 0.0);
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const float* __restrict p = part.data() + static_cast<std::size_t>(blk * width);
    double* __restrict a = acc.data();
    for (int64_t j = 0; j < width; ++j) a[j] += p[j];
  }
  for (int64_t j = 0; j < width; ++j) out[j] = static_cast<float>(acc[static_cast<std::size_t>(j)]);
}

// partial[c] += the column sums of the m rows of x (row stride C): the plain block body.
inline void add_block_rows(const float* x, int64_t m, int64_t C, float* __restrict partial) {
  for (int64_t r = 0; r < m; ++r) {
    const float* __restrict xr = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) partial[c] += xr[c];
  }
}

}  // namespace pynn
