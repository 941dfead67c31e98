// Drivers of the direct convolution kernels (conv/direct.h): packing of the kernel,
// tap lists, border handling and threading; the tiles are in conv/direct_avx2.cpp.
#include "conv/direct.h"
#include "common/aligned_buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common/parallel.h"
#include "conv/panels.h"
#include "gemm/config.h"

// Drivers of the AVX2 tiles (conv/direct_avx2.cpp): x86-64 builds only, like those tiles;
// conv_forward_path / conv_dw_path never choose them elsewhere.
#ifdef PYNN_X86_64
namespace pynn {

namespace {

using gemm::NR;
constexpr int64_t kTile = 6;  // pixels (forward) or kernel rows k (weight gradient) per register tile
// Tiles per small_c_tiles_6x16 call: their 6 origins each (32 × 48 B on the stack) are built first.
constexpr int64_t kBatchTiles = 32;
// Multiply-adds per extra thread (as the implicit GEMM: below this the fork costs more).
constexpr int64_t kDirectGrain = int64_t(1) << 22;
// dy rows of one block of the weight gradient: the block (output rows × OC floats) stays
// in L1/L2 while every 6-row slice of dW streams through it.
constexpr int64_t kDwBlockFloats = 16384;
// Pixels of one packed 16-channel dy panel (16 KiB: half of L1).
constexpr int64_t kDwPanelPixels = 256;


// Output columns [lo, hi) whose input column ow·sw − pl + j·dw lies inside [0, w).
void valid_cols(const WindowGeom& g, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t t = g.pl - j * g.dw;                 // need ow·sw >= t
  const int64_t u = g.w - 1 + g.pl - j * g.dw;       // need ow·sw <= u
  int64_t a = t <= 0 ? 0 : (t + g.sw - 1) / g.sw;
  int64_t b = u < 0 ? 0 : u / g.sw + 1;
  b = std::min(b, g.ow);
  a = std::min(a, b);
  *lo = a, *hi = b;
}

// Every window of the conv lies inside the image (a 'valid' conv, or padding no window reaches).
bool all_windows_inside(const WindowGeom& g) {
  int64_t ow_lo = 0, ow_hi = g.ow;
  for (int64_t j = 0; j < g.kw; ++j) {
    int64_t lo, hi;
    valid_cols(g, j, &lo, &hi);
    ow_lo = std::max(ow_lo, lo), ow_hi = std::min(ow_hi, hi);
  }
  const bool rows_inside = g.pt == 0 && (g.oh - 1) * g.sh + (g.kh - 1) * g.dh < g.h;
  return rows_inside && ow_lo == 0 && ow_hi == g.ow;
}

// Tap k's offset from a window origin (the input cell of the window's top-left tap, channel 0).
std::vector<int64_t> tap_offsets(const WindowGeom& g) {
  std::vector<int64_t> off(static_cast<size_t>(g.patch()));
  for (int64_t i = 0, k = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t c = 0; c < g.c; ++c, ++k) off[static_cast<size_t>(k)] = (i * g.dh * g.w + j * g.dw) * g.c + c;
  return off;
}

}  // namespace

bool small_c_pool_applies(const WindowGeom& g, const WindowGeom& pg, Act act) {
  return g.c <= kSmallChannels && g.patch() > 0 && g.oc > 0 && g.oc % NR == 0 &&
         (act == Act::Linear || act == Act::Relu) && all_windows_inside(g) && pg.kh == 2 && pg.kw == 2 &&
         pg.sh == 2 && pg.sw == 2 && pg.pt == 0 && pg.pl == 0 && 2 * pg.oh <= g.oh && 2 * pg.ow <= g.ow;
}

void conv2d_max_pool_small_c(const WindowGeom& g, const WindowGeom& pg, const float* x, const ConvPanels& pk,
                             float* y, Act act) {
  const int64_t rows = g.n * pg.oh, C = g.c, K = g.patch();
  if (rows == 0 || pg.ow == 0) return;
  const std::vector<int64_t> off = tap_offsets(g);
  // Each pooled pixel is 4 conv pixels' K·OC multiply-adds; pooled rows are claimed in runs.
  const int T = std::min<int64_t>(threads_for(rows * pg.ow * 4 * K * g.oc, kDirectGrain), rows);
  const int64_t dcol = g.sw * C, drow = g.sh * g.w * C;
  share_work(rows, std::max<int64_t>(1, rows / (16 * std::max(T, 1))), T, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t n = row / pg.oh, ph = row % pg.oh;
      // Conv pixel (2·ph, 0)'s window origin: conv row 2·ph reads input rows from 2·ph·sh.
      const float* a = x + (n * g.h + 2 * ph * g.sh) * g.w * C;
      conv::avx2::small_c_pool2_row(pg.ow, a, dcol, drow, K, off.data(), pk.w.p, pk.np, pk.b.p,
                                    y + row * pg.ow * g.oc, act == Act::Relu);
    }
  });
}

void conv2d_forward_small_c(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y,
                            Act act, float act_alpha, const ConvPanels* pre) {
  const int64_t K = g.patch(), OC = g.oc, C = g.c, rows = g.n * g.oh;
  if (rows == 0 || g.ow == 0 || OC == 0) return;
  if (!pre) {
    const ConvPanels pk(K, OC, w, bias);
    return conv2d_forward_small_c(g, x, w, bias, y, act, act_alpha, &pk);
  }
  const int64_t np = pre->np;
  const float* packed = pre->w.p;
  const float* bias_p = pre->b.p;
  // Columns whose whole window is inside the image: the intersection over the kernel columns.
  int64_t ow_lo = 0, ow_hi = g.ow;
  for (int64_t j = 0; j < g.kw; ++j) {
    int64_t lo, hi;
    valid_cols(g, j, &lo, &hi);
    ow_lo = std::max(ow_lo, lo), ow_hi = std::min(ow_hi, hi);
  }
  std::vector<int64_t> identity(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) identity[static_cast<size_t>(k)] = k;

  // Every window inside the image (a 'valid' conv): tiles are 6 consecutive pixels of the
  // flattened (N·OH·OW) output, across output rows and images, each read through its own
  // window origin with one tap list. Row-wise tiles left the first layer's 26-pixel rows
  // with a 2-pixel tile costing a whole one (13% of its FMAs wasted).
  const bool rows_inside = g.pt == 0 && (g.oh - 1) * g.sh + (g.kh - 1) * g.dh < g.h;
  if (rows_inside && ow_lo == 0 && ow_hi == g.ow) {
    std::vector<int64_t> off(static_cast<size_t>(K));
    for (int64_t i = 0, k = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j)
        for (int64_t c = 0; c < C; ++c, ++k) off[static_cast<size_t>(k)] = (i * g.dh * g.w + j * g.dw - g.pl) * C + c;
    const int64_t M = rows * g.ow, tiles = (M + kTile - 1) / kTile;
    const int T = std::min<int64_t>(threads_for(M * K * OC, kDirectGrain), tiles);
    // Whole 16-channel panels of full tiles go to small_c_tiles_6x16, kBatchTiles tiles per call
    // (their window origins computed here first); a partial last panel and the last, partial tile
    // take small_c_6x16 (same arithmetic in the same order: the values do not depend on which).
    const int64_t full_np = OC / NR;
    share_work(tiles, std::max<int64_t>(1, tiles / (16 * std::max(T, 1))), T, [&](int64_t t0, int64_t t1) {
      const int64_t p0 = t0 * kTile;
      int64_t n = p0 / (g.oh * g.ow), oh = p0 / g.ow % g.oh, ow = p0 % g.ow;
      const float* org[kBatchTiles * kTile];
      for (int64_t tb = t0; tb < t1; tb += kBatchTiles) {
        const int64_t te = std::min(t1, tb + kBatchTiles);
        for (int64_t t = tb; t < te; ++t) {
          const int mr = static_cast<int>(std::min<int64_t>(kTile, M - t * kTile));
          const float** a6 = org + (t - tb) * kTile;
          for (int r = 0; r < kTile; ++r) {
            if (r >= mr) {
              a6[r] = a6[mr - 1];
              continue;
            }
            a6[r] = x + ((n * g.h + oh * g.sh) * g.w + ow * g.sw) * C;
            if (++ow == g.ow) {
              ow = 0;
              if (++oh == g.oh) oh = 0, ++n;
            }
          }
        }
        const int64_t full_end = te * kTile <= M ? te : te - 1;  // tiles [tb, full_end) have 6 pixels
        if (full_np > 0 && full_end > tb)
          conv::avx2::small_c_tiles_6x16(full_end - tb, org, K, off.data(), packed, full_np, bias_p,
                                         y + tb * kTile * OC, OC, act, act_alpha);
        for (int64_t t = tb; t < te; ++t) {
          const int mr = static_cast<int>(std::min<int64_t>(kTile, M - t * kTile));
          float* yt = y + t * kTile * OC;
          for (int64_t jp = t < full_end ? full_np : 0; jp < np; ++jp) {
            const int nr = static_cast<int>(std::min<int64_t>(NR, OC - jp * NR));
            conv::avx2::small_c_6x16(K, off.data(), identity.data(), org + (t - tb) * kTile, packed + jp * K * NR,
                                     yt + jp * NR, OC, mr, nr, bias_p + jp * NR, act, act_alpha);
          }
        }
      }
    });
    return;
  }

  const int T = std::min<int64_t>(threads_for(rows * g.ow * K * OC, kDirectGrain), rows);
  share_work(rows, std::max<int64_t>(1, rows / (8 * std::max(T, 1))), T, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> off(static_cast<size_t>(K)), brow(static_cast<size_t>(K));
    std::vector<float> patch(static_cast<size_t>(kTile * K));  // a border tile, zero-padded
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t n = row / g.oh, oh = row % g.oh;
      const float* xn = x + n * g.h * g.w * C;
      // Taps of this output row: rows of the kernel that fall outside the image add nothing.
      int64_t nk = 0;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.sh - g.pt + i * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t j = 0; j < g.kw; ++j)
          for (int64_t c = 0; c < C; ++c, ++nk) {
            off[static_cast<size_t>(nk)] = (ih * g.w + j * g.dw) * C + c;
            brow[static_cast<size_t>(nk)] = (i * g.kw + j) * C + c;
          }
      }
      float* yrow = y + row * g.ow * OC;
      for (int64_t ow0 = 0; ow0 < g.ow; ow0 += kTile) {
        const int mr = static_cast<int>(std::min<int64_t>(kTile, g.ow - ow0));
        const bool inside = ow0 >= ow_lo && ow0 + mr <= ow_hi;
        const float* a;
        int64_t rs_a, n_taps;
        const int64_t *o_list, *b_list;
        if (inside) {
          a = xn + (ow0 * g.sw - g.pl) * C, rs_a = g.sw * C, n_taps = nk;
          o_list = off.data(), b_list = brow.data();
        } else {  // the window crosses the left or right border: pack the tile's patches
          for (int64_t r = 0; r < mr; ++r) {
            float* d = patch.data() + r * K;
            for (int64_t i = 0; i < g.kh; ++i) {
              const int64_t ih = oh * g.sh - g.pt + i * g.dh;
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t iw = (ow0 + r) * g.sw - g.pl + j * g.dw;
                const bool in = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
                for (int64_t c = 0; c < C; ++c) *d++ = in ? xn[(ih * g.w + iw) * C + c] : 0.f;
              }
            }
          }
          a = patch.data(), rs_a = K, n_taps = K;
          o_list = identity.data(), b_list = identity.data();
        }
        const float* a6[kTile];
        for (int r = 0; r < kTile; ++r) a6[r] = a + std::min(r, mr - 1) * rs_a;
        for (int64_t jp = 0; jp < np; ++jp) {
          const int nr = static_cast<int>(std::min<int64_t>(NR, OC - jp * NR));
          conv::avx2::small_c_6x16(n_taps, o_list, b_list, a6, packed + jp * K * NR, yrow + ow0 * OC + jp * NR, OC,
                                   mr, nr, bias_p + jp * NR, act, act_alpha);
        }
      }
    }
  });
}

void conv2d_backward_kernel_direct(const WindowGeom& g, const float* x, const float* dy, float* dw) {
  const int64_t K = g.patch(), OC = g.oc, C = g.c, rows = g.n * g.oh;
  if (K == 0 || OC == 0) return;
  std::memset(dw, 0, sizeof(float) * K * OC);
  if (rows == 0 || g.ow == 0) return;
  const int64_t np = (OC + NR - 1) / NR;
  const int T = static_cast<int>(std::min<int64_t>(threads_for(rows * g.ow * K * OC, kDirectGrain), rows));
  // Taps of kernel row k: (i, j, c) and the output columns where its input column exists.
  std::vector<int64_t> ki(static_cast<size_t>(K)), kj(static_cast<size_t>(K)), kc(static_cast<size_t>(K)),
      klo(static_cast<size_t>(K)), khi(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    const size_t s = static_cast<size_t>(k);
    ki[s] = k / (g.kw * C), kj[s] = k / C % g.kw, kc[s] = k % C;
    valid_cols(g, kj[s], &klo[s], &khi[s]);
  }
  // What a tap outside the image reads (row step 0): ow·sw·C floats of zeros.
  std::vector<float> zeros(static_cast<size_t>(g.ow * g.sw * C + 1), 0.f);
  // More than two 6-row slices of dW re-read each dy panel: then it is packed once per block.
  const bool pack_dy = K > 2 * kTile;
  const int64_t block = std::max<int64_t>(1, (pack_dy ? kDwPanelPixels : kDwBlockFloats / OC) / g.ow);
  std::vector<float> partial(static_cast<size_t>(std::max(T - 1, 0)) * K * OC, 0.f);
  int used = 1;
  parallel_team_checked(T, [&](int t, int nt) {
    if (t == 0) used = nt;
    float* acc = t == 0 ? dw : partial.data() + static_cast<size_t>(t - 1) * K * OC;
    const int64_t r_lo = rows * t / nt, r_hi = rows * (t + 1) / nt;
    std::vector<float> panel(pack_dy ? static_cast<size_t>(block * g.ow * NR) : 0);
    for (int64_t b0 = r_lo; b0 < r_hi;) {
      const int64_t n = b0 / g.oh, oh_a = b0 % g.oh;
      const int64_t oh_b = std::min({g.oh, oh_a + block, oh_a + (r_hi - b0)});  // a block stays in one image
      const float* xn = x + n * g.h * g.w * C;
      const float* dyn = dy + n * g.oh * g.ow * OC;
      // f(k0, mr, lo, hi, s, e, m): runs [s, e) of output rows of the block over which each
      // of the taps k0..k0+mr keeps its inside/outside state (bit r of m: tap r inside).
      auto for_runs = [&](auto&& f) {
        for (int64_t k0 = 0; k0 < K; k0 += kTile) {
          const int mr = static_cast<int>(std::min<int64_t>(kTile, K - k0));
          int64_t lo = 0, hi = g.ow;  // columns where all mr taps are inside
          for (int r = 0; r < mr; ++r) lo = std::max(lo, klo[k0 + r]), hi = std::min(hi, khi[k0 + r]);
          if (lo > hi) lo = hi;
          auto mask_at = [&](int64_t oh) {
            unsigned m = 0;
            for (int r = 0; r < mr; ++r) {
              const int64_t ih = oh * g.sh - g.pt + ki[k0 + r] * g.dh;
              m |= static_cast<unsigned>(ih >= 0 && ih < g.h) << r;
            }
            return m;
          };
          for (int64_t s = oh_a; s < oh_b;) {
            const unsigned m = mask_at(s);
            int64_t e = s + 1;
            while (e < oh_b && mask_at(e) == m) ++e;
            if (m != 0) f(k0, mr, lo, hi, s, e, m);
            s = e;
          }
        }
      };
      // The inside columns: 6 × 16 register tiles, one 16-channel panel of dy at a time.
      for (int64_t jp = 0; jp < np; ++jp) {
        const int nr = static_cast<int>(std::min<int64_t>(NR, OC - jp * NR));
        const float* b_base = dyn + jp * NR;
        int64_t b_rowstep = g.ow * OC, b_col = OC, row0 = 0;  // b_base is output row row0
        if (pack_dy) {  // the panel contiguous in L1 (dy rows OC floats apart alias in few cache sets)
          float* d = panel.data();
          for (int64_t p = oh_a * g.ow; p < oh_b * g.ow; ++p, d += NR) {
            const float* src = dyn + p * OC + jp * NR;
            for (int q = 0; q < nr; ++q) d[q] = src[q];
          }
          b_base = panel.data(), b_rowstep = g.ow * NR, b_col = NR, row0 = oh_a;
        }
        for_runs([&](int64_t k0, int mr, int64_t lo, int64_t hi, int64_t s, int64_t e, unsigned m) {
          if (hi <= lo) return;
          const float* a[kTile];
          int64_t a_row[kTile];
          for (int r = 0; r < mr; ++r) {
            const size_t q = static_cast<size_t>(k0 + r);
            if (m >> r & 1) {
              const int64_t ih = s * g.sh - g.pt + ki[q] * g.dh;
              a[r] = xn + (ih * g.w + lo * g.sw - g.pl + kj[q] * g.dw) * C + kc[q];
              a_row[r] = g.sh * g.w * C;
            } else {
              a[r] = zeros.data(), a_row[r] = 0;
            }
          }
          conv::avx2::dw_6x16(e - s, hi - lo, a, a_row, g.sw * C, b_base + (s - row0) * b_rowstep + lo * b_col,
                              b_rowstep, b_col, acc + k0 * OC + jp * NR, OC, mr, nr);
        });
      }
      // Border columns, where some of the taps fall outside the image.
      for_runs([&](int64_t k0, int mr, int64_t lo, int64_t hi, int64_t s, int64_t e, unsigned m) {
        for (int64_t oh = s; oh < e; ++oh)
          for (int64_t ow = 0; ow < g.ow; ++ow) {
            if (ow == lo) ow = std::max(hi, lo);
            if (ow >= g.ow) break;
            const float* d = dyn + (oh * g.ow + ow) * OC;
            for (int r = 0; r < mr; ++r) {
              const size_t q = static_cast<size_t>(k0 + r);
              if (!(m >> r & 1) || ow < klo[q] || ow >= khi[q]) continue;
              const int64_t ih = oh * g.sh - g.pt + ki[q] * g.dh, iw = ow * g.sw - g.pl + kj[q] * g.dw;
              const float v = xn[(ih * g.w + iw) * C + kc[q]];
              float* out = acc + (k0 + r) * OC;
              for (int64_t o = 0; o < OC; ++o) out[o] += v * d[o];
            }
          }
      });
      b0 += oh_b - oh_a;
    }
  });
  for (int u = 1; u < used; ++u) {
    const float* src = partial.data() + static_cast<size_t>(u - 1) * K * OC;
    for (int64_t i = 0; i < K * OC; ++i) dw[i] += src[i];
  }
}

}  // namespace pynn
#endif  // PYNN_X86_64
