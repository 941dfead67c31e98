// Elementwise activations over contiguous float32 buffers, forward and backward.
// The per-element math is common/activation.h, shared with the GEMM epilogue.
#pragma once
#include <cstdint>

#include "common/activation.h"

namespace pynn::nn {

// y[i] = act(x[i]) for i < n.
void act_forward(Act a, const float* x, float* y, int64_t n, float alpha);
// dx[i] = act'(x[i]) * dy[i]; y is the forward output (sigmoid/tanh/elu use it).
void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                  float alpha);

}  // namespace pynn::nn
