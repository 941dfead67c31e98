// Bias add and its gradient for x of shape (rows, C), C the last axis.
#pragma once
#include <cstdint>

#include "common/activation.h"

namespace pynn::nn {

// y[r, c] = x[r, c] + b[c].
void bias_add(const float* x, const float* b, float* y, int64_t rows, int64_t C);
// db[c] = sum_r dy[r, c]: float sums per fixed block of rows, folded in double in block
// order (rows can be large), the same bits at any thread count.
void bias_grad(const float* dy, float* db, int64_t rows, int64_t C);
// The backward of act(x·W + b) read off the output y = act(z) alone (an
// act_from_output activation): dz = act'(y)·dy and db = sum_r dz[r, :], in one pass
// over memory (each block of dz is summed while it is still in L1).
void act_bias_backward(Act a, const float* y, const float* dy, float* dz, float* db, int64_t rows,
                       int64_t C);

}  // namespace pynn::nn
