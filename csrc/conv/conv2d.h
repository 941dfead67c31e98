// NHWC 2-D convolution as im2col + GEMM, forward and both backwards.
// x (N, H, W, C), w (kh, kw, C, OC) = a (K = kh·kw·C, OC) row-major matrix,
// y / dy (N, OH, OW, OC) = an (M = N·OH·OW, OC) matrix. All C-contiguous float32,
// shapes already validated by the binding (kernels trust WindowGeom).
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "conv/geometry.h"

namespace pynn {

// The kernels a conv runs, chosen by shape in one place (conv2d.cpp):
//   Pointwise     1x1 stride 1 unpadded: x is already the im2col matrix, one GEMM
//   SmallChannel  forward with C_in <= kSmallChannels (conv/direct.h), AVX2
//   ImplicitGemm  forward of other windows and weight gradient with C_in > kSmallChannels
//                 (conv/igemm.h), AVX2, runs of >= 8 floats
//   Winograd      forward of 3x3 stride-1 convs with C_in, C_out >= kWinogradMinChannels:
//                 F(2x2, 3x3), 16 multiplies per 2x2 tile instead of 36 (conv/winograd.h); portable
//   Direct        weight gradient with C_in <= kSmallChannels (conv/direct.h), AVX2
//   Im2col        im2col blocks + sgemm: the portable path (and PYNN_CONV_IGEMM=0)
enum class ConvPath { Pointwise, SmallChannel, ImplicitGemm, Winograd, Direct, Im2col };
ConvPath conv_forward_path(const WindowGeom& g);
ConvPath conv_dw_path(const WindowGeom& g);
// The input gradient runs the Winograd forward (3x3 stride 1, C and OC >= 16: dx is itself a 3x3
// stride-1 conv of dy with the kernel flipped and transposed, padding 2 - p). Otherwise one GEMM
// (pointwise), the implicit GEMM over dy (stride 1, AVX2) or GEMM + col2im.
bool conv_dx_winograd(const WindowGeom& g);
const char* conv_path_name(ConvPath p);

// y = act(im2col(x) · W + bias). 1x1/stride 1/unpadded: one GEMM on x viewed as (M, C);
// other windows: the implicit GEMM of conv/igemm.h when the CPU has AVX2 (im2col is then
// never formed), else im2col blocks + sgemm. PYNN_CONV_IGEMM=0 forces the im2col path.
void conv2d_forward(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                    float act_alpha);
// y = max_pool(act(conv(x, w) + bias)) for inference (models/plan.py fuses Conv2D → MaxPooling2D)
// and, with idx, for training (models/fit_loop.py's conv stack: a ReLU conv before a max pool
// needs neither the conv output nor x's pooling again, only the argmax): the conv output is
// never written whole. Threads take chunks of images; each chunk is convolved on one thread
// into a scratch block sized for L2 (kFusedChunkBytes) and pooled from there, the kernel packed
// once for all chunks. pg is the pooling's geometry over the conv output (pg.n = g.n, pg.h =
// g.oh, pg.w = g.ow, pg.c = g.oc). idx (nullable, pg's output shape, kh·kw <= 256): the
// winning cell of each window, as max_pool2d_forward_argmax. Same values as the two calls.
void conv2d_max_pool_forward(const WindowGeom& g, const WindowGeom& pg, const float* x, const float* w,
                             const float* bias, float* y, Act act, float act_alpha, uint8_t* idx = nullptr);
// How conv2d_max_pool_forward runs these shapes: Registers (small-channel conv with the 2x2 pool
// on its register tiles; not when the argmax is kept), Whole (batch below two images per
// thread: conv, then pool) or Chunks.
enum class ConvPoolRoute { Registers, Whole, Chunks };
ConvPoolRoute conv_max_pool_route(const WindowGeom& g, const WindowGeom& pg, Act act, bool argmax = false);
const char* conv_pool_route_name(ConvPoolRoute r);  // "registers", "whole", "chunks"
constexpr int64_t kFusedChunkBytes = 256 * 1024;

// dx = col2im(dY · Wᵀ), computed as the Winograd forward over dy where conv_dx_winograd says so.
void conv2d_backward_input(const WindowGeom& g, const float* dy, const float* w, float* dx);
// dW = Σ_blocks im2col(x)ᵀ · dY: the implicit GEMM of conv/igemm.h (no im2col block) or the
// direct small-channel kernel where conv_dw_path picks them, else im2col blocks + sgemm.
void conv2d_backward_kernel(const WindowGeom& g, const float* x, const float* dy, float* dw);
// db[o] = Σ_rows dy[r, o] for dy an (m, oc) matrix.
void conv2d_backward_bias(const float* dy, int64_t m, int64_t oc, float* db);

// Rows of im2col scratch one thread holds: ~kColBlockBytes, at least kMinBlockRows.
// So the whole scratch of one call is at most threads · max(kColBlockBytes, kMinBlockRows·K·4 B)
// (+ (threads−1)·K·OC floats of dW partials in conv2d_backward_kernel), whatever the batch.
// The implicit-GEMM paths (forward; input gradient at stride 1) hold instead one packed
// kernel of K·ceil(OC/16)·16 floats (resp. K·ceil(C/16)·16) shared by the threads, plus
// per thread a pointer table of 4 tiles × kh·kw taps × 6 pointers and one zero run:
// 64→64 3x3 = 144 KiB + 1.7 KiB/thread, again independent of the batch.
constexpr int64_t kColBlockBytes = 512 * 1024;
constexpr int64_t kMinBlockRows = 16;
constexpr int64_t kMaxBlockRows = 4096;
int64_t conv_block_rows(int64_t patch);

}  // namespace pynn
