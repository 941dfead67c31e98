// Implicit-GEMM (indirect) convolution forward, NHWC: the im2col matrix is never
// built. A 6-pixel × 16-channel output tile is computed straight from the input
// through an indirection table of row pointers, one per (tap, pixel): with NHWC
// each tap of an output pixel is a contiguous run of C floats (kw·C when the
// whole kernel row lies inside the image), and a padded tap points at a run of
// zeros. Only the kernel is packed (16-channel panels, once per call). Same idea
// as XNNPACK's IGEMM / Dukhan's "Indirect Convolution Algorithm".
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "conv/geometry.h"

namespace pynn {

struct ConvPanels;

// y = act(conv(x, w) + bias) by implicit GEMM. Returns false (and does nothing)
// when the AVX2 kernel is not available; the caller then runs im2col + sgemm.
// Scratch: the packed kernel, K·ceil(OC/16)·16 floats (K = kh·kw·C), plus one
// run of zeros and a taps×6 pointer table per thread.
// pre: the kernel and bias already packed (conv/panels.h), or null to pack them here.
bool conv2d_forward_igemm(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                          float act_alpha, const ConvPanels* pre = nullptr);

// dx = conv2d_backward_input(dy, w) by the same implicit GEMM over dy (stride 1 only:
// returns false for strides > 1, narrow C or when AVX2 is off). Writes every dx cell.
// Scratch: the flipped, transposed kernel (kh·kw·OC·C floats) and its panels, kh·kw·OC·ceil(C/16)·16 floats.
bool conv2d_backward_input_igemm(const WindowGeom& g, const float* dy, const float* w, float* dx);

// dw (kh, kw, C, OC) = Σ_p im2col(x)[p]ᵀ · dy[p] by implicit GEMM (any stride, dilation,
// padding): 6 output channels × 16 k tiles read x through a per-pixel pointer table, no
// im2col block. Threads take (pixel chunk, k-tile group) units fixed by the shape and the
// chunks' partials are added in chunk order, so the result is bitwise independent of the
// thread count. Returns false (nothing written) when AVX2 is off or the runs are short.
// Scratch: one partial dW (K·ceil(OC/6)·6 floats) per pixel chunk (at most 8), and per thread
// a pointer table of kDwtBlock pixels × taps and the block's packed dy.
bool conv2d_backward_kernel_igemm(const WindowGeom& g, const float* x, const float* dy, float* dw);

// Shapes whose weight gradient takes the implicit GEMM: wider than the small-channel kernels,
// with runs as long as the forward's.
bool igemm_dw_applies(const WindowGeom& g);

// The forward's runs (C, or kw·C when kernel rows merge) are long enough to beat im2col.
bool igemm_forward_applies(const WindowGeom& g);

// AVX2 kernel available and not switched off (PYNN_CONV_IGEMM=0).
bool igemm_enabled();

// The 6x16 microkernel is gemm::avx2::igemm_6x16 (gemm/kernels/avx2/).

}  // namespace pynn
