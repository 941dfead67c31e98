#include "conv/im2col.h"

#include <cstring>

namespace pynn {

namespace {
// Short runs (C = 1 or 3 in a first layer: 4-12 bytes) cost more as a libc call
// than as a loop; long runs go to memcpy/memset.
inline void copy_run(float* __restrict dst, const float* __restrict src, int64_t n) {
  if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, sizeof(float) * n);
  }
}
inline void zero_run(float* dst, int64_t n) {
  if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = 0.f;
  } else {
    std::memset(dst, 0, sizeof(float) * n);
  }
}
// Next output pixel in (n, oh, ow) order.
inline void step_pixel(const WindowGeom& g, int64_t& n, int64_t& oh, int64_t& ow) {
  if (++ow == g.ow) {
    ow = 0;
    if (++oh == g.oh) {
      oh = 0;
      ++n;
    }
  }
}
}  // namespace

void im2col(const WindowGeom& g, const float* x, int64_t p0, int64_t rows, float* col) {
  const int64_t C = g.c, K = g.patch(), plane = g.oh * g.ow;
  int64_t n = p0 / plane, oh = p0 % plane / g.ow, ow = p0 % g.ow;  // divide once, then step
  for (int64_t r = 0; r < rows; ++r, step_pixel(g, n, oh, ow)) {
    const float* xn = x + n * g.h * g.w * C;
    float* dst = col + r * K;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.h) {  // a whole padded kernel row
        zero_run(dst, g.kw * C);
        dst += g.kw * C;
        continue;
      }
      const float* xrow = xn + ih * g.w * C;
      int64_t iw = ow * g.sw - g.pl;
      if (g.dw == 1 && iw >= 0 && iw + g.kw <= g.w) {  // the kw cells are contiguous in NHWC: one copy
        copy_run(dst, xrow + iw * C, g.kw * C);
        dst += g.kw * C;
        continue;
      }
      for (int64_t j = 0; j < g.kw; ++j, iw += g.dw, dst += C) {
        if (iw < 0 || iw >= g.w) zero_run(dst, C);
        else copy_run(dst, xrow + iw * C, C);
      }
    }
  }
}

void col2im_add(const WindowGeom& g, const float* col, int64_t p0, int64_t rows, float* dx) {
  const int64_t C = g.c, K = g.patch(), plane = g.oh * g.ow;
  int64_t n = p0 / plane, oh = p0 % plane / g.ow, ow = p0 % g.ow;
  for (int64_t r = 0; r < rows; ++r, step_pixel(g, n, oh, ow)) {
    float* dn = dx + n * g.h * g.w * C;
    const float* src = col + r * K;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.h) {
        src += g.kw * C;
        continue;
      }
      float* drow = dn + ih * g.w * C;
      int64_t iw = ow * g.sw - g.pl;
      if (g.dw == 1 && iw >= 0 && iw + g.kw <= g.w) {  // contiguous run of kw·C floats
        float* d = drow + iw * C;
        const int64_t len = g.kw * C;
        for (int64_t t = 0; t < len; ++t) d[t] += src[t];
        src += len;
        continue;
      }
      for (int64_t j = 0; j < g.kw; ++j, iw += g.dw, src += C) {
        if (iw < 0 || iw >= g.w) continue;
        float* d = drow + iw * C;
        for (int64_t c = 0; c < C; ++c) d[c] += src[c];
      }
    }
  }
}

}  // namespace pynn
