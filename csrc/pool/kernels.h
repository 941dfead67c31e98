// Per-row pooling kernels behind the portable drivers of max_pool.cpp / avg_pool.cpp:
// the drivers split rows over threads, these do the channel loop. The generic versions
// live in the drivers; *_avx2 ones (pool_avx2.cpp) take 8 channels per instruction
// and are reached only after CPUID dispatch.
#pragma once
#include <cstdint>

#include "conv/geometry.h"

namespace pynn {

#ifdef PYNN_X86_64
// y row `row` (= n·OH + oh) of max_pool2d: max over each window's real cells.
void max_pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row);
// dx for output rows [oh_lo, oh_hi) of image n: each window's dy to its first cell equal
// to y. assign: windows tile the input, so cells are written (dx not zeroed first);
// otherwise accumulated.
void max_pool_bwd_rows_avx2(const WindowGeom& g, const float* x, const float* y, const float* dy, float* dx,
                            int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign);
// out[0..c) = mean of the hw rows of c floats at x (global average pooling of one image).
void global_avg_image_avx2(int64_t hw, int64_t c, const float* x, float* out);
// dx[p·c + k] = dy[k] · inv for p < hw.
void global_avg_bwd_image_avx2(int64_t hw, int64_t c, const float* dy, float inv, float* dx);
#endif

}  // namespace pynn
