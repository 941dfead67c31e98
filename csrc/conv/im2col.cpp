#include "conv/im2col.h"

#include <cstring>

namespace pynn {

void im2col(const WindowGeom& g, const float* x, int64_t p0, int64_t rows, float* col) {
  const int64_t C = g.c, K = g.patch(), plane = g.oh * g.ow;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = p0 + r, n = p / plane, rem = p % plane, oh = rem / g.ow, ow = rem % g.ow;
    const float* xn = x + n * g.h * g.w * C;
    float* dst = col + r * K;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.h) {  // a whole padded kernel row
        std::memset(dst, 0, sizeof(float) * g.kw * C);
        dst += g.kw * C;
        continue;
      }
      const float* xrow = xn + ih * g.w * C;
      int64_t iw = ow * g.sw - g.pl;
      if (g.dw == 1 && iw >= 0 && iw + g.kw <= g.w) {  // the kw cells are contiguous in NHWC: one copy
        std::memcpy(dst, xrow + iw * C, sizeof(float) * g.kw * C);
        dst += g.kw * C;
        continue;
      }
      for (int64_t j = 0; j < g.kw; ++j, iw += g.dw, dst += C) {
        if (iw < 0 || iw >= g.w) std::memset(dst, 0, sizeof(float) * C);
        else std::memcpy(dst, xrow + iw * C, sizeof(float) * C);
      }
    }
  }
}

void col2im_add(const WindowGeom& g, const float* col, int64_t p0, int64_t rows, float* dx) {
  const int64_t C = g.c, K = g.patch(), plane = g.oh * g.ow;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = p0 + r, n = p / plane, rem = p % plane, oh = rem / g.ow, ow = rem % g.ow;
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
