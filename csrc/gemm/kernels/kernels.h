// The microkernels under the GEMM frame (BLIS's split: gemm/ is the frame,
// gemm/kernels/<isa>/ the per-ISA kernels), and their contract.
//
//   sgemm_6x16: c[0..MR) x [0..NR) = alpha * Apanel . Bpanel + beta * c + bias
//
// Apanel: k x MR packed k-major (MR floats per k step); Bpanel: k x NR packed
// (NR floats per k step). c is a full MR x NR tile with row stride rs_c and
// unit column stride (edges and strided C go through a local tile in gemm.cpp).
// beta == 0: c is not read. bias: NR floats or nullptr.
// act_tile: the fused activation on a stored mr x nr tile (act_tile_impl.h).
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "common/dispatch.h"
#include "gemm/config.h"

namespace pynn::gemm {

using MicroKernel = void (*)(int64_t k, float alpha, const float* a, const float* b, float beta, float* c,
                             int64_t rs_c, const float* bias);
// Unpacked-A variant: A rows a + r * rs_a, r in [0, MR), k contiguous floats
// each; B rows b + p * rs_b, p in [0, k), NR contiguous floats each.
using MicroKernelUA = void (*)(int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, int64_t rs_b,
                               float beta, float* c, int64_t rs_c, const float* bias);
using MicroKernelUAEdge = void (*)(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a,
                                   const float* b, int64_t rs_b, float beta, float* c, int64_t rs_c,
                                   const float* bias);
using ActTile = void (*)(Act act, float* c, int64_t rs, int64_t mr, int64_t nr, float alpha);

PYNN_ISA_DECLARE(
    void sgemm_6x16(int64_t k, float alpha, const float* a, const float* b, float beta, float* c, int64_t rs_c,
                    const float* bias);
    // act_forward on an mr x nr tile (unit column stride, rows rs apart).
    void act_tile(Act act, float* c, int64_t rs, int64_t mr, int64_t nr, float alpha);)

namespace avx2 {
// The 6x16 kernel reading A unpacked from 6 rows a + r * rs_a (unit column
// stride) and B from k rows of NR floats rs_b apart (packed: rs_b = NR).
void sgemm_6x16_ua(int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, int64_t rs_b, float beta,
                   float* c, int64_t rs_c, const float* bias);
// Rows [0, mr) (1 <= mr < MR) of the same, reading A in place and packed B
// (NR floats per k step); writes only rows [0, mr) of the 16-wide tile c.
void sgemm_ua_edge(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, float beta,
                   float* c, int64_t rs_c, const float* bias);
// The same with B read from k rows of NR floats rs_b apart (in place: a row-major B).
void sgemm_ua_edge_rs(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a, const float* b,
                      int64_t rs_b, float beta, float* c, int64_t rs_c, const float* bias);
// Full NR panels [p0, p1) of a row-major B block, k rows rs_b apart, packed row by row.
void pack_b_rowmajor(int64_t kc, const float* b, int64_t rs_b, float* dst, int64_t p0, int64_t p1);
// One full NR panel of a column-major B (unit row stride, columns cs_b apart).
void pack_b_panel16_colmajor(int64_t kc, const float* b, int64_t cs_b, float* dst);
// A full 6-row panel of row-major A (cs_a == 1), k-major.
void pack_a_panel6_rowmajor(int64_t kc, const float* a, int64_t rs_a, float* dst);

// The implicit-GEMM convolution's kernel (conv/igemm.cpp is its frame): one
// mr x nr (<= 6 x 16) tile of C, row stride rs_c, unit column stride:
//   c[r][q] (+)= sum_t sum_{j<run} ind[t*6+r][j] * b[(t*run+j)*16 + q]
// ind: taps x 6 row pointers, each readable for `run` floats (rows >= mr may point
// anywhere readable, e.g. at zeros); b: taps*run x 16 packed kernel rows.
// accumulate: add to c (a later pass over more taps) instead of overwriting it.
// bias != nullptr marks the last pass: add bias[0..16) then apply act.
// Lanes and rows outside mr x nr are neither read nor written.
void igemm_6x16(int64_t taps, int64_t run, const float* const* ind, const float* b, float* c, int64_t rs_c, int mr,
                int nr, bool accumulate, const float* bias, Act act, float act_alpha);

// The small-matrix driver (gemm/small_avx2.cpp): the whole product on one thread without
// packing A (B is read in place when cs_b == 1, else packed; bias is n floats). Computes
// exactly what sgemm documents.
void sgemm_small(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                 const float* b, int64_t rs_b, int64_t cs_b, float beta, float* c, int64_t rs_c, int64_t cs_c, const float* bias,
                 Act act, float act_alpha);
}  // namespace avx2

}  // namespace pynn::gemm
