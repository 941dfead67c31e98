// See attention_block.h. Portable frame: the arithmetic is pynn::sgemm (its own
// ISA dispatch) and nn::act_backward (dispatched per ISA).
#include "nn/attention_block.h"

#include <algorithm>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/block_sums.h"
#include "common/parallel.h"
#include "gemm/gemm.h"
#include "nn/activations.h"

namespace pynn::nn {

namespace {
// Rows per block of the activation pass and its column sums (fixed by the shape, so the sums
// are the same at any thread count; common/block_sums.h): 2048 rows give 32 blocks to deal
// to the threads.
constexpr int64_t kBlockRows = 64;

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
  fixed_block_column_sums(rows, k, block_rows_for(rows, k, kBlockRows), kElemGrain, db,
                          [&](int64_t r0, int64_t r1, float* part) {
                            const int64_t m = r1 - r0;
                            act_backward(act, y + r0 * k, y + r0 * k, gw + r0 * k, dz + r0 * k, m * k, 0.f);
                            add_block_rows(dz + r0 * k, m, k, part);  // while the block is in cache
                          });
}

void row_block_sums(int64_t rows, int64_t C, const float* x, float* out) {
  fixed_block_column_sums(rows, C, block_rows_for(rows, C, kBlockRows), kElemGrain, out,
                          [&](int64_t r0, int64_t r1, float* part) { add_block_rows(x + r0 * C, r1 - r0, C, part); });
}

}  // namespace pynn::nn
