// AVX2 channel loops of the pooling kernels (this file alone is built with -mavx2
// -mfma). NHWC puts the C channels of a cell next to each other, so every window
// operation is a run of full 8-lane vectors plus one masked tail; maskload and
// maskstore never touch lanes past C. Results equal the generic loops bit for bit
// (same max/compare semantics, same summation order per channel).
#include <immintrin.h>

#include "common/simd_avx2.h"

#include <algorithm>

#include "pool/kernels.h"

namespace pynn {

using simd::nan_max;  // max propagating NaN as NumPy and PyTorch do (common/simd_avx2.h)

// The cell that produced y: equal to it, or NaN where y is NaN (the gradient of a NaN
// maximum goes to the first NaN, as PyTorch's argmax routing does).
static inline __m256 is_max(__m256 in, __m256 yv) {
  const __m256 both_nan = _mm256_and_ps(_mm256_cmp_ps(in, in, _CMP_UNORD_Q), _mm256_cmp_ps(yv, yv, _CMP_UNORD_Q));
  return _mm256_or_ps(_mm256_cmp_ps(in, yv, _CMP_EQ_OQ), both_nan);
}

// The 2x2 / stride-2 windows of an output row read two whole input rows side by side:
// straight-line code over whole vectors (the common CNN pooling).
static inline bool two_by_two_row(const WindowGeom& g, int64_t h0, int64_t h1) {
  return h1 - h0 == 2 && g.kw == 2 && g.sw == 2 && g.pl == 0 && g.ow * 2 <= g.w;
}

namespace {

using simd::tail_mask;

// Full vector, or the masked tail (full is false only on the last vector of a row).
inline __m256 load_part(const float* p, bool full, __m256i mt) {
  return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mt);
}
inline void store_part(float* p, __m256 v, bool full, __m256i mt) {
  if (full) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, mt, v);
}

// The window reductions of the two forwards: start, fold one cell in, finish with 1/cells.
// nan_max(in, m) = (in > m || in is NaN) ? in : m, exactly the generic loop.
struct MaxReduce {
  static __m256 start() { return _mm256_set1_ps(-__builtin_inff()); }
  static __m256 fold(__m256 in, __m256 m) { return nan_max(in, m); }
  static __m256 scale(int64_t) { return _mm256_setzero_ps(); }  // unused by finish
  static __m256 finish(__m256 m, __m256) { return m; }
};
// 0 + cells in window order, then times 1/cells: the generic loop's operations.
struct AvgReduce {
  static __m256 start() { return _mm256_setzero_ps(); }
  static __m256 fold(__m256 in, __m256 s) { return _mm256_add_ps(s, in); }
  static __m256 scale(int64_t cells) { return _mm256_set1_ps(1.f / static_cast<float>(cells)); }
  static __m256 finish(__m256 s, __m256 inv) { return _mm256_mul_ps(s, inv); }
};

// One output row (image n, output row oh) of a max or average pooling forward.
template <class Reduce>
void pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row) {
  const int64_t C = g.c, n = row / g.oh, oh = row % g.oh, c8 = C / 8 * 8;
  const float* xn = x + n * g.h * g.w * C;
  const __m256i mt = tail_mask(C - c8);
  int64_t h0, h1;
  clip(oh * g.sh - g.pt, g.kh, g.h, &h0, &h1);
  if (two_by_two_row(g, h0, h1)) {
    const float* r0 = xn + h0 * g.w * C;
    const float* r1 = r0 + g.w * C;
    const __m256 inv = Reduce::scale(4);
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const float *a = r0 + 2 * ow * C, *b = r1 + 2 * ow * C;
      float* out = y + (row * g.ow + ow) * C;
      for (int64_t c = 0; c < C; c += 8) {
        const bool full = c < c8;
        __m256 r = Reduce::fold(load_part(a + c, full, mt), Reduce::start());
        r = Reduce::fold(load_part(a + C + c, full, mt), r);
        r = Reduce::fold(load_part(b + c, full, mt), r);
        r = Reduce::fold(load_part(b + C + c, full, mt), r);
        store_part(out + c, Reduce::finish(r, inv), full, mt);
      }
    }
    return;
  }
  for_each_window(g, oh, [&](const PoolWindow& pw) {
    float* out = y + (row * g.ow + pw.ow) * C;
    const __m256 inv = Reduce::scale(pw.cells());
    for (int64_t c = 0; c < C; c += 8) {
      const bool full = c < c8;
      __m256 r = Reduce::start();
      pw.for_each_cell(g, [&](int64_t off) { r = Reduce::fold(load_part(xn + off + c, full, mt), r); });
      store_part(out + c, Reduce::finish(r, inv), full, mt);
    }
  });
}

}  // namespace

void max_pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row) {
  pool_row_avx2<MaxReduce>(g, x, y, row);
}

void avg_pool_row_avx2(const WindowGeom& g, const float* x, float* y, int64_t row) {
  pool_row_avx2<AvgReduce>(g, x, y, row);
}

void max_pool_bwd_rows_avx2(const WindowGeom& g, const float* x, const float* y, const float* dy, float* dx,
                            int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
  const int64_t C = g.c, plane = g.h * g.w * C, c8 = C / 8 * 8;
  const __m256i mt = tail_mask(C - c8);
  const float* xn = x + n * plane;
  float* dxn = dx + n * plane;
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    int64_t h0, h1;
    clip(oh * g.sh - g.pt, g.kh, g.h, &h0, &h1);
    if (assign && two_by_two_row(g, h0, h1) && c8 == C) {  // 2x2 side by side, whole vectors: straight-line code
      const int64_t r0 = h0 * g.w * C, r1 = r0 + g.w * C;
      const float* yo = y + (n * g.oh + oh) * g.ow * C;
      const float* go = dy + (n * g.oh + oh) * g.ow * C;
      for (int64_t ow = 0; ow < g.ow; ++ow, yo += C, go += C) {
        const int64_t a = r0 + 2 * ow * C, b = r1 + 2 * ow * C;
        for (int64_t c = 0; c < C; c += 8) {
          const __m256 yv = _mm256_loadu_ps(yo + c), gv = _mm256_loadu_ps(go + c);
          const __m256 e0 = is_max(_mm256_loadu_ps(xn + a + c), yv);
          __m256 e1 = is_max(_mm256_loadu_ps(xn + a + C + c), yv);
          __m256 e2 = is_max(_mm256_loadu_ps(xn + b + c), yv);
          __m256 e3 = is_max(_mm256_loadu_ps(xn + b + C + c), yv);
          // First match wins: each later cell only where no earlier one matched.
          e1 = _mm256_andnot_ps(e0, e1);
          const __m256 seen01 = _mm256_or_ps(e0, e1);
          e2 = _mm256_andnot_ps(seen01, e2);
          e3 = _mm256_andnot_ps(_mm256_or_ps(seen01, e2), e3);
          _mm256_storeu_ps(dxn + a + c, _mm256_and_ps(e0, gv));
          _mm256_storeu_ps(dxn + a + C + c, _mm256_and_ps(e1, gv));
          _mm256_storeu_ps(dxn + b + c, _mm256_and_ps(e2, gv));
          _mm256_storeu_ps(dxn + b + C + c, _mm256_and_ps(e3, gv));
        }
      }
      continue;
    }
    for_each_window(g, oh, [&](const PoolWindow& pw) {
      const int64_t o = ((n * g.oh + oh) * g.ow + pw.ow) * C;
      for (int64_t c = 0; c < C; c += 8) {
        const bool full = c < c8;
        const __m256 yv = load_part(y + o + c, full, mt);
        const __m256 gv = load_part(dy + o + c, full, mt);
        __m256 open = _mm256_castsi256_ps(_mm256_set1_epi32(-1));  // lanes whose winner is still unknown
        pw.for_each_cell(g, [&](int64_t cell) {
          const int64_t off = cell + c;
          const __m256 in = load_part(xn + off, full, mt);
          const __m256 take = _mm256_and_ps(is_max(in, yv), open);
          __m256 d = _mm256_and_ps(take, gv);
          open = _mm256_andnot_ps(take, open);
          if (!assign) d = _mm256_add_ps(d, load_part(dxn + off, full, mt));
          store_part(dxn + off, d, full, mt);
        });
      }
    });
  }
}

void avg_pool_bwd_rows_avx2(const WindowGeom& g, const float* dy, float* dx, int64_t n, int64_t oh_lo, int64_t oh_hi,
                            bool assign) {
  const int64_t C = g.c, c8 = C / 8 * 8;
  const __m256i mt = tail_mask(C - c8);
  avg_pool_bwd_rows(g, dy, dx, n, oh_lo, oh_hi, assign,
                    [&](const PoolWindow& pw, float* dxn, const float* go, float inv, bool set) {
                      const __m256 iv = _mm256_set1_ps(inv);
                      for (int64_t c = 0; c < C; c += 8) {
                        const bool full = c < c8;
                        const __m256 v = _mm256_mul_ps(load_part(go + c, full, mt), iv);
                        pw.for_each_cell(g, [&](int64_t off) {
                          float* d = dxn + off + c;
                          __m256 o = v;
                          if (!set) o = _mm256_add_ps(load_part(d, full, mt), v);
                          store_part(d, o, full, mt);
                        });
                      }
                    });
}

namespace {
// V vectors (8V channels) of column sums over hw rows: V independent add chains.
template <int V>
inline void column_sums(int64_t hw, int64_t c, const float* x, float inv, float* out) {
  __m256 acc[V];
  for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < hw; ++p, x += c)
    for (int v = 0; v < V; ++v) acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(x + 8 * v));
  const __m256 s = _mm256_set1_ps(inv);
  for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + 8 * v, _mm256_mul_ps(acc[v], s));
}
}  // namespace

void global_avg_image_avx2(int64_t hw, int64_t c, const float* x, float* out) {
  const float inv = hw ? 1.f / static_cast<float>(hw) : 0.f;
  int64_t k = 0;
  // 8 accumulators cover the 3-cycle add latency at 2 adds/cycle.
  for (; k + 64 <= c; k += 64) column_sums<8>(hw, c, x + k, inv, out + k);
  for (; k + 8 <= c; k += 8) column_sums<1>(hw, c, x + k, inv, out + k);
  if (k < c) {
    const __m256i mt = tail_mask(c - k);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t p = 0; p < hw; ++p) acc = _mm256_add_ps(acc, _mm256_maskload_ps(x + p * c + k, mt));
    _mm256_maskstore_ps(out + k, mt, _mm256_mul_ps(acc, _mm256_set1_ps(inv)));
  }
}

void global_avg_bwd_image_avx2(int64_t hw, int64_t c, const float* dy, float inv, float* dx) {
  const int64_t c8 = c / 8 * 8;
  const __m256i mt = tail_mask(c - c8);
  const __m256 s = _mm256_set1_ps(inv);
  for (int64_t p = 0; p < hw; ++p, dx += c) {
    int64_t k = 0;
    for (; k < c8; k += 8) _mm256_storeu_ps(dx + k, _mm256_mul_ps(_mm256_loadu_ps(dy + k), s));
    if (k < c) _mm256_maskstore_ps(dx + k, mt, _mm256_mul_ps(_mm256_maskload_ps(dy + k, mt), s));
  }
}


namespace {
// The argmax rule of one cell: "larger, or the first NaN" (a NaN maximum stays and routes
// to its first NaN, as PyTorch).
inline void argmax_step(__m256 v, __m256 tok, __m256& m, __m256& id) {
  const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ),
                                   _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(m, m, _CMP_ORD_Q)));
  m = _mm256_blendv_ps(m, v, take);
  id = _mm256_blendv_ps(id, tok, take);
}

// Stores 8 (or the tail's len) maxima and their int32 tokens packed to uint8.
inline void store_max_idx(float* out, uint8_t* io, __m256 m, __m256 id, int64_t len, __m256i mt) {
  const __m256i iv = _mm256_castps_si256(id);
  const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(iv), _mm256_extracti128_si256(iv, 1));
  const __m128i p8 = _mm_packus_epi16(p16, p16);
  if (len == 8) {
    _mm256_storeu_ps(out, m);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(io), p8);
  } else {
    _mm256_maskstore_ps(out, mt, m);
    alignas(16) uint8_t b[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(b), p8);
    for (int64_t q = 0; q < len; ++q) io[q] = b[q];
  }
}

inline __m256 token(int t) { return _mm256_castsi256_ps(_mm256_set1_epi32(t)); }
}  // namespace

// Argmax forward of output row `row`: per 8 channels the running maximum and the int32
// number of the cell holding it, blended under argmax_step; the numbers are packed to
// uint8 on store. Channels past the last full vector go through the same blends on a
// masked load (their lanes are never stored).
void max_pool_argmax_row_avx2(const WindowGeom& g, const float* x, float* y, uint8_t* idx, int64_t row) {
  const int64_t C = g.c, n = row / g.oh, oh = row % g.oh, top = oh * g.sh - g.pt;
  const float* xn = x + n * g.h * g.w * C;
  int64_t h0, h1;
  clip(top, g.kh, g.h, &h0, &h1);
  if (two_by_two_row(g, h0, h1)) {
    // Four cells per window, straight-line; the first cell starts the maximum (the
    // same as -inf and token 0 followed by argmax_step: a NaN or any value > -inf is
    // taken, and a -inf keeps token 0 either way).
    const int base = static_cast<int>((h0 - top) * g.kw);
    const __m256 t0 = token(base), t1 = token(base + 1), t2 = token(base + 2), t3 = token(base + 3);
    const float* r0 = xn + h0 * g.w * C;
    const float* r1 = r0 + g.w * C;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const float *a = r0 + 2 * ow * C, *b = r1 + 2 * ow * C;
      float* out = y + (row * g.ow + ow) * C;
      uint8_t* io = idx + (row * g.ow + ow) * C;
      for (int64_t c = 0; c < C; c += 8) {
        const int64_t len = std::min<int64_t>(8, C - c);
        const __m256i mt = tail_mask(len);
        auto ld = [&](const float* p) { return len == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mt); };
        __m256 m = ld(a + c), id = t0;
        argmax_step(ld(a + C + c), t1, m, id);
        argmax_step(ld(b + c), t2, m, id);
        argmax_step(ld(b + C + c), t3, m, id);
        store_max_idx(out + c, io + c, m, id, len, mt);
      }
    }
    return;
  }
  for (int64_t ow = 0; ow < g.ow; ++ow) {
    const int64_t left = ow * g.sw - g.pl;
    int64_t w0, w1;
    clip(left, g.kw, g.w, &w0, &w1);
    const int first = static_cast<int>((h0 - top) * g.kw + (w0 - left));
    float* out = y + (row * g.ow + ow) * C;
    uint8_t* io = idx + (row * g.ow + ow) * C;
    for (int64_t c = 0; c < C; c += 8) {
      const int64_t len = std::min<int64_t>(8, C - c);
      const __m256i mt = tail_mask(len);
      __m256 m = _mm256_set1_ps(-__builtin_inff());
      __m256 id = token(first);
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float* in = xn + (ih * g.w + iw) * C + c;
          argmax_step(len == 8 ? _mm256_loadu_ps(in) : _mm256_maskload_ps(in, mt),
                      token(static_cast<int>((ih - top) * g.kw + (iw - left))), m, id);
        }
      store_max_idx(out + c, io + c, m, id, len, mt);
    }
  }
}

namespace {
// The tokens of 8 channels (uint8 -> int32 lanes); the tail's missing lanes read as 0
// and are never stored.
inline __m256i load_tokens(const uint8_t* p, int64_t len) {
  if (len == 8) return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  alignas(16) uint8_t b[16] = {};
  for (int64_t q = 0; q < len; ++q) b[q] = p[q];
  return _mm256_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
}

// dy of 8 channels, zeroed where relu_y (when given) is not > 0 (NaN included).
inline __m256 masked_dy(const float* dy, const float* relu_y, int64_t len, __m256i mt) {
  __m256 gv = len == 8 ? _mm256_loadu_ps(dy) : _mm256_maskload_ps(dy, mt);
  if (relu_y) {
    const __m256 yv = len == 8 ? _mm256_loadu_ps(relu_y) : _mm256_maskload_ps(relu_y, mt);
    gv = _mm256_and_ps(gv, _mm256_cmp_ps(yv, _mm256_setzero_ps(), _CMP_GT_OQ));
  }
  return gv;
}
}  // namespace

// dx of output rows [oh_lo, oh_hi) of image n from the argmax: each real cell of a window
// takes dy where the window's number for the channel equals the cell's (assign: windows
// tile the input, dx is written; else added).
void max_pool_argmax_bwd_rows_avx2(const WindowGeom& g, const uint8_t* idx, const float* dy, const float* relu_y,
                                   float* dx, int64_t n, int64_t oh_lo, int64_t oh_hi, bool assign) {
  const int64_t C = g.c, plane = g.h * g.w * C;
  float* dxn = dx + n * plane;
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    const int64_t top = oh * g.sh - g.pt;
    int64_t h0, h1;
    clip(top, g.kh, g.h, &h0, &h1);
    const int64_t orow = (n * g.oh + oh) * g.ow * C;
    if (assign && two_by_two_row(g, h0, h1)) {  // 2x2 tiles: four stores per 8 channels
      const int base = static_cast<int>((h0 - top) * g.kw);
      const __m256i t0 = _mm256_set1_epi32(base), t1 = _mm256_set1_epi32(base + 1);
      const __m256i t2 = _mm256_set1_epi32(base + 2), t3 = _mm256_set1_epi32(base + 3);
      float* r0 = dxn + h0 * g.w * C;
      float* r1 = r0 + g.w * C;
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        const int64_t o = orow + ow * C;
        float *a = r0 + 2 * ow * C, *b = r1 + 2 * ow * C;
        for (int64_t c = 0; c < C; c += 8) {
          const int64_t len = std::min<int64_t>(8, C - c);
          const __m256i mt = tail_mask(len);
          const __m256i iv = load_tokens(idx + o + c, len);
          const __m256 gv = masked_dy(dy + o + c, relu_y ? relu_y + o + c : nullptr, len, mt);
          auto st = [&](float* p, __m256i t) {
            const __m256 v = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(iv, t)), gv);
            if (len == 8) _mm256_storeu_ps(p, v);
            else _mm256_maskstore_ps(p, mt, v);
          };
          st(a + c, t0);
          st(a + C + c, t1);
          st(b + c, t2);
          st(b + C + c, t3);
        }
      }
      continue;
    }
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const int64_t o = orow + ow * C, left = ow * g.sw - g.pl;
      int64_t w0, w1;
      clip(left, g.kw, g.w, &w0, &w1);
      for (int64_t c = 0; c < C; c += 8) {
        const int64_t len = std::min<int64_t>(8, C - c);
        const __m256i mt = tail_mask(len);
        const __m256i iv = load_tokens(idx + o + c, len);
        const __m256 gv = masked_dy(dy + o + c, relu_y ? relu_y + o + c : nullptr, len, mt);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const int t = static_cast<int>((ih - top) * g.kw + (iw - left));
            const __m256 hit = _mm256_castsi256_ps(_mm256_cmpeq_epi32(iv, _mm256_set1_epi32(t)));
            __m256 v = _mm256_and_ps(hit, gv);
            float* d = dxn + (ih * g.w + iw) * C + c;
            if (!assign) v = _mm256_add_ps(v, len == 8 ? _mm256_loadu_ps(d) : _mm256_maskload_ps(d, mt));
            if (len == 8) _mm256_storeu_ps(d, v);
            else _mm256_maskstore_ps(d, mt, v);
          }
      }
    }
  }
}

}  // namespace pynn
