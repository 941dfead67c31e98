// Weight gradients of sequence layers: dW = Xᵀ·dY over all N·T rows.
#pragma once
#include <cstdint>

namespace pynn {

// c (m x n, row stride rs_c) = aᵀ b, a: (k x m) row stride rs_a, b: (k x n) row
// stride rs_b, both with unit column stride. k is the long side (N·T rows).
// Each thread computes the product over its own slice of k with a one-thread
// sgemm into a private buffer, then the partial products are summed: the
// shared-B split inside sgemm stalls on its barriers for these k >> m, n
// shapes (measured 40-47 GFLOPS on 2 threads for 256x1024x6400, versus
// 75-83 GFLOPS per thread for each half on its own).
void weight_grad(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, const float* b, int64_t rs_b,
                 float* c, int64_t rs_c);

}  // namespace pynn
