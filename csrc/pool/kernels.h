// Per-row pooling kernels behind the portable drivers of max_pool.cpp / avg_pool.cpp:
// the drivers split rows over threads, these do the channel loop. The generic versions
// live in the drivers; *_avx2 ones (pool_avx2.cpp) take 8 channels per instruction
// and are reached only after CPUID dispatch.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "conv/geometry.h"

namespace pynn {

// Pooling is memory-bound: the AVX2 kernels run 2x2 max pooling of an 8 MB
// N32 32x32x64 tensor in ~0.16 ms on one core with x in L3, so a second thread
// pays only when both cores are free. Measured here: idle-core best cases gain,
// but while another process holds the other core the fork/join costs ~0.3 ms
// (0.17 -> 0.5 ms for that pool). The grain below splits from ~2 MB of input
// (512K window-cell visits per thread), favouring the idle machine the README
// table is taken on; raise it if pooling runs next to other busy processes.
// Threads go through shared_for_each (common/parallel.h): no waiting for late threads.
constexpr int64_t kPoolGrain = int64_t(1) << 19;

// The real rows (cols) of a window starting at `start`: [lo, hi) clipped to the input.
static inline void clip(int64_t start, int64_t k, int64_t size, int64_t* lo, int64_t* hi) {
  *lo = std::max<int64_t>(start, 0);
  *hi = std::min<int64_t>(start + k, size);
}

// The portable windowed forward, row by row of the output: each output cell is
// init, combine(acc, in) over the window's real cells (channel loop inside, so it
// vectorises), then finish(out, C, cells).
template <class Combine, class Finish>
void pool_forward_rows(const WindowGeom& g, const float* x, float* y, float init, Combine combine, Finish finish) {
  const int64_t C = g.c;
  shared_for_each(g.n * g.oh, g.ow * g.kh * g.kw * C, kPoolGrain, [&](int64_t row) {
    const int64_t n = row / g.oh, oh = row % g.oh;
    const float* xn = x + n * g.h * g.w * C;
    int64_t h0, h1;
    clip(oh * g.sh - g.pt, g.kh, g.h, &h0, &h1);
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      float* out = y + (row * g.ow + ow) * C;
      int64_t w0, w1;
      clip(ow * g.sw - g.pl, g.kw, g.w, &w0, &w1);
      for (int64_t c = 0; c < C; ++c) out[c] = init;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float* in = xn + (ih * g.w + iw) * C;
          for (int64_t c = 0; c < C; ++c) out[c] = combine(out[c], in[c]);
        }
      finish(out, C, (h1 - h0) * (w1 - w0));
    }
  });
}

#ifdef PYNN_X86_64
// y row `row` (= n·OH + oh) of max_pool2d: max over each window's real cells.
void max_pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row);
// dx for output rows [oh_lo, oh_hi) of image n: each window's dy to its first cell equal
// to y. assign: windows tile the input, so cells are written (dx not zeroed first);
// otherwise accumulated.
void max_pool_bwd_rows_avx2(const WindowGeom& g, const float* x, const float* y, const float* dy, float* dx,
                            int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign);
// max_pool2d_forward_argmax / max_pool2d_backward_argmax (pool.h) for one output row /
// rows [oh_lo, oh_hi) of image n.
void max_pool_argmax_row_avx2(const WindowGeom& g, const float* x, float* y, uint8_t* idx, int64_t row);
void max_pool_argmax_bwd_rows_avx2(const WindowGeom& g, const uint8_t* idx, const float* dy, float* dx, int64_t n,
                                   int64_t oh_lo, int64_t oh_hi, bool assign);
// out[0..c) = mean of the hw rows of c floats at x (global average pooling of one image).
void global_avg_image_avx2(int64_t hw, int64_t c, const float* x, float* out);
// dx[p·c + k] = dy[k] · inv for p < hw.
void global_avg_bwd_image_avx2(int64_t hw, int64_t c, const float* dy, float inv, float* dx);
#endif

}  // namespace pynn
