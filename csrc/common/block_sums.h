// Column sums that are the same bits at any thread count (issue #17).
//
//   block_rows_for(rows, width, min_rows)   rows per block, from the shape only
//   fixed_block_column_sums(rows, width, block_rows, grain, out, block_fn)
//   fixed_block_reduce<P>(rows, width, block_rows, grain, block_fn, fold)   the same blocks,
//                                            folded by the caller (batch norm's mean/M2 merge)
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
#include <memory>
#include <vector>

#include "common/parallel.h"

namespace pynn {

// The helpers that are not templates on a lambda are `static`: this header is also compiled
// into *_avx2.cpp units, whose copies must not be merged with the generic ones (dispatch.h).

// min_rows rows per block (a float partial over that many values: no precision concern
// before the double fold), more when the partials (blocks x width floats) would pass 2^20
// floats, so a very tall input does not allocate partials the size of itself.
static inline int64_t block_rows_for(int64_t rows, int64_t width, int64_t min_rows) {
  const int64_t max_blocks = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(width, 1));
  return std::max<int64_t>(std::max<int64_t>(min_rows, 1), (rows + max_blocks - 1) / max_blocks);
}

// The blocking of every fixed-block reduction, its fold left to the caller: rows are cut into
// blocks of block_rows (the last one shorter); block_fn(r0, r1, partial) fills the `width`
// values of P for rows [r0, r1) (zeroed before the call), for the blocks in any order on any
// thread of the share_work pool (threads sized by threads_for(rows * width, grain)); then
// fold(r0, r1, partial) sees every block's partial once, in block order, on the calling
// thread. rows <= 0 or width <= 0: neither is called. A block body runs inside a share_work
// body, so kernels it calls (act_backward) stay on its thread.
template <class P, class BlockFn, class FoldFn>
void fixed_block_reduce(int64_t rows, int64_t width, int64_t block_rows, int64_t grain, BlockFn&& block_fn,
                        FoldFn&& fold) {
  if (width <= 0 || rows <= 0) return;
  block_rows = std::max<int64_t>(block_rows, 1);
  const int64_t nblk = (rows + block_rows - 1) / block_rows;
  // Uninitialised storage, each block zeroing its own partial on its thread: value-initialising
  // them all before the fork would be one more serial pass over the partials (768 KiB for batch
  // norm's (32768, 64) statistics), as long as the fold's.
  std::unique_ptr<P[]> part(new P[static_cast<std::size_t>(nblk * width)]);
  shared_for_each(nblk, block_rows * width, grain, [&](int64_t blk) {
    const int64_t r0 = blk * block_rows;
    P* p = part.get() + static_cast<std::size_t>(blk * width);
    std::fill(p, p + width, P{});
    block_fn(r0, std::min(rows, r0 + block_rows), p);
  });
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int64_t r0 = blk * block_rows;
    fold(r0, std::min(rows, r0 + block_rows), static_cast<const P*>(part.get() + static_cast<std::size_t>(blk * width)));
  }
}

// out[j] (j < width) = Σ over blocks, in block order and in double, of the float partials that
// block_fn(r0, r1, partial) writes for rows [r0, r1) (fixed_block_reduce's blocks), rounded
// once to Out (float, or double for a caller that scales the sums further). rows <= 0 gives
// zeros (block_fn is not called).
template <class Out, class BlockFn>
void fixed_block_column_sums(int64_t rows, int64_t width, int64_t block_rows, int64_t grain, Out* out,
                             BlockFn&& block_fn) {
  if (width <= 0) return;
  std::vector<double> acc(static_cast<std::size_t>(width), 0.0);
  fixed_block_reduce<float>(rows, width, block_rows, grain, block_fn, [&](int64_t, int64_t, const float* p) {
    double* __restrict a = acc.data();
    for (int64_t j = 0; j < width; ++j) a[j] += p[j];
  });
  for (int64_t j = 0; j < width; ++j) out[j] = static_cast<Out>(acc[static_cast<std::size_t>(j)]);
}

// partial[c] += the column sums of the m rows of x (row stride C): the plain block body.
static inline void add_block_rows(const float* x, int64_t m, int64_t C, float* __restrict partial) {
  for (int64_t r = 0; r < m; ++r) {
    const float* __restrict xr = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) partial[c] += xr[c];
  }
}

}  // namespace pynn
