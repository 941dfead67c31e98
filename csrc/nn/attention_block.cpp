// See attention_block.h. Portable frame: the arithmetic is pynn::sgemm_packed (its own
// ISA dispatch) and nn::act_backward (dispatched per ISA).
#include "nn/attention_block.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "gemm/config.h"
#include "gemm/packed.h"
#include "nn/activations.h"

namespace pynn::nn {

namespace {
// Rows per block: 64 rows of a 512-wide layer (128 KiB of scratch) stay in L2 between the
// GEMM and the activation pass, and 2048 rows give 32 blocks to deal to the threads.
constexpr int64_t kBlockRows = 64;
}  // namespace

void matmul_act_backward(int64_t rows, int64_t n, int64_t k, const float* g, const float* w, int64_t rs_w,
                         const float* y, Act act, float* dz, float* db) {
  if (k <= 0) return;
  if (rows <= 0) {
    std::fill(db, db + k, 0.f);
    return;
  }
  // B = W^T (n x k): element (p, j) = W[j, p].
  const PackedB wt(n, k, w, 1, rs_w);
  const int64_t nblk = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<float> part(static_cast<size_t>(nblk * k));
  const int nt = threads_for(rows * n * k, gemm::kThreadGrain);
  share_work(nblk, 1, nt, [&](int64_t b0, int64_t b1) {
    std::vector<float> scratch(static_cast<size_t>(kBlockRows * k));
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kBlockRows, m = std::min(kBlockRows, rows - r0);
      // One thread here (inside share_work): the block's product, then act' into dz.
      sgemm_packed(m, 1.f, g + r0 * n, n, 1, wt, 0.f, scratch.data(), k, 1, nullptr, Act::Linear, 0.f);
      float* __restrict d = dz + r0 * k;
      act_backward(act, y + r0 * k, y + r0 * k, scratch.data(), d, m * k, 0.f);
      float* __restrict s = part.data() + blk * k;
      std::fill(s, s + k, 0.f);
      for (int64_t r = 0; r < m; ++r) {
        const float* __restrict dr = d + r * k;
#pragma omp simd
        for (int64_t c = 0; c < k; ++c) s[c] += dr[c];
      }
    }
  });
  for (int64_t c = 0; c < k; ++c) {
    double acc = 0.0;
    for (int64_t blk = 0; blk < nblk; ++blk) acc += part[static_cast<size_t>(blk * k + c)];
    db[c] = static_cast<float>(acc);
  }
}

void row_block_sums(int64_t rows, int64_t C, const float* x, float* out) {
  if (C <= 0) return;
  const int64_t nblk = rows > 0 ? (rows + kBlockRows - 1) / kBlockRows : 0;
  std::vector<float> part(static_cast<size_t>(nblk * C));
  parallel_for(nblk, kBlockRows * C, kElemGrain, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      float* __restrict s = part.data() + blk * C;
      std::fill(s, s + C, 0.f);
      const int64_t r1 = std::min(rows, (blk + 1) * kBlockRows);
      for (int64_t r = blk * kBlockRows; r < r1; ++r) {
        const float* __restrict xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) s[c] += xr[c];
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double acc = 0.0;
    for (int64_t blk = 0; blk < nblk; ++blk) acc += part[static_cast<size_t>(blk * C + c)];
    out[c] = static_cast<float>(acc);
  }
}

}  // namespace pynn::nn
