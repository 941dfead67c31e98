// im2col / col2im over a block of output pixels (NHWC). Output pixel p in
// [0, N·OH·OW) maps to row p - p0 of the column matrix; a row is the patch in
// (kh, kw, c) order, the row order of the Keras kernel (kh, kw, C_in, C_out)
// viewed as a (kh·kw·C_in, C_out) matrix. Padded cells read as zero.
#pragma once
#include <cstdint>

#include "conv/geometry.h"

namespace pynn {

// col[(p - p0) * K + (i*kw + j)*C + c] = x[n, oh*sh - pt + i*dh, ow*sw - pl + j*dw, c] (0 outside).
void im2col(const WindowGeom& g, const float* x, int64_t p0, int64_t rows, float* col);

// The adjoint: dx[...] += col[...] for the same cells (padded cells dropped).
// Not thread-safe across overlapping windows: callers give each thread whole images.
void col2im_add(const WindowGeom& g, const float* col, int64_t p0, int64_t rows, float* dx);

}  // namespace pynn
