#include <algorithm>
#include <cstring>

#include "pool/kernels.h"
#include "pool/pool.h"

namespace pynn {

void avg_pool2d_forward(const WindowGeom& g, const float* x, float* y) {
#ifdef PYNN_X86_64
  if (use_avx2()) {
    shared_for_each(g.n * g.oh, g.ow * g.kh * g.kw * g.c, kPoolGrain,
                    [&](int64_t row) { avg_pool_row_avx2(g, x, y, row); });
    return;
  }
#endif
  auto mean = [](float* out, int64_t C, int64_t cells) {
    const float inv = 1.f / static_cast<float>(cells);  // real cells only
    for (int64_t c = 0; c < C; ++c) out[c] *= inv;
  };
  pool_forward_rows(g, x, y, 0.f, [](float acc, float in) { return acc + in; }, mean);
}

void avg_pool2d_backward(const WindowGeom& g, const float* dy, float* dx) {
#ifdef PYNN_X86_64
  if (use_avx2()) {
    pool_backward_rows(g, dx, true, [&](int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
      avg_pool_bwd_rows_avx2(g, dy, dx, n, oh_lo, oh_hi, assign);
    });
    return;
  }
#endif
  const int64_t C = g.c;
  pool_backward_rows(g, dx, true, [&](int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
    avg_pool_bwd_rows(g, dy, dx, n, oh_lo, oh_hi, assign,
                      [&](const PoolWindow& pw, float* dxn, const float* go, float inv, bool set) {
                        pw.for_each_cell(g, [&](int64_t off) {
                          float* __restrict d = dxn + off;
                          if (set) {
                            for (int64_t c = 0; c < C; ++c) d[c] = go[c] * inv;
                          } else {
                            for (int64_t c = 0; c < C; ++c) d[c] += go[c] * inv;
                          }
                        });
                      });
  });
}

void global_avg_pool2d_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
#ifdef PYNN_X86_64
  if (use_avx2()) {
    shared_for_each(n, hw * c, kPoolGrain, [&](int64_t i) { global_avg_image_avx2(hw, c, x + i * hw * c, y + i * c); });
    return;
  }
#endif
  shared_for_each(n, hw * c, kPoolGrain, [&](int64_t i) {
    const float* xi = x + i * hw * c;
    float* out = y + i * c;
    for (int64_t k = 0; k < c; ++k) out[k] = 0.f;
    for (int64_t p = 0; p < hw; ++p) {
      const float* in = xi + p * c;
      for (int64_t k = 0; k < c; ++k) out[k] += in[k];
    }
    const float inv = hw ? 1.f / static_cast<float>(hw) : 0.f;
    for (int64_t k = 0; k < c; ++k) out[k] *= inv;
  });
}

void global_avg_pool2d_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  const float inv = hw ? 1.f / static_cast<float>(hw) : 0.f;
#ifdef PYNN_X86_64
  if (use_avx2()) {
    shared_for_each(n, hw * c, kPoolGrain, [&](int64_t i) { global_avg_bwd_image_avx2(hw, c, dy + i * c, inv, dx + i * hw * c); });
    return;
  }
#endif
  shared_for_each(n, hw * c, kPoolGrain, [&](int64_t i) {
    const float* gi = dy + i * c;
    float* di = dx + i * hw * c;
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t k = 0; k < c; ++k) di[p * c + k] = gi[k] * inv;
  });
}

}  // namespace pynn
