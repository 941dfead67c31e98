#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "common/block_sums.h"
#include "pool/kernels.h"
#include "pool/pool.h"

namespace pynn {

namespace {

// One window cell over C channels: the channels whose maximum y sits here and
// whose window has not routed its gradient yet take dy (open 1 -> 0). Branch-free
// float masks and restrict pointers so the loop compiles to compares and blends.
// Assign: the cell belongs to this window only (windows tile the input), so d is
// written instead of accumulated and dx needs no zeroing pass first.
template <bool Assign>
inline void route_first_max(const float* __restrict in, const float* __restrict y, const float* __restrict dy,
                            float* __restrict open, float* __restrict d, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    // equal to y, or NaN where y is NaN: a NaN maximum routes to its first NaN (as PyTorch)
    const float take = static_cast<float>(in[c] == y[c] || (in[c] != in[c] && y[c] != y[c])) * open[c];
    if (Assign) d[c] = take * dy[c];
    else d[c] += take * dy[c];
    open[c] -= take;
  }
}
}  // namespace

void max_pool2d_forward(const WindowGeom& g, const float* x, float* y) {
#ifdef PYNN_X86_64
  if (use_avx2()) {
    shared_for_each(g.n * g.oh, g.ow * g.kh * g.kw * g.c, kPoolGrain,
                    [&](int64_t row) { max_pool_row_avx2(g, x, y, row); });
    return;
  }
#endif
  // A NaN cell wins (and stays): NaN propagates through max pooling as in NumPy/PyTorch.
  pool_forward_rows(
      g, x, y, -std::numeric_limits<float>::infinity(), [](float acc, float in) { return (in > acc || in != in) ? in : acc; },
      [](float*, int64_t, int64_t) {});
}

void max_pool2d_backward(const WindowGeom& g, const float* x, const float* y, const float* dy, float* dx) {
  const int64_t C = g.c, plane = g.h * g.w * C;
#ifdef PYNN_X86_64
  if (use_avx2()) {
    pool_backward_rows(g, dx, true, [&](int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
      max_pool_bwd_rows_avx2(g, x, y, dy, dx, n, oh_lo, oh_hi, assign);
    });
    return;
  }
#endif
  pool_backward_rows(g, dx, true, [&](int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
    std::vector<float> open(C);  // 1 while the channel's winner is not found yet (float: blends vectorise)
    const float* xn = x + n * plane;
    float* dxn = dx + n * plane;
    for (int64_t oh = oh_lo; oh < oh_hi; ++oh)
      for_each_window(g, oh, [&](const PoolWindow& pw) {
        const int64_t o = ((n * g.oh + oh) * g.ow + pw.ow) * C;
        const float* yo = y + o;
        const float* go = dy + o;
        std::fill(open.begin(), open.end(), 1.f);
        pw.for_each_cell(g, [&](int64_t off) {
          if (assign) route_first_max<true>(xn + off, yo, go, open.data(), dxn + off, C);
          else route_first_max<false>(xn + off, yo, go, open.data(), dxn + off, C);
        });
      });
  });
}

void max_pool2d_forward_argmax(const WindowGeom& g, const float* x, float* y, uint8_t* idx) {
  const int64_t C = g.c;
#ifdef PYNN_X86_64
  if (use_avx2()) {
    shared_for_each(g.n * g.oh, g.ow * g.kh * g.kw * C, kPoolGrain,
                    [&](int64_t row) { max_pool_argmax_row_avx2(g, x, y, idx, row); });
    return;
  }
#endif
  shared_for_each(g.n * g.oh, g.ow * g.kh * g.kw * C, kPoolGrain, [&](int64_t row) {
    std::vector<float> m(C);
    std::vector<int32_t> id(C);  // int32 next to the float maxima: the blends vectorise
    const int64_t n = row / g.oh, oh = row % g.oh, top = oh * g.sh - g.pt;
    const float* xn = x + n * g.h * g.w * C;
    int64_t h0, h1;
    clip(top, g.kh, g.h, &h0, &h1);
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const int64_t left = ow * g.sw - g.pl;
      int64_t w0, w1;
      clip(left, g.kw, g.w, &w0, &w1);
      // A window of -inf keeps its first real cell (the cell the recomparing backward picks).
      const int32_t first = static_cast<int32_t>((h0 - top) * g.kw + (w0 - left));
      float* __restrict mv = m.data();
      int32_t* __restrict iv = id.data();
      for (int64_t c = 0; c < C; ++c) mv[c] = -std::numeric_limits<float>::infinity(), iv[c] = first;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float* __restrict in = xn + (ih * g.w + iw) * C;
          const int32_t t = static_cast<int32_t>((ih - top) * g.kw + (iw - left));
          for (int64_t c = 0; c < C; ++c) {
            // larger, or the first NaN (a NaN maximum stays and routes to its first NaN, as PyTorch)
            const bool take = (in[c] > mv[c]) | ((in[c] != in[c]) & (mv[c] == mv[c]));
            mv[c] = take ? in[c] : mv[c];
            iv[c] = take ? t : iv[c];
          }
        }
      float* out = y + (row * g.ow + ow) * C;
      uint8_t* io = idx + (row * g.ow + ow) * C;
      for (int64_t c = 0; c < C; ++c) out[c] = mv[c], io[c] = static_cast<uint8_t>(iv[c]);
    }
  });
}

void max_pool2d_backward_argmax(const WindowGeom& g, const uint8_t* idx, const float* dy, const float* relu_y,
                                float* dx) {
  const int64_t C = g.c, plane = g.h * g.w * C;
  // Only the real cells of each window are visited, so an index can never address padding.
#ifdef PYNN_X86_64
  if (use_avx2()) {
    pool_backward_rows(g, dx, true, [&](int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
      max_pool_argmax_bwd_rows_avx2(g, idx, dy, relu_y, dx, n, oh_lo, oh_hi, assign);
    });
    return;
  }
#endif
  pool_backward_rows(g, dx, true, [&](int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
    std::vector<float> gm(relu_y ? C : 0);
    float* dxn = dx + n * plane;
    for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
      const int64_t top = oh * g.sh - g.pt;
      int64_t h0, h1;
      clip(top, g.kh, g.h, &h0, &h1);
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        const int64_t o = ((n * g.oh + oh) * g.ow + ow) * C, left = ow * g.sw - g.pl;
        const uint8_t* __restrict io = idx + o;
        const float* __restrict go = dy + o;
        if (relu_y) {  // the ReLU's mask at the winning cell: its value is this window's maximum
          const float* __restrict yo = relu_y + o;
          for (int64_t c = 0; c < C; ++c) gm[c] = yo[c] > 0.f ? go[c] : 0.f;
          go = gm.data();
        }
        int64_t w0, w1;
        clip(left, g.kw, g.w, &w0, &w1);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const int32_t t = static_cast<int32_t>((ih - top) * g.kw + (iw - left));
            float* __restrict d = dxn + (ih * g.w + iw) * C;
            if (assign) {
              for (int64_t c = 0; c < C; ++c) d[c] = static_cast<int32_t>(io[c]) == t ? go[c] : 0.f;
            } else {
              for (int64_t c = 0; c < C; ++c) d[c] += static_cast<int32_t>(io[c]) == t ? go[c] : 0.f;
            }
          }
      }
    }
  });
}

// Blocks of 256 rows fixed by the shape (common/block_sums.h): db is the same bits at any
// thread count.
void max_pool2d_relu_bias_grad(int64_t rows, int64_t C, const float* dy, const float* relu_y, float* db) {
  fixed_block_column_sums(rows, C, block_rows_for(rows, C, 256), kPoolGrain, db, [&](int64_t r0, int64_t r1, float* s_) {
    float* __restrict s = s_;
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict g = dy + r * C;
      const float* __restrict y = relu_y + r * C;
      // Both loads unconditional: a load under the condition kept GCC from vectorising (0.49 ms
      // instead of ~0.07 for the 64x13x13x32 gradient of the CNN's first pooling).
      for (int64_t c = 0; c < C; ++c) {
        const float v = g[c], m = y[c];
        s[c] += m > 0.f ? v : 0.f;
      }
    }
  });
}

void global_max_pool2d_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  shared_for_each(n, hw * c, kPoolGrain, [&](int64_t i) {
    const float* xi = x + i * hw * c;
    float* out = y + i * c;
    for (int64_t k = 0; k < c; ++k) out[k] = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < hw; ++p) {
      const float* in = xi + p * c;
      for (int64_t k = 0; k < c; ++k) out[k] = (in[k] > out[k] || in[k] != in[k]) ? in[k] : out[k];  // NaN wins, as in NumPy
    }
  });
}

void global_max_pool2d_backward(int64_t n, int64_t hw, int64_t c, const float* x, const float* y, const float* dy,
                                float* dx) {
  shared_for_each(n, hw * c, kPoolGrain, [&](int64_t i) {
    std::vector<float> open(c, 1.f);
    const float* xi = x + i * hw * c;
    float* di = dx + i * hw * c;
    for (int64_t p = 0; p < hw; ++p)
      route_first_max<true>(xi + p * c, y + i * c, dy + i * c, open.data(), di + p * c, c);
  });
}

}  // namespace pynn
