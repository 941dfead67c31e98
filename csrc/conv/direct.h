// Direct convolution kernels (no im2col matrix, not even a block of it), NHWC:
//
//  * small-channel forward (C_in <= kSmallChannels): a 6-pixel x 16-channel tile
//    reads its taps straight from x. Pixels of one output row are sw·C floats apart
//    in x, so a tap of all six pixels is one base offset plus a constant stride: no
//    per-pixel pointer table (its construction costs as much as the 9-36 FMAs per
//    pixel of a first layer), no copy. Tiles whose windows cross the left/right
//    border pack their 6 × K patch with zeros (a few pixels per row).
//  * weight gradient (any C, stride, dilation, padding; dispatched for small C only,
//    see conv_dw_path):
//    dW[k, o] = Σ_p x_k(p) · dy[p, o] as a 6 (consecutive k) × 16 (o) register tile
//    accumulated over runs of output rows. x_k(p) of the pixels of an output row is
//    again a constant stride (sw·C) from a base, and the pixels where tap k is
//    outside the image form a prefix and a suffix of the row, done by a short loop.
//
// Both are AVX2+FMA kernels (conv/direct_avx2.cpp). Which path a conv takes is
// decided in one place, conv_forward_path / conv_dw_path (conv/conv2d.cpp).
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "conv/geometry.h"

namespace pynn {

struct ConvPanels;

// Input channels up to which the forward takes the small-channel kernel.
constexpr int64_t kSmallChannels = 4;

// y = act(conv(x, w) + bias), small-channel kernel. Requires use_avx2().
// pre: the kernel and bias already packed (conv/panels.h), or null to pack them here.
void conv2d_forward_small_c(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y,
                            Act act, float act_alpha, const ConvPanels* pre = nullptr);
// conv2d_max_pool_forward's register-fused case: the small-channel kernel with every window inside
// the image (no padding reaches a window), OC a multiple of 16, act linear or relu, and a 2x2
// stride-2 max pool without padding. Then conv2d_max_pool_small_c computes y (the pooled output)
// with the conv's 2x2 blocks in registers: bitwise the values of conv2d_forward then
// max_pool2d_forward, for any thread count (each pooled pixel is computed by one thread).
bool small_c_pool_applies(const WindowGeom& g, const WindowGeom& pg, Act act);
void conv2d_max_pool_small_c(const WindowGeom& g, const WindowGeom& pg, const float* x, const ConvPanels& pk,
                             float* y, Act act);
// dw (kh, kw, C, OC) of conv2d, direct. Requires use_avx2(); writes every dw cell.
void conv2d_backward_kernel_direct(const WindowGeom& g, const float* x, const float* dy, float* dw);

namespace conv::avx2 {
// c[r][q] = act(bias[q] + Σ_{t<nk} a[r][off[t]] · b[brow[t]·16 + q]) for r < mr, q < nr: a[r] is
// pixel r's window origin (6 pointers; rows r >= mr must repeat a readable one, e.g. a[mr-1]);
// b: packed 16-wide rows.
void small_c_6x16(int64_t nk, const int64_t* off, const int64_t* brow, const float* const* a, const float* b,
                  float* c, int64_t rs_c, int mr, int nr, const float* bias, Act act, float act_alpha);
// small_c_6x16 over ntiles full tiles (mr = 6) and panels [0, npanels) (nr = 16 each), in one call:
// tile t's pixel r has window origin a[6t + r] and output row y + (6t + r)·rs_y; packed panel jp
// is nk rows of 16 at packed + jp·nk·16 (row k is tap k); bias holds npanels·16 floats.
void small_c_tiles_6x16(int64_t ntiles, const float* const* a, int64_t nk, const int64_t* off, const float* packed,
                        int64_t npanels, const float* bias, float* y, int64_t rs_y, Act act, float act_alpha);
// One output row of conv (small-channel, every window inside, act linear or relu) + 2x2 stride-2
// max pooling, the conv output never stored: pooled pixel pw (of npw) of y (rows of npanels·16
// floats) is the NaN-propagating max over the conv pixels with window origins p00 = a + 2·pw·dcol,
// p00 + dcol, p00 + drow, p00 + drow + dcol (in that order, as max_pool2d_forward folds them) of
// act(bias + Σ_k p[off[k]] · packed row k); panels as small_c_tiles_6x16.
void small_c_pool2_row(int64_t npw, const float* a, int64_t dcol, int64_t drow, int64_t nk, const int64_t* off,
                       const float* packed, int64_t npanels, const float* bias, float* y, bool relu);
// acc[r·rs_acc + q] += Σ_{i<rows} Σ_{j<cols} a[r][i·a_row[r] + j·a_col] · b[i·b_row + j·b_col + q]
// for r < mr, q < nr (rows r >= mr must still point at readable memory: pass a[mr-1]).
void dw_6x16(int64_t rows, int64_t cols, const float* const* a, const int64_t* a_row, int64_t a_col,
             const float* b, int64_t b_row, int64_t b_col, float* acc, int64_t rs_acc, int mr, int nr);
// Weight gradient tile of the implicit GEMM (conv2d_backward_kernel_igemm, conv/igemm.cpp), transposed:
// acc[r·16 + q] += Σ_{p<np} dy[p·rs_dy + r] · ptr[p][off + q] for r < 6, q < nr (acc: 6 rows of 16,
// rows r >= mr get row mr-1's sums, lanes q >= nr stay 0 + whatever acc held). Lanes past nr of
// ptr[p] + off are never read.
void dwt_6x16(int64_t np, const float* const* ptr, int64_t off, const float* dy, int64_t rs_dy, float* acc, int mr,
              int nr);
}  // namespace conv::avx2

}  // namespace pynn
