// See attention_block.h. Portable frame: the arithmetic is pynn::sgemm (its own
// ISA dispatch) and nn::act_backward (dispatched per ISA).
#include "nn/attention_block.h"

#include <algorithm>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/parallel.h"
#include "gemm/gemm.h"
#include "nn/activations.h"

namespace pynn::nn {

namespace {
// Rows per block of the activation pass and its column sums (fixed by the shape, so the sums
// are the same at any thread count): 2048 rows give 32 blocks to deal to the threads.
constexpr int64_t kBlockRows = 64;

// s[c] = sum of the m rows of x (row stride C), one block's partial column sums.
void sum_block_rows(const float* x, int64_t m, int64_t C, float* __restrict s) {
  std::fill(s, s + C, 0.f);
  for (int64_t r = 0; r < m; ++r) {
    const float* __restrict xr = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) s[c] += xr[c];
  }
}

// out[c] = the nblk blocks' partial sums folded in block order (in double), so the result does
// not depend on which thread summed which block.
void fold_block_sums(const std::vector<float>& part, int64_t nblk, int64_t C, float* out) {
  for (int64_t c = 0; c < C; ++c) {
    double acc = 0.0;
    for (int64_t blk = 0; blk < nblk; ++blk) acc += part[static_cast<size_t>(blk * C + c)];
    out[c] = static_cast<float>(acc);
  }
}
}  // namespace

void matmul_act_backward(int64_t rows, int64_t n, int64_t k, const float* g, const float* w, int64_t rs_w,
                         const float* y, Act act, float* dz, float* db) {
  if (k <= 0) return;
  if (rows <= 0) {
    std::fill(db, db + k, 0.f);
    return;
  }
  // The product g . W^T first, as one GEMM over all rows (B = W^T read through its strides):
  // split into per-block products it ran ~15% slower (n = 512 is past the width where A is
  // read unpacked against an L2-resident B), more than the second pass below costs.
  static thread_local Scratch product;
  float* const gw = product.get(static_cast<size_t>(rows * k));
  sgemm(rows, k, n, 1.f, g, n, 1, w, 1, rs_w, 0.f, gw, k, 1, nullptr, Act::Linear, 0.f);
  const int64_t nblk = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<float> part(static_cast<size_t>(nblk * k));
  parallel_for(nblk, kBlockRows * k, kElemGrain, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlockRows, m = std::min(kBlockRows, rows - r0);
      float* __restrict d = dz + r0 * k;
      act_backward(act, y + r0 * k, y + r0 * k, gw + r0 * k, d, m * k, 0.f);
      sum_block_rows(d, m, k, part.data() + blk * k);   // while the block is in cache
    }
  });
  fold_block_sums(part, nblk, k, db);
}

void row_block_sums(int64_t rows, int64_t C, const float* x, float* out) {
  if (C <= 0) return;
  const int64_t nblk = rows > 0 ? (rows + kBlockRows - 1) / kBlockRows : 0;
  std::vector<float> part(static_cast<size_t>(nblk * C));
  parallel_for(nblk, kBlockRows * C, kElemGrain, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlockRows;
      sum_block_rows(x + r0 * C, std::min(kBlockRows, rows - r0), C, part.data() + blk * C);
    }
  });
  fold_block_sums(part, nblk, C, out);
}

}  // namespace pynn::nn
