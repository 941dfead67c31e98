// Public C++ API of pynn's single-precision GEMM. Other kernels (convolution,
// LSTM, attention) call pynn::sgemm directly; the Python binding is one caller.
#pragma once
#include <cstdint>

#include "common/activation.h"

namespace pynn {

// C = act(alpha * A.B + beta * C + bias)
//   A is m x k, B is k x n, C is m x n; element (i, j) of X lives at
//   x[i * rs_x + j * cs_x]. Strides are in elements and may be anything,
//   including transposed (rs = 1), sliced or negative layouts.
//   bias: n floats (added to every row) or nullptr.
//   beta == 0 means C is not read (it may hold NaN); alpha == 0 means A and B
//   are not read. Any m, n, k >= 0; k == 0 gives act(beta * C + bias).
//   act / act_alpha: the activation of common/activation.h (act_alpha is the
//   leaky_relu slope or the elu scale), applied exactly as act_forward does.
// Threads: up to num_threads(); one thread inside an existing OpenMP region, so
// a caller that parallelises over a batch gets no oversubscription.
// C must not overlap A, B or bias.
void sgemm(int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t rs_a, int64_t cs_a,
           const float* b, int64_t rs_b, int64_t cs_b,
           float beta, float* c, int64_t rs_c, int64_t cs_c,
           const float* bias, Act act, float act_alpha);

// Batched form: for t in [0, batch): C_t = act(alpha * A_t.B_t + beta * C_t + bias)
// with A_t = a + t * bs_a etc. A batch stride of 0 broadcasts that operand.
// Small matrices are spread over the batch (one thread per matrix); large ones
// run one after another, each using all threads.
void sgemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t bs_a, int64_t rs_a, int64_t cs_a,
                   const float* b, int64_t bs_b, int64_t rs_b, int64_t cs_b,
                   float beta, float* c, int64_t bs_c, int64_t rs_c, int64_t cs_c,
                   const float* bias, Act act, float act_alpha);

// Split-K driver (split_k.cpp), for the weight gradients of sequence layers:
// c (m x n, row stride rs_c) = a^T b, a: (k x m) row stride rs_a, b: (k x n) row
// stride rs_b, both with unit column stride; k is the long side (N*T rows).
// Each thread computes the product over its own slice of k with a one-thread
// sgemm into a private buffer, then the partial products are summed: the
// shared-B split inside sgemm stalls on its barriers for these k >> m, n
// shapes (measured 40-47 GFLOPS on 2 threads for 256x1024x6400, versus
// 75-83 GFLOPS per thread for each half on its own).
void sgemm_split_k(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, const float* b, int64_t rs_b,
                   float* c, int64_t rs_c);

}  // namespace pynn
