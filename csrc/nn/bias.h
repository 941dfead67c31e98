// Bias add and its gradient for x of shape (rows, C), C the last axis.
#pragma once
#include <cstdint>

namespace pynn::nn {

// y[r, c] = x[r, c] + b[c].
void bias_add(const float* x, const float* b, float* y, int64_t rows, int64_t C);
// db[c] = sum_r dy[r, c]; accumulated in double (rows can be large).
void bias_grad(const float* dy, float* db, int64_t rows, int64_t C);

}  // namespace pynn::nn
