// Winograd F(2x2, 3x3) convolution forward, NHWC (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2015): each 2x2 output tile of each (C_in, C_out) pair
// costs 16 multiplies instead of 36, so it can beat a direct or implicit-GEMM conv that
// already runs near the FMA peak.
//
//   Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A      per 2x2 output tile, d its 4x4 input window
//
// Structure (the way fast CPU Winograd runs it):
//   * the weights U = G g Gᵀ are transformed once per call into 16 (C_in x C_out)
//     matrices, each packed for the GEMM microkernel (gemm/packed.h);
//   * output tiles are cut into blocks whose transformed inputs V (16 x tiles x C_in) and
//     products M (16 x tiles x C_out) fit L2 (kWinogradBlockBytes); V and M are never
//     formed for the whole batch. Per block: input transform (Bᵀ d B, zeros for cells
//     outside the image), 16 GEMMs M_ξ = V_ξ · U_ξ on the project's packed-B GEMM, then
//     the output transform Aᵀ m A + bias + activation, written straight into y;
//   * blocks are fixed by the shape and each is computed by one thread in one order, so
//     y is bitwise the same at any thread count; threads claim blocks (share_work).
//
// Numerics: F(2,3)'s transforms only add, subtract and halve, so the result differs from
// a direct conv by a few ulps x C_in of Σ|terms|, far inside float32's 1e-4 relative.
//
// Which convs take it is decided by conv_forward_path (conv2d.cpp) from
// winograd_applies(). The transforms are compiled per ISA (winograd_impl.h); the GEMM is
// sgemm_packed_panels, which dispatches itself, so the generic (aarch64) build runs the
// same algorithm.
#pragma once
#include <cstdint>
#include <vector>

#include "common/activation.h"
#include "common/dispatch.h"
#include "conv/geometry.h"
#include "gemm/packed.h"

namespace pynn {

// A block's V and M together take about this much (L2 is 512 KiB per core on Zen 3; the
// 16 packed U matrices stream past it, 16 KiB each for 64->64). Measured at 1 thread, CPU
// time, on 64->64 32x32, 32->64 13x13 and 128->128 16x16: 48 to 512 KiB were all within the
// noise of a loaded machine (the GEMMs are compute-bound), so the size leaves L2 room for U.
constexpr int64_t kWinogradBlockBytes = 192 * 1024;
// Channel counts from which the forward takes Winograd (winograd_applies). Below, the
// per-tile transforms cost as much as the multiplies they save.
constexpr int64_t kWinogradMinChannels = 16;

// The transformed kernel: u[ξ] is U_ξ (C_in x C_out), U_ξ[c, o] = (G g_{c,o} Gᵀ)[ξ / 4, ξ % 4]
// for the 3x3 kernel g_{c,o} = w[:, :, c, o], packed for sgemm_packed_panels. Built once per
// call; conv2d_max_pool_forward builds it once for all its chunks.
struct WinogradWeights {
  int64_t c = 0, oc = 0;
  std::vector<PackedB> u;  // 16
  WinogradWeights(int64_t c_in, int64_t c_out, const float* w);  // w (3, 3, C_in, C_out)
};

// 3x3, stride 1, dilation 1 (any padding), C_in and C_out >= kWinogradMinChannels.
bool winograd_shape_ok(const WindowGeom& g);
// Off with PYNN_CONV_WINOGRAD=0 (A/B switch for benchmarks and tests; the implicit GEMM or
// im2col then runs) and with PYNN_CONV_IGEMM=0 (the all-portable im2col reference path).
bool winograd_enabled();

// y = act(conv(x, w) + bias) for a g with winograd_shape_ok(g). bias may be null.
// pre: the transformed kernel of w, or null to transform it here.
// Scratch: 16·C_in·ceil(C_out/16)·16 floats of U, and per thread one block of ~kWinogradBlockBytes.
void conv2d_forward_winograd(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                             float act_alpha, const WinogradWeights* pre = nullptr);

namespace winograd {
// The transforms, per ISA (winograd_impl.h).
PYNN_ISA_DECLARE(
    // v[ξ·vs + c] = (Bᵀ d B)[ξ / 4, ξ % 4] for c < C, d[i][j] = src[4i + j][c].
    void input_tile(int64_t C, const float* const* src, float* v, int64_t vs);
    // For o < OC, with Y = Aᵀ m A, m[i][j] = mt[(4i + j)·ms + o]:
    // dst[2r + s][o] = act(Y[r][s] + bias[o]) (bias: OC floats, never null).
    void output_tile(int64_t OC, const float* mt, int64_t ms, const float* bias, float* const* dst, Act act,
                     float act_alpha);)
}  // namespace winograd

}  // namespace pynn
