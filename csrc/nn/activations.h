// Elementwise activations over contiguous float32 buffers, forward and backward.
// The per-element math is the list in common/activation.h, shared with every
// fused epilogue.
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "common/dispatch.h"

namespace pynn::nn {

// y[i] = act(x[i]) for i < n. x and y must not overlap (the loops read x through restrict
// pointers, and the AVX2 GELU forward reads x again after a first pass has written y).
void act_forward(Act a, const float* x, float* y, int64_t n, float alpha);
// dx[i] = act'(x[i]) * dy[i]; y is the forward output (from_output activations read only y).
void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n, float alpha);

PYNN_ISA_DECLARE(
    void act_forward(Act a, const float* x, float* y, int64_t n, float alpha);
    void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n, float alpha);)

}  // namespace pynn::nn
