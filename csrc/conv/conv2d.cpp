// Blocking: the M = N·OH·OW output pixels are cut into blocks of R rows whose
// im2col slab (R × K floats, ~512 KiB) stays in this core's L2 while the GEMM
// streams it; the whole im2col matrix is never built. With 2+ threads and at
// least one block per thread, each thread owns a contiguous pixel range and
// runs its own blocks with a single-threaded sgemm (threads_for returns 1
// inside our parallel region, so nothing nests); otherwise blocks run in order
// and sgemm threads internally. One parallel region per call, not one per GEMM
// block: measured on the shared 2-core machine, letting sgemm fork/join per
// block was 2-5x slower under load (each barrier waits out a busy core's
// time slice). 1x1 stride-1 convs skip im2col: x's rows already are the patches.
#include "conv/conv2d.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/parallel.h"
#include "conv/direct.h"
#include "conv/igemm.h"
#include "conv/im2col.h"
#include "conv/panels.h"
#include "conv/winograd.h"
#include "gemm/gemm.h"
#include "nn/bias.h"
#include "pool/pool.h"

namespace pynn {

int64_t conv_block_rows(int64_t patch) {
  int64_t r = kColBlockBytes / (static_cast<int64_t>(sizeof(float)) * std::max<int64_t>(patch, 1));
  r = r / 8 * 8;
  return std::min(std::max(r, kMinBlockRows), kMaxBlockRows);
}

namespace {

std::unique_ptr<float[]> scratch(int64_t n) { return std::unique_ptr<float[]>(new float[std::max<int64_t>(n, 1)]); }

void zero(float* p, int64_t n) {
  const int T = threads_for(n, 1 << 18);
  parallel_team_checked(T, [&](int t, int nt) {
    const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
    std::memset(p + lo, 0, sizeof(float) * (hi - lo));
  });
}

// The conv cropped to the output rows and columns some pooling window reads, and the pool over
// that crop (same output): a 'valid' 2x2/2 pool of an 11x11 conv never reads row or column 10,
// 17% of the conv's pixels. False (nothing to crop) for pools padded at the top or left and for
// pointwise convs (their x is read as the (N·OH·OW, C) matrix, so the output grid must be whole).
bool crop_to_pool(const WindowGeom& g, const WindowGeom& pg, WindowGeom* gk, WindowGeom* pk) {
  if (pg.pt != 0 || pg.pl != 0 || g.is_pointwise() || pg.oh == 0 || pg.ow == 0) return false;
  const int64_t oh = std::min(g.oh, (pg.oh - 1) * pg.sh + pg.kh), ow = std::min(g.ow, (pg.ow - 1) * pg.sw + pg.kw);
  if (oh == g.oh && ow == g.ow) return false;
  *gk = g, *pk = pg;
  gk->oh = pk->h = oh;
  gk->ow = pk->w = ow;
  return true;
}

}  // namespace

// The one place that picks a convolution's kernels by shape (and CPU).
ConvPath conv_forward_path(const WindowGeom& g) {
  if (g.is_pointwise()) return ConvPath::Pointwise;
  // Few input channels: K = kh·kw·C is 9-36, so building a pointer per tap and pixel
  // (implicit GEMM) or an im2col block costs as much as the FMAs; the direct kernel
  // reads the taps of six pixels from one base at a constant stride.
  if (igemm_enabled() && g.c <= kSmallChannels && g.patch() > 0) return ConvPath::SmallChannel;
  // 3x3 stride 1, wide enough: 2.25x fewer multiplies than any direct form (conv/winograd.h).
  if (winograd_enabled() && winograd_shape_ok(g)) return ConvPath::Winograd;
  if (igemm_enabled() && g.patch() > 0 && igemm_forward_applies(g)) return ConvPath::ImplicitGemm;
  return ConvPath::Im2col;
}

ConvPath conv_dw_path(const WindowGeom& g) {
  if (g.is_pointwise()) return ConvPath::Pointwise;
  // Direct (no im2col) only for few input channels, where K = kh·kw·C is tiny and the
  // im2col + sgemm round trip costs several times the FMAs (1->32 3x3: 0.37 vs 0.99 ms).
  // For C >= 32 the direct tiles lost to im2col + sgemm (measured, 1 thread: 64->64 3x3
  // 30.1 vs 27.7 ms, 32->64 on 13x13 4.6 vs 3.4 ms: per-output-row restarts and x read
  // at a C-float stride), so wide convs keep the GEMM path.
  if (igemm_enabled() && g.c <= kSmallChannels && g.patch() > 0) return ConvPath::Direct;
  // Wider inputs: the implicit GEMM over x (conv/igemm.h), 6 output channels × 16 k per tile with
  // 16 contiguous floats of a tap's run loaded per pixel (the direct kernel above broadcasts x at a
  // C-float stride instead, which is what lost to im2col for wide C).
  if (igemm_enabled() && g.patch() > 0 && igemm_dw_applies(g)) return ConvPath::ImplicitGemm;
  return ConvPath::Im2col;
}

bool conv_dx_winograd(const WindowGeom& g) { return winograd_enabled() && winograd_shape_ok(g); }

const char* conv_path_name(ConvPath p) {
  switch (p) {
    case ConvPath::Pointwise: return "pointwise";
    case ConvPath::SmallChannel: return "small_channel";
    case ConvPath::ImplicitGemm: return "implicit_gemm";
    case ConvPath::Winograd: return "winograd";
    case ConvPath::Direct: return "direct";
    case ConvPath::Im2col: return "im2col";
  }
  return "?";
}

void conv2d_forward(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                    float act_alpha) {
  const int64_t M = g.out_pixels(), K = g.patch(), OC = g.oc;
  if (M == 0 || OC == 0) return;
  const ConvPath path = conv_forward_path(g);
#ifdef PYNN_X86_64  // the direct kernels exist only where the AVX2 files build (igemm_enabled() is false elsewhere)
  if (path == ConvPath::SmallChannel) return conv2d_forward_small_c(g, x, w, bias, y, act, act_alpha);
#endif
  if (path == ConvPath::Winograd) return conv2d_forward_winograd(g, x, w, bias, y, act, act_alpha);
  // Windows: implicit GEMM straight from x (no im2col copy) where the AVX2 kernel exists.
  if (path == ConvPath::ImplicitGemm && conv2d_forward_igemm(g, x, w, bias, y, act, act_alpha)) return;
  const int64_t R = conv_block_rows(K);
  const int T = threads_for(M, R);
  parallel_team_checked(T, [&](int t, int nt) {
    const int64_t lo = M * t / nt, hi = M * (t + 1) / nt;
    if (g.is_pointwise()) {  // x is already the (M, C) im2col matrix: one GEMM per thread's rows
      if (hi > lo) sgemm(hi - lo, OC, K, 1.f, x + lo * K, K, 1, w, OC, 1, 0.f, y + lo * OC, OC, 1, bias, act, act_alpha);
      return;
    }
    auto col = scratch(std::min(R, hi - lo) * K);
    for (int64_t p = lo; p < hi; p += R) {
      const int64_t rows = std::min(R, hi - p);
      im2col(g, x, p, rows, col.get());
      sgemm(rows, OC, K, 1.f, col.get(), K, 1, w, OC, 1, 0.f, y + p * OC, OC, 1, bias, act, act_alpha);
    }
  });
}

ConvPoolRoute conv_max_pool_route(const WindowGeom& g, const WindowGeom& pg, Act act, bool argmax) {
#ifdef PYNN_X86_64
  // The register-fused pool keeps no argmax: with one the conv goes through a scratch chunk.
  if (!argmax && conv_forward_path(g) == ConvPath::SmallChannel && small_c_pool_applies(g, pg, act))
    return ConvPoolRoute::Registers;
#endif
  WindowGeom gk, pk;
  const WindowGeom& gc = crop_to_pool(g, pg, &gk, &pk) ? gk : g;
  // Fewer than two images per thread (a batch of 1): the conv's own split over pixels keeps
  // every thread busy; the chunks would not. Convolve whole, then pool.
  const int T = threads_for(gc.out_pixels() * gc.patch() * gc.oc, int64_t(1) << 20);
  return gc.n < 2 * T ? ConvPoolRoute::Whole : ConvPoolRoute::Chunks;
}

const char* conv_pool_route_name(ConvPoolRoute r) {
  switch (r) {
    case ConvPoolRoute::Registers: return "registers";
    case ConvPoolRoute::Whole: return "whole";
    case ConvPoolRoute::Chunks: return "chunks";
  }
  return "?";
}

void conv2d_max_pool_forward(const WindowGeom& g, const WindowGeom& pg, const float* x, const float* w,
                             const float* bias, float* y, Act act, float act_alpha, uint8_t* idx) {
  const int64_t img_in = g.h * g.w * g.c, img_conv = g.oh * g.ow * g.oc, img_out = pg.oh * pg.ow * pg.c;
  if (g.n == 0 || img_out == 0) return;
  const ConvPath path = conv_forward_path(g);
  const ConvPoolRoute route = conv_max_pool_route(g, pg, act, idx != nullptr);
#ifdef PYNN_X86_64
  // A first layer (few channels, 'valid') with a 2x2 pool: the pooling runs on the conv's
  // 2x2 pixel blocks in registers, so the conv output is not even written to a scratch chunk.
  if (route == ConvPoolRoute::Registers) {
    const ConvPanels pk(g.patch(), g.oc, w, bias);
    return conv2d_max_pool_small_c(g, pg, x, pk, y, act);
  }
#endif
  {  // Conv pixels no pooling window reads are not computed (same values: each pixel is its own sum).
    WindowGeom gk, pk;
    // The argmax names a cell of its window, not of the image: the crop leaves it the same.
    if (crop_to_pool(g, pg, &gk, &pk)) return conv2d_max_pool_forward(gk, pk, x, w, bias, y, act, act_alpha, idx);
  }
  const int T = threads_for(g.out_pixels() * g.patch() * g.oc, int64_t(1) << 20);
  if (route == ConvPoolRoute::Whole) {
    std::unique_ptr<float[]> tmp = scratch(g.n * img_conv);
    conv2d_forward(g, x, w, bias, tmp.get(), act, act_alpha);
    if (idx != nullptr) max_pool2d_forward_argmax(pg, tmp.get(), y, idx);
    else max_pool2d_forward(pg, tmp.get(), y);
    return;
  }
  // Images per chunk: its conv output fits the scratch block, and each thread gets >= 4 chunks.
  int64_t chunk = std::max<int64_t>(1, kFusedChunkBytes / (img_conv * static_cast<int64_t>(sizeof(float))));
  chunk = std::min(chunk, std::max<int64_t>(1, g.n / (4 * T)));
  const int64_t chunks = (g.n + chunk - 1) / chunk;
  const bool packs = path == ConvPath::SmallChannel || path == ConvPath::ImplicitGemm;
  std::unique_ptr<ConvPanels> pk = packs ? std::make_unique<ConvPanels>(g.patch(), g.oc, w, bias) : nullptr;
  std::unique_ptr<WinogradWeights> wu =
      path == ConvPath::Winograd ? std::make_unique<WinogradWeights>(g.c, g.oc, w) : nullptr;
  share_work(chunks, 1, T, [&](int64_t c0, int64_t c1) {
    // Inside share_work every kernel below runs on this thread (threads_for returns 1). The
    // block is kept per thread: a fresh 100+ KiB allocation per chunk was an mmap and page
    // faults each time (measured: the fused first layer no faster than conv + pool).
    thread_local Scratch block;
    float* const buf = block.get(static_cast<size_t>(chunk * img_conv));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i0 = c * chunk;
      WindowGeom gc = g, pc = pg;
      gc.n = pc.n = std::min(chunk, g.n - i0);
      const float* xc = x + i0 * img_in;
      bool done = false;
#ifdef PYNN_X86_64
      if (path == ConvPath::SmallChannel) {
        conv2d_forward_small_c(gc, xc, w, bias, buf, act, act_alpha, pk.get());
        done = true;
      }
#endif
      if (path == ConvPath::Winograd) {
        conv2d_forward_winograd(gc, xc, w, bias, buf, act, act_alpha, wu.get());
        done = true;
      }
      if (!done && path == ConvPath::ImplicitGemm)
        done = conv2d_forward_igemm(gc, xc, w, bias, buf, act, act_alpha, pk.get());
      if (!done) conv2d_forward(gc, xc, w, bias, buf, act, act_alpha);
      if (idx != nullptr) max_pool2d_forward_argmax(pc, buf, y + i0 * img_out, idx + i0 * img_out);
      else max_pool2d_forward(pc, buf, y + i0 * img_out);
    }
  });
}

void conv2d_backward_input(const WindowGeom& g, const float* dy, const float* w, float* dx) {
  const int64_t M = g.out_pixels(), K = g.patch(), OC = g.oc, C = g.c;
  if (g.is_pointwise() && M > 0) {  // dx (M, C) = dY · Wᵀ (W read transposed through its strides), rows split
    const int T = threads_for(M, conv_block_rows(K));
    parallel_team_checked(T, [&](int t, int nt) {
      const int64_t lo = M * t / nt, hi = M * (t + 1) / nt;
      if (hi > lo)
        sgemm(hi - lo, C, OC, 1.f, dy + lo * OC, OC, 1, w, 1, OC, 0.f, dx + lo * C, C, 1, nullptr, Act::Linear, 0.f);
    });
    return;
  }
  if (conv_dx_winograd(g)) {
    // dx[ih, iw, c] = Σ_{i,j,o} dy[ih + pt - i, iw + pl - j, o] · w[i, j, c, o]: the forward over dy
    // (C_in' = OC) with w'[i', j', o, c] = w[2 - i', 2 - j', c, o] and padding 2 - pt, 2 - pl.
    WindowGeom gb = g;
    gb.h = g.oh, gb.w = g.ow, gb.c = g.oc, gb.oc = g.c, gb.pt = 2 - g.pt, gb.pl = 2 - g.pl, gb.oh = g.h, gb.ow = g.w;
    std::vector<float> wt(static_cast<size_t>(9 * C * OC));
    for (int64_t tap = 0; tap < 9; ++tap)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t o = 0; o < OC; ++o) wt[static_cast<size_t>(((8 - tap) * OC + o) * C + c)] = w[(tap * C + c) * OC + o];
    return conv2d_forward_winograd(gb, dy, wt.data(), nullptr, dx, Act::Linear, 0.f);
  }
  if (conv2d_backward_input_igemm(g, dy, w, dx)) return;  // stride 1: no col2im, no zeroing
  zero(dx, g.n * g.h * g.w * C);  // strides > window leave cells no window touches
  if (M == 0 || K == 0) return;
  const int64_t R = conv_block_rows(K), plane = g.oh * g.ow;
  // col2im of neighbouring windows overlaps inside an image, so threads own whole images.
  const int T = std::min<int64_t>(threads_for(M, R), g.n);
  parallel_team_checked(T, [&](int t, int nt) {
    const int64_t lo = g.n * t / nt * plane, hi = g.n * (t + 1) / nt * plane;
    auto col = scratch(std::min(R, hi - lo) * K);
    for (int64_t p = lo; p < hi; p += R) {
      const int64_t rows = std::min(R, hi - p);
      sgemm(rows, K, OC, 1.f, dy + p * OC, OC, 1, w, 1, OC, 0.f, col.get(), K, 1, nullptr, Act::Linear, 0.f);
      col2im_add(g, col.get(), p, rows, dx);
    }
  });
}

void conv2d_backward_kernel(const WindowGeom& g, const float* x, const float* dy, float* dw) {
  const int64_t M = g.out_pixels(), K = g.patch(), OC = g.oc;
  if (K == 0 || OC == 0) return;
  if (M == 0) {
    std::memset(dw, 0, sizeof(float) * K * OC);
    return;
  }
#ifdef PYNN_X86_64
  if (conv_dw_path(g) == ConvPath::Direct) return conv2d_backward_kernel_direct(g, x, dy, dw);
#endif
  if (conv_dw_path(g) == ConvPath::ImplicitGemm && conv2d_backward_kernel_igemm(g, x, dy, dw)) return;
  const int64_t R = conv_block_rows(K);
  const int T = threads_for(M, R);
  // Thread 0 accumulates into dw, the others into private partials summed at the end.
  std::unique_ptr<float[]> partial = T > 1 ? scratch((T - 1) * K * OC) : nullptr;
  int used = 1;
  parallel_team_checked(T, [&](int t, int nt) {
    if (t == 0) used = nt;
    float* acc = t == 0 ? dw : partial.get() + (t - 1) * K * OC;
    const int64_t lo = M * t / nt, hi = M * (t + 1) / nt;
    if (hi == lo) {
      std::memset(acc, 0, sizeof(float) * K * OC);
      return;
    }
    if (g.is_pointwise()) {  // x's rows are the im2col rows: dW_t = X[lo:hi]ᵀ · dY[lo:hi], one GEMM
      sgemm(K, OC, hi - lo, 1.f, x + lo * K, 1, K, dy + lo * OC, OC, 1, 0.f, acc, OC, 1, nullptr, Act::Linear, 0.f);
      return;
    }
    auto col = scratch(std::min(R, hi - lo) * K);
    for (int64_t p = lo; p < hi; p += R) {
      const int64_t rows = std::min(R, hi - p);
      im2col(g, x, p, rows, col.get());
      sgemm(K, OC, rows, 1.f, col.get(), 1, K, dy + p * OC, OC, 1, p == lo ? 0.f : 1.f, acc, OC, 1, nullptr,
            Act::Linear, 0.f);
    }
  });
  for (int u = 1; u < used; ++u) {
    const float* src = partial.get() + (u - 1) * K * OC;
    for (int64_t i = 0; i < K * OC; ++i) dw[i] += src[i];
  }
}

void conv2d_backward_bias(const float* dy, int64_t m, int64_t oc, float* db) { nn::bias_grad(dy, db, m, oc); }

}  // namespace pynn
