// Per-row pooling kernels behind the portable drivers of max_pool.cpp / avg_pool.cpp:
// the drivers split rows over threads, these do the channel loop. The generic versions
// live in the drivers; *_avx2 ones (pool_avx2.cpp) take 8 channels per instruction
// and are reached only after CPUID dispatch.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

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

// A window of output row oh: its real input rows [h0, h1) and columns [w0, w1).
struct PoolWindow {
  int64_t ow, h0, h1, w0, w1;
  int64_t cells() const { return (h1 - h0) * (w1 - w0); }
  // cell(off) for each real cell in row-major window order, off = (ih·W + iw)·C floats
  // into the image: the order every pooling result (first maximum, sums) is defined by.
  template <class Cell>
  void for_each_cell(const WindowGeom& g, Cell&& cell) const {
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) cell((ih * g.w + iw) * g.c);
  }
};

// The one window walk of every windowed pooling loop, generic and AVX2 alike (their bodies
// differ only in the channel loop): window(PoolWindow) for each output column of row oh.
template <class Window>
inline void for_each_window(const WindowGeom& g, int64_t oh, Window&& window) {
  PoolWindow pw{0, 0, 0, 0, 0};
  clip(oh * g.sh - g.pt, g.kh, g.h, &pw.h0, &pw.h1);
  for (pw.ow = 0; pw.ow < g.ow; ++pw.ow) {
    clip(pw.ow * g.sw - g.pl, g.kw, g.w, &pw.w0, &pw.w1);
    window(static_cast<const PoolWindow&>(pw));
  }
}

// The portable windowed forward, row by row of the output: each output cell is
// init, combine(acc, in) over the window's real cells (channel loop inside, so it
// vectorises), then finish(out, C, cells).
template <class Combine, class Finish>
void pool_forward_rows(const WindowGeom& g, const float* x, float* y, float init, Combine combine, Finish finish) {
  const int64_t C = g.c;
  shared_for_each(g.n * g.oh, g.ow * g.kh * g.kw * C, kPoolGrain, [&](int64_t row) {
    const float* xn = x + row / g.oh * g.h * g.w * C;
    for_each_window(g, row % g.oh, [&](const PoolWindow& pw) {
      float* out = y + (row * g.ow + pw.ow) * C;
      for (int64_t c = 0; c < C; ++c) out[c] = init;
      pw.for_each_cell(g, [&](int64_t off) {
        const float* in = xn + off;
        for (int64_t c = 0; c < C; ++c) out[c] = combine(out[c], in[c]);
      });
      finish(out, C, pw.cells());
    });
  });
}

// avg_pool2d_backward's rows of pool_backward_rows (below): each window's dy / cells to
// every real cell of it, windows in row-major order. spread(pw, dxn, go, inv, assign) is the
// per-ISA body: for each cell of pw (pw.for_each_cell), d[c] = go[c]·inv (assign) or
// d[c] += go[c]·inv. (The product is rounded before the add in both: the AVX2 body forms it
// once per window, so g++ cannot contract it into an FMA there.)
template <class Spread>
void avg_pool_bwd_rows(const WindowGeom& g, const float* dy, float* dx, int64_t n, int64_t oh_lo, int64_t oh_hi,
                       bool assign, Spread&& spread) {
  const int64_t C = g.c;
  float* dxn = dx + n * g.h * g.w * C;
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh)
    for_each_window(g, oh, [&](const PoolWindow& pw) {
      const float* go = dy + ((n * g.oh + oh) * g.ow + pw.ow) * C;
      spread(pw, dxn, go, 1.f / static_cast<float>(pw.cells()), assign);
    });
}

// True when the windows tile the input exactly (2x2 / stride 2 on an even size, ...).
static inline bool windows_tile(const WindowGeom& g) {
  return g.sh == g.kh && g.sw == g.kw && g.pt == 0 && g.pl == 0 && g.oh * g.kh == g.h && g.ow * g.kw == g.w;
}

// Windows side by side (stride = window) hold every input cell at most once: a backward
// may assign its cells instead of adding into zeroed dx. The cells no window covers
// (the rows and columns past the last window of a valid pooling of an odd size) are
// zeroed here. With padding the windows start at −pt <= 0 (TF's same padding is less than
// one window then), so the covered block is rows [0, r1) × columns [0, c1), clamped to the
// input (an empty input has OH = 0 and a padding that would make r1 negative).
static inline void zero_uncovered(const WindowGeom& g, float* dx) {
  const int64_t C = g.c;
  const int64_t r1 = std::clamp<int64_t>(g.oh * g.kh - g.pt, 0, g.h), c1 = std::clamp<int64_t>(g.ow * g.kw - g.pl, 0, g.w);
  for (int64_t n = 0; n < g.n; ++n) {
    float* dn = dx + n * g.h * g.w * C;
    if (c1 < g.w)
      for (int64_t r = 0; r < r1; ++r) std::memset(dn + (r * g.w + c1) * C, 0, sizeof(float) * (g.w - c1) * C);
    if (r1 < g.h) std::memset(dn + r1 * g.w * C, 0, sizeof(float) * (g.h - r1) * g.w * C);
  }
}

// The one work division of every windowed pooling backward (max by recomparing, max from
// the argmax, average; generic and AVX2 row functions alike). rows(n, oh_lo, oh_hi, assign)
// routes dy of output rows [oh_lo, oh_hi) of image n into dx. Windows of neighbouring
// output rows overlap when sh < kh: then one item is a whole image (no two threads write
// the same dx cell), else one output row. assign (windows side by side, see
// zero_uncovered, and the caller allows it): each covered dx cell is written by exactly
// one window, nothing is zeroed first; otherwise dx is zeroed here and the rows add into
// it. Which thread runs an item never changes a result: every dx cell is summed by one
// thread in window order.
template <class Rows>
void pool_backward_rows(const WindowGeom& g, float* dx, bool may_assign, Rows&& rows) {
  const bool rows_disjoint = g.sh >= g.kh;
  const int64_t items = rows_disjoint ? g.n * g.oh : g.n;
  const bool assign = may_assign && g.sh == g.kh && g.sw == g.kw;
  if (!assign) std::memset(dx, 0, sizeof(float) * static_cast<size_t>(g.n * g.h * g.w * g.c));
  else if (!windows_tile(g)) zero_uncovered(g, dx);
  shared_for_each(items, (rows_disjoint ? 1 : g.oh) * g.ow * g.kh * g.kw * g.c, kPoolGrain, [&](int64_t item) {
    const int64_t n = rows_disjoint ? item / g.oh : item;
    const int64_t oh_lo = rows_disjoint ? item % g.oh : 0, oh_hi = rows_disjoint ? oh_lo + 1 : g.oh;
    rows(n, oh_lo, oh_hi, assign);
  });
}

#ifdef PYNN_X86_64
// y row `row` (= n·OH + oh) of max_pool2d: max over each window's real cells.
void max_pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row);
// y row `row` of avg_pool2d: the mean of each window's real cells (added in window order,
// then times 1/cells, as the generic loop: the same bits).
void avg_pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row);
// Row functions of pool_backward_rows (above) for n, [oh_lo, oh_hi), assign:
// max_pool2d_backward (each window's dy to its first cell equal to y),
void max_pool_bwd_rows_avx2(const WindowGeom& g, const float* x, const float* y, const float* dy, float* dx,
                            int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign);
// max_pool2d_backward_argmax (dy to the cell the forward's argmax names; where relu_y is
// given, only windows whose maximum relu_y is > 0 pass dy on: see pool.h),
void max_pool_argmax_bwd_rows_avx2(const WindowGeom& g, const uint8_t* idx, const float* dy, const float* relu_y,
                                   float* dx, int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign);
// and avg_pool2d_backward (avg_pool_bwd_rows above with 8-lane channel loops).
void avg_pool_bwd_rows_avx2(const WindowGeom& g, const float* dy, float* dx, int64_t n, int64_t oh_lo, int64_t oh_hi,
                            bool assign);
// max_pool2d_forward_argmax (pool.h) for one output row.
void max_pool_argmax_row_avx2(const WindowGeom& g, const float* x, float* y, uint8_t* idx, int64_t row);
// out[0..c) = mean of the hw rows of c floats at x (global average pooling of one image).
void global_avg_image_avx2(int64_t hw, int64_t c, const float* x, float* out);
// dx[p·c + k] = dy[k] · inv for p < hw.
void global_avg_bwd_image_avx2(int64_t hw, int64_t c, const float* dy, float inv, float* dx);
#endif

}  // namespace pynn
