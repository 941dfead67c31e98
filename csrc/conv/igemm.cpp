// Driver of the implicit-GEMM convolution (portable; the microkernel is in
// gemm/kernels/avx2/igemm_6x16_avx2.cpp). Loops, outermost first:
//
//   threads        claim runs of tile groups from a counter (common/parallel.h: share_work): no
//                  shared writes, no barriers, and a late thread never stalls the caller
//   tile groups    kGroupTiles tiles; their indirection table (tiles × taps × 6
//                  pointers) is built once and serves every panel and pass
//   panels         16 output channels of the packed kernel
//   passes         runs of taps whose kernel slice fits kSliceBytes (usually one)
//   tiles          microkernel: 6 pixels × 16 channels, accumulators in registers
//
// Measured at 1 thread (process CPU time, interleaved with torch): 64→64 3x3 'same'
// at 32x32 runs at ~93 GFLOPS, ~92% of the 102 GFLOPS an FMA-only loop reaches on
// one core here, against 75 for im2col + sgemm; blocking variants (16-24 KiB
// kernel slices, 1-16 tile groups) were all within 3% of each other, so the
// kernel is compute-bound and loop order is not where time goes.
#include "conv/igemm.h"
#include "common/aligned_buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "conv/direct.h"
#include "conv/panels.h"
#include "gemm/kernels/kernels.h"

namespace pynn {

namespace {

// The packed kernel panels a thread cycles through per tile should stay in L2 (512 KiB
// on Zen 3) next to the input rows and output being streamed.
// Measured (1 thread, 64→64 and 64→128 3x3): one pass over all taps was 2-4% faster
// than 16 KiB slices, so the slice only splits panels well past L1 (C_in ≥ 128 or so).
constexpr int64_t kSliceBytes = 64 * 1024;
// 6-pixel tiles per group: their input rows for one pass stay in L1/L2 next to the
// kernel slice, and each slice is loaded from L2 once per group.
constexpr int64_t kGroupTiles = 4;
// Below this run length (C_in = 1-7 with padding across) the per-tap pointer loads
// cost more than the im2col copy they save (3-channel 'same': 20% slower): use im2col.
constexpr int64_t kMinRun = 8;

// Multiply-adds per extra thread. The forward splits from 512K: its tile groups are claimed
// through share_work, so a late helper costs nothing, and the single-image second conv
// of a small CNN (2.2M multiply-adds, ~48 us on one core; 1.8M when conv2d_max_pool2d skips
// the row and column its pool never reads) is then split.
constexpr int64_t kIgemmGrain = int64_t(1) << 22;
constexpr int64_t kIgemmForwardGrain = int64_t(1) << 19;
// Output pixels per block of the weight gradient: a 16-column slice of the block's taps
// (kDwtBlock cache lines of x, C floats apart: at C = 64 they fall in 16 of L1's 64 sets)
// stays in L1 while the block's packed dy panels stream past it. Measured at 1 thread
// (CPU time, loaded machine): 32 / 64 / 128 / 256 pixels gave 27.3 / 26.3 / 30.8 / 26.4 ms
// for 64->64 3x3 on N32 32x32 and 3.28 / 3.24 / 3.19 / 3.32 ms for 32->64 on 13x13.
constexpr int64_t kDwtBlock = 64;
// Weight-gradient work units: up to kDwUnits pixel chunks of at least ~kDwChunkPixels output
// pixels (fixed by the shape, not the thread count, for bitwise results), each with its own
// partial dW of K·ceil(OC/6)·6 floats; with fewer chunks (small batches) the k-tiles are split
// too, to kDwUnits units; each k-tile group packs its chunk's dy again (~3% of a 1-thread dW per
// packing, measured: 1 image 32x32 64->64 with 8 groups took 0.99 ms against 0.81). A chunk costs
// a partial's zeroing and one more addition per dW element, ~2% of the FMAs of 256 pixels of a
// 64->64 3x3 conv. So dW splits over at most kDwUnits threads.
constexpr int64_t kDwChunkPixels = 256;
constexpr int64_t kDwUnits = 8;


}  // namespace

bool igemm_enabled() {
#ifdef PYNN_X86_64
  if (!use_avx2()) return false;
  const char* e = std::getenv("PYNN_CONV_IGEMM");  // A/B switch for benchmarks and tests
  return !(e && e[0] == '0');
#else
  return false;
#endif
}

#ifdef PYNN_X86_64
namespace {

// The implicit GEMM out (M, OC) = act(A · B + bias), where row p of A is the
// concatenation of `taps` runs of `run` floats that fill(p, ptrs) points at
// (ptrs[t·6] for tap t; zeros for a padded tap) and B (taps·run, OC) with the bias is
// given packed (conv/panels.h). Blocking and threading for every implicit-GEMM conv.
template <class Fill>
void igemm_run(int64_t M, int64_t grid_h, int64_t grid_w, int64_t taps, int64_t run, Fill fill, const ConvPanels& pk,
               float* out, Act act, float act_alpha) {
  using gemm::MR;
  using gemm::NR;
  const int64_t K = taps * run, OC = pk.OC, np = pk.np;
  const float* packed = pk.w.p;
  const float* bias_p = pk.b.p;
  AlignedBuf zeros(run);
  std::fill(zeros.p, zeros.p + run, 0.f);

  // Passes over the taps: each pass's slice of a kernel panel (taps_per_pass · run × 16
  // floats) stays in L1 while a group of tiles streams through it.
  const int64_t slice_taps = std::max<int64_t>(1, kSliceBytes / (run * NR * static_cast<int64_t>(sizeof(float))));
  const int64_t passes = (taps + slice_taps - 1) / slice_taps;
  const int64_t per_pass = (taps + passes - 1) / passes;  // equal passes: 9 taps -> 3 x 3, not 4 + 4 + 1
  const int64_t group = kGroupTiles;
  const int64_t tiles = (M + MR - 1) / MR;
  const int T = std::min<int64_t>(threads_for(M * K * OC, kIgemmForwardGrain), tiles);

  // Threads claim runs of tile groups (common/parallel.h: share_work): a helper that is late
  // on a busy machine leaves its share to the caller instead of stalling it. Runs of 1/32 of a
  // thread's share: the last claim leaves the other threads idle for half a run on average,
  // which with 1/8 shares was ~3% of a 64->64 conv at 2 threads (2-thread scaling 1.75-1.85x
  // against torch's 1.9x); a claim costs one atomic add and two small vectors.
  const int64_t groups = (tiles + group - 1) / group;
  share_work(groups, std::max<int64_t>(1, groups / (32 * T)), T, [&](int64_t glo, int64_t ghi) {
    const int64_t lo = glo * group, hi = std::min(tiles, ghi * group);
    std::vector<const float*> ind(static_cast<size_t>(group * taps * MR));
    std::vector<int64_t> span(static_cast<size_t>(2 * group));
    for (int64_t g0 = lo; g0 < hi; g0 += group) {
      const int64_t g1 = std::min(hi, g0 + group);
      // Indirection for the group: ind[(tile·taps + tap)·6 + r] -> the run of pixel r of the
      // tile at that tap (zeros when the tap is padding or the pixel is past M).
      // Pixel p = (n·grid_h + a)·grid_w + b: divided once per group, then stepped (with
      // 9-float patches of a 1-channel first layer the divisions cost as much as the FMAs).
      const int64_t p_first = g0 * MR, plane = grid_h * grid_w;
      int64_t n = p_first / plane, a = p_first % plane / grid_w, b = p_first % grid_w;
      for (int64_t tile = g0; tile < g1; ++tile) {
        const float** ti = ind.data() + (tile - g0) * taps * MR;
        for (int64_t r = 0; r < MR; ++r) {
          if (tile * MR + r >= M) {
            for (int64_t tp = 0; tp < taps; ++tp) ti[tp * MR + r] = zeros.p;
            continue;
          }
          fill(n, a, b, ti + r, zeros.p);
          if (++b == grid_w) {
            b = 0;
            if (++a == grid_h) a = 0, ++n;
          }
        }
      }
      // Taps [tlo, thi) of a tile hold every tap where one of its 6 pixels reads data, not
      // padding: the taps outside only add 0 · w. Tiles in the border rows of a 'same' forward,
      // and every border tile of an input gradient (a 'valid' conv's dx border sees few taps),
      // skip them: for 32->64 3x3 'valid' on 13x13 the dx tiles did 40% wasted FMAs.
      for (int64_t tile = g0; tile < g1; ++tile) {
        const float* const* ti = ind.data() + (tile - g0) * taps * MR;
        auto live = [&](int64_t tp) {
          for (int64_t r = 0; r < MR; ++r)
            if (ti[tp * MR + r] != zeros.p) return true;
          return false;
        };
        int64_t first = 0, end = taps;
        while (first < end && !live(first)) ++first;
        while (end > first && !live(end - 1)) --end;
        span[static_cast<size_t>(2 * (tile - g0))] = first, span[static_cast<size_t>(2 * (tile - g0) + 1)] = end;
      }
      for (int64_t jp = 0; jp < np; ++jp) {
        const int64_t j0 = jp * NR;
        const int nr = static_cast<int>(std::min<int64_t>(NR, OC - j0));
        for (int64_t t0 = 0; t0 < taps; t0 += per_pass) {
          const int64_t t1 = std::min(t0 + per_pass, taps);
          for (int64_t tile = g0; tile < g1; ++tile) {
            const int64_t p0 = tile * MR;
            const int mr = static_cast<int>(std::min<int64_t>(MR, M - p0));
            const int64_t tlo = span[static_cast<size_t>(2 * (tile - g0))];
            const int64_t thi = span[static_cast<size_t>(2 * (tile - g0) + 1)];
            int64_t u0 = std::max(t0, tlo), u1 = std::min(t1, thi);
            const bool empty = tlo >= thi;  // no tap reads data: act(bias), written by one call over 0 taps
            if (u0 >= u1) {
              if (t0 > 0 || !empty) continue;
              u0 = u1 = 0;
            }
            gemm::avx2::igemm_6x16(u1 - u0, run, ind.data() + ((tile - g0) * taps + u0) * MR,
                                   packed + (jp * K + u0 * run) * NR, out + p0 * OC + j0, OC, mr, nr, u0 > tlo,
                                   u1 == thi || empty ? bias_p + j0 : nullptr, act, act_alpha);
          }
        }
      }
    }
  });
}

}  // namespace
#endif

namespace {
// A kernel row whose kw cells are always inside the image (no left/right padding,
// dilation 1 across) is one contiguous run of kw·C floats: kh taps instead of kh·kw.
bool merges_rows(const WindowGeom& g) { return g.dw == 1 && g.pl == 0 && (g.ow - 1) * g.sw + g.kw <= g.w; }

// live[p] = dy row p (OC floats) holds a value other than ±0 (NaN counts as live). A max
// pooling backward leaves whole rows of its input gradient zero: the rows and columns its
// windows never cover (the 11x11 -> 5x5 pooling of a CNN drops row and column 10, 17% of
// the pixels). Both gradients skip those pixels: they would only add 0 · x (resp. 0 · w).
std::vector<unsigned char> live_rows(const float* dy, int64_t rows, int64_t OC) {
  std::vector<unsigned char> live(static_cast<size_t>(rows));
  for (int64_t p = 0; p < rows; ++p) {
    // Stop at the first nonzero: a live row usually ends the scan at its first channel. The full
    // OR over every channel was serial time before both gradients' parallel parts: 0.15+ ms per
    // call for the CNN's 64x11x11x64 dy at 1 thread.
    const float* v = dy + p * OC;
    bool any = false;
    for (int64_t o = 0; o < OC && !any; ++o) any = v[o] != 0.f;  // -0.0 == 0; NaN != 0
    live[static_cast<size_t>(p)] = any;
  }
  return live;
}
}  // namespace

bool igemm_forward_applies(const WindowGeom& g) { return (merges_rows(g) ? g.kw * g.c : g.c) >= kMinRun; }

bool conv2d_forward_igemm(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                          float act_alpha, const ConvPanels* pre) {
#ifndef PYNN_X86_64
  return false;
#else
  if (!igemm_enabled()) return false;
  const int64_t M = g.out_pixels(), K = g.patch(), OC = g.oc, C = g.c;
  if (M == 0 || OC == 0) return true;
  if (K == 0) return false;  // no taps: the generic path writes act(bias)
  const bool merge_rows = merges_rows(g);
  const int64_t taps = merge_rows ? g.kh : g.kh * g.kw;
  const int64_t run = merge_rows ? g.kw * C : C;
  if (run < kMinRun) return false;
  auto fill = [&](int64_t n, int64_t oh, int64_t ow, const float** ptr, const float* zeros) {
    const float* xn = x + n * g.h * g.w * C;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      const bool row_in = ih >= 0 && ih < g.h;
      if (merge_rows) {
        *ptr = row_in ? xn + (ih * g.w + ow * g.sw) * C : zeros;
        ptr += gemm::MR;
        continue;
      }
      for (int64_t j = 0; j < g.kw; ++j, ptr += gemm::MR) {
        const int64_t iw = ow * g.sw - g.pl + j * g.dw;
        *ptr = row_in && iw >= 0 && iw < g.w ? xn + (ih * g.w + iw) * C : zeros;
      }
    }
  };
  // The kernel (kh, kw, C, OC) already is the (K, OC) matrix B.
  if (pre) {
    igemm_run(M, g.oh, g.ow, taps, run, fill, *pre, y, act, act_alpha);
  } else {
    const ConvPanels pk(K, OC, w, bias);
    igemm_run(M, g.oh, g.ow, taps, run, fill, pk, y, act, act_alpha);
  }
  return true;
#endif
}

bool conv2d_backward_input_igemm(const WindowGeom& g, const float* dy, const float* w, float* dx) {
#ifndef PYNN_X86_64
  return false;
#else
  if (!igemm_enabled()) return false;
  // dx[n, ih, iw, c] = Σ_{i,j,o} dy[n, ih + pt − i·dh, iw + pl − j·dw, o] · w[i, j, c, o] at stride 1:
  // a convolution of dy (runs of OC floats) with the kernel flipped and transposed, every
  // dx pixel written once (taps outside dy read zeros), so dx needs no zeroing pass.
  // Strides > 1 would leave most taps of a dx pixel empty: the GEMM + col2im path does those.
  if (g.sh != 1 || g.sw != 1) return false;
  const int64_t M = g.n * g.h * g.w, OC = g.oc, C = g.c;
  const int64_t taps = g.kh * g.kw, run = OC;
  if (M == 0 || C == 0) return true;
  // Narrow outputs waste most of the 16 lanes; short runs cost more in pointer loads than they save.
  if (taps * OC == 0 || run < kMinRun || C < kMinRun) return false;
  const std::vector<unsigned char> live = live_rows(dy, g.out_pixels(), OC);
  auto fill = [&](int64_t n, int64_t ih, int64_t iw, const float** ptr, const float* zeros) {
    const float* dyn = dy + n * g.oh * g.ow * OC;
    const unsigned char* ln = live.data() + n * g.oh * g.ow;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t oh = ih + g.pt - i * g.dh;
      const bool row_in = oh >= 0 && oh < g.oh;
      for (int64_t j = 0; j < g.kw; ++j, ptr += gemm::MR) {
        const int64_t ow = iw + g.pl - j * g.dw;
        *ptr = row_in && ow >= 0 && ow < g.ow && ln[oh * g.ow + ow] ? dyn + (oh * g.ow + ow) * OC : zeros;
      }
    }
  };
  // B[(i·kw + j)·OC + o, c] = w[i, j, c, o]: the kernel flipped to (kh·kw·OC, C), then packed.
  std::vector<float> wt(static_cast<size_t>(taps * OC * C));
  for (int64_t tap = 0; tap < taps; ++tap)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t o = 0; o < OC; ++o) wt[static_cast<size_t>((tap * OC + o) * C + c)] = w[(tap * C + c) * OC + o];
  const ConvPanels pk(taps * OC, C, wt.data(), nullptr);
  igemm_run(M, g.h, g.w, taps, run, fill, pk, dx, Act::Linear, 0.f);
  return true;
#endif
}

bool igemm_dw_applies(const WindowGeom& g) { return g.c > kSmallChannels && igemm_forward_applies(g); }

bool conv2d_backward_kernel_igemm(const WindowGeom& g, const float* x, const float* dy, float* dw) {
#ifndef PYNN_X86_64
  return false;
#else
  using gemm::MR;
  using gemm::NR;
  if (!igemm_enabled()) return false;
  const int64_t M = g.out_pixels(), K = g.patch(), OC = g.oc, C = g.c;
  const bool merge_rows = merges_rows(g);
  const int64_t taps = merge_rows ? g.kh : g.kh * g.kw;
  const int64_t run = merge_rows ? g.kw * C : C;
  if (run < kMinRun) return false;
  if (K == 0 || OC == 0) return true;
  if (M == 0) {
    std::memset(dw, 0, sizeof(float) * K * OC);
    return true;
  }
  // dWᵀ (OC, K) = dYᵀ · A, A (M, K) the im2col matrix never formed: a tile is 6 output
  // channels (broadcast from a dy row) × 16 consecutive k of one tap's run (two loads from
  // x through a per-pixel pointer), accumulated over the pixels of a block.
  //
  // Work units are (pixel chunk, k-tile group) pairs whose number depends on the shape only:
  // a unit sums its k-tiles over its chunk's pixels into its own partial, and the partials are
  // added chunk by chunk in order, so dW is bitwise the same at any thread count. Chunks are
  // what the threads share for a batch: each pixel's dy row is packed and its tap pointers
  // built once, by one thread (the former k-tile split packed all of dy once per claim: 4 times
  // at 2 threads for the CNN's 32->64 conv, and two claims of 5 k-tiles and two of 4 left
  // one thread 10 of the 18). Small batches (fewer chunks than kDwUnits) also split the k-tiles.
  const int64_t kt_per_tap = (run + NR - 1) / NR, n_kt = taps * kt_per_tap;
  const int64_t o_tiles = (OC + MR - 1) / MR, tile_floats = o_tiles * MR * NR;
  AlignedBuf zeros(run);
  std::fill(zeros.p, zeros.p + run, 0.f);
  const std::vector<unsigned char> live = live_rows(dy, M, OC);
  const int64_t chunks = std::min<int64_t>((M + kDwChunkPixels - 1) / kDwChunkPixels, kDwUnits);
  const int64_t kgroups = std::min<int64_t>(n_kt, (kDwUnits + chunks - 1) / chunks);
  const int64_t units = chunks * kgroups;
  AlignedBuf part(chunks * n_kt * tile_floats);  // part[(q·n_kt + kt)·tile_floats]: chunk q's k-tile kt
  const int T = static_cast<int>(std::min<int64_t>(threads_for(M * K * OC, kIgemmGrain), units));
  share_work(units, 1, T, [&](int64_t u0, int64_t u1) {
    std::vector<const float*> ptr(static_cast<size_t>(taps * kDwtBlock));
    AlignedBuf dyp(o_tiles * kDwtBlock * MR);
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t q = u / kgroups, kg = u % kgroups;
      const int64_t k0 = n_kt * kg / kgroups, k1 = n_kt * (kg + 1) / kgroups;
      const int64_t tap_lo = k0 / kt_per_tap, tap_hi = (k1 - 1) / kt_per_tap + 1;
      float* acc = part.p + (q * n_kt + k0) * tile_floats;
      std::fill(acc, acc + (k1 - k0) * tile_floats, 0.f);
      const int64_t p_hi = M * (q + 1) / chunks;
      int64_t p = M * q / chunks, n = p / (g.oh * g.ow), oh = p % (g.oh * g.ow) / g.ow, ow = p % g.ow;
      // Blocks of kDwtBlock live pixels (dy row not all zero), in pixel order.
      while (p < p_hi) {
        int64_t np = 0;
        for (; p < p_hi && np < kDwtBlock; ++p) {
          if (live[static_cast<size_t>(p)]) {
            // dy's row into 6-channel panels, 6 contiguous floats a pixel (zeros past OC): dy rows are
            // OC floats apart, and at OC = 64 a 6-column slice of the block maps to 16 of L1's 64 sets.
            const float* src = dy + p * OC;
            for (int64_t ot = 0; ot < o_tiles; ++ot) {
              const int64_t o0 = ot * MR, mr = std::min<int64_t>(MR, OC - o0);
              float* d = dyp.p + (ot * kDwtBlock + np) * MR;
              for (int64_t r = 0; r < mr; ++r) d[r] = src[o0 + r];
              for (int64_t r = mr; r < MR; ++r) d[r] = 0.f;
            }
            const float* xn = x + n * g.h * g.w * C;
            for (int64_t tap = tap_lo; tap < tap_hi; ++tap) {
              const int64_t i = merge_rows ? tap : tap / g.kw, j = merge_rows ? 0 : tap % g.kw;
              const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
              const bool in = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;  // merged rows: iw always inside
              ptr[static_cast<size_t>((tap - tap_lo) * kDwtBlock + np)] = in ? xn + (ih * g.w + iw) * C : zeros.p;
            }
            ++np;
          }
          if (++ow == g.ow) {
            ow = 0;
            if (++oh == g.oh) oh = 0, ++n;
          }
        }
        for (int64_t kt = k0; kt < k1; ++kt) {
          const int64_t tap = kt / kt_per_tap, c0 = kt % kt_per_tap * NR;
          const int nr = static_cast<int>(std::min<int64_t>(NR, run - c0));
          const float* const* pp = ptr.data() + (tap - tap_lo) * kDwtBlock;
          float* tb = acc + (kt - k0) * tile_floats;
          for (int64_t ot = 0; ot < o_tiles; ++ot)
            conv::avx2::dwt_6x16(np, pp, c0, dyp.p + ot * kDwtBlock * MR, MR, tb + ot * MR * NR, MR, nr);
        }
      }
    }
  });
  // dW[k, o] = Σ_q part[q] in chunk order, for the k of each tile (k = tap·run + c0 + lane:
  // the (kh, kw, C) order, merged or not); threads take k-tiles.
  share_work(n_kt, 1, static_cast<int>(std::min<int64_t>(T, n_kt)), [&](int64_t kt0, int64_t kt1) {
    AlignedBuf sum(tile_floats);
    for (int64_t kt = kt0; kt < kt1; ++kt) {
      std::copy(part.p + kt * tile_floats, part.p + (kt + 1) * tile_floats, sum.p);
      for (int64_t q = 1; q < chunks; ++q) {
        const float* src = part.p + (q * n_kt + kt) * tile_floats;
        for (int64_t e = 0; e < tile_floats; ++e) sum.p[e] += src[e];
      }
      const int64_t tap = kt / kt_per_tap, c0 = kt % kt_per_tap * NR;
      const int64_t nr = std::min<int64_t>(NR, run - c0);
      for (int64_t lane = 0; lane < nr; ++lane) {
        float* row = dw + (tap * run + c0 + lane) * OC;
        for (int64_t o = 0; o < OC; ++o) row[o] = sum.p[o * NR + lane];
      }
    }
  });
  return true;
#endif
}

}  // namespace pynn
