// NHWC pooling kernels. Windows come from WindowGeom (kh, kw, strides, TF
// padding; dilation 1). The inner loop of every kernel runs over the C
// contiguous channels, so it vectorises; outer loops are split over threads
// by image (and by output row where windows cannot overlap). All arrays
// C-contiguous float32, shapes validated by the binding.
#pragma once
#include <cstdint>

#include "conv/geometry.h"

namespace pynn {

// y = max over each window's real cells (padding never wins).
void max_pool2d_forward(const WindowGeom& g, const float* x, float* y);
// dx: each dy to the first cell (row-major window order) whose x equals y, as TensorFlow.
void max_pool2d_backward(const WindowGeom& g, const float* x, const float* y, const float* dy, float* dx);
// max_pool2d_forward that also keeps, per output element, which window cell won
// (i·kw + j in the unclipped window; first maximum in window order, first NaN if any):
// the backward then routes dy without reading x or y again. kh·kw <= 256 (uint8).
void max_pool2d_forward_argmax(const WindowGeom& g, const float* x, float* y, uint8_t* idx);
// dx from the forward's argmax: the same result as max_pool2d_backward. relu_y (nullable,
// the forward's y): the backward of relu followed by this pooling in one pass -- a window
// passes its dy on only where relu_y > 0. Its maximum is the value of the relu output at
// the winning cell, so this is exactly relu'·(pool backward) there, and every other cell
// gets 0 from both. (NaN maxima pass nothing, as relu's backward of a NaN output.)
void max_pool2d_backward_argmax(const WindowGeom& g, const uint8_t* idx, const float* dy, const float* relu_y,
                                float* dx);
// db[c] = Σ over the rows of dy (rows × C) of dy where relu_y > 0: the bias gradient of a
// conv + bias + ReLU feeding a max pooling, read off the pooling's output gradient dy and
// output relu_y (each window's masked dy lands in exactly one input cell, so this is the sum
// of the fused backward's dx, over 1/(kh·kw) of the cells). Fixed 256-row blocks summed in
// float, the blocks in order in double: the same bits at any thread count.
void max_pool2d_relu_bias_grad(int64_t rows, int64_t C, const float* dy, const float* relu_y, float* db);
// y = mean over each window's real cells (same padding: padded cells not counted).
// Backward: each cell adds dy/cells of every window holding it.
void avg_pool2d_forward(const WindowGeom& g, const float* x, float* y);
void avg_pool2d_backward(const WindowGeom& g, const float* dy, float* dx);

// (N, H·W, C) -> (N, C).
void global_avg_pool2d_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_avg_pool2d_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);
void global_max_pool2d_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_max_pool2d_backward(int64_t n, int64_t hw, int64_t c, const float* x, const float* y, const float* dy,
                                float* dx);

}  // namespace pynn
