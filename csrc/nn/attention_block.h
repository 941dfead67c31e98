// Kernels of the Transformer encoder block's training step that sit between its GEMMs
// (the block's op: src/pynn/functional/attention.py, transformer_encoder_post_norm).
#pragma once
#include <cstdint>

#include "common/activation.h"

namespace pynn::nn {

// The input-side gradient of an activated Dense layer seen from the layer after it:
//   dz = act'(y) * (g . W^T),   db = sum over the rows of dz
// g (rows x n) the next layer's output gradient, W (k x n) its kernel (row stride rs_w),
// y (rows x k) this layer's activated output (act one whose derivative its output gives),
// dz (rows x k), db (k). The GEMM (the same call as g @ w.T), then one pass over
// fixed row blocks for act' and the column sums: the blocks' float partials are added
// in block order in double, so db is the same bits at any thread count (the
// act_bias_backward it replaces split its sums by thread).
void matmul_act_backward(int64_t rows, int64_t n, int64_t k, const float* g, const float* w, int64_t rs_w,
                         const float* y, Act act, float* dz, float* db);

// out[c] = sum over the rows of x (rows x C, contiguous): float partials per block of 64
// rows, added in block order in double -- the same bits at any thread count (the
// packed Q|K|V projection's bias gradient).
void row_block_sums(int64_t rows, int64_t C, const float* x, float* out);

}  // namespace pynn::nn
