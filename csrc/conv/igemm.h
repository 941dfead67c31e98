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

constexpr int kIgemmMR = 6;   // output pixels per tile (rows of the implicit A)
constexpr int kIgemmNR = 16;  // output channels per tile (= one packed kernel panel)

// y = act(conv(x, w) + bias) by implicit GEMM. Returns false (and does nothing)
// when the AVX2 kernel is not available; the caller then runs im2col + sgemm.
// Scratch: the packed kernel, K·ceil(OC/16)·16 floats (K = kh·kw·C), plus one
// run of zeros and a taps×6 pointer table per thread.
bool conv2d_forward_igemm(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                          float act_alpha);

// dx = conv2d_backward_input(dy, w) by the same implicit GEMM over dy (stride 1 only:
// returns false for strides > 1, narrow C or when AVX2 is off). Writes every dx cell.
// Scratch: the flipped, transposed kernel, kh·kw·OC·ceil(C/16)·16 floats.
bool conv2d_backward_input_igemm(const WindowGeom& g, const float* dy, const float* w, float* dx);

// AVX2 kernel available and not switched off (PYNN_CONV_IGEMM=0).
bool igemm_enabled();

#ifdef PYNN_X86_64
// One mr×nr (≤ 6×16) tile of C, row stride rs_c, unit column stride:
//   c[r][q] (+)= Σ_t Σ_{j<run} ind[t·6+r][j] · b[(t·run+j)·16 + q]
// ind: taps×6 row pointers, each readable for `run` floats (rows ≥ mr may point
// anywhere readable, e.g. at zeros); b: taps·run × 16 packed kernel rows.
// accumulate: add to c (a later pass over more taps) instead of overwriting it.
// bias != nullptr marks the last pass: add bias[0..16) then apply act.
// Lanes and rows outside mr×nr are neither read nor written.
void igemm_avx2_6x16(int64_t taps, int64_t run, const float* const* ind, const float* b, float* c, int64_t rs_c,
                     int mr, int nr, bool accumulate, const float* bias, Act act, float act_alpha);
#endif

}  // namespace pynn
