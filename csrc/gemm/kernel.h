// The microkernel contract shared by every ISA (internal to csrc/gemm).
//
//   c[0..MR) x [0..NR) = alpha * Apanel . Bpanel + beta * c + bias
//
// Apanel: k x MR packed k-major (MR floats per k step); Bpanel: k x NR packed
// (NR floats per k step). c is a full MR x NR tile with row stride rs_c and
// unit column stride (edges and strided C go through a local tile in gemm.cpp).
// beta == 0: c is not read. bias: NR floats or nullptr.
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "gemm/config.h"

namespace pynn {
namespace gemm {

using MicroKernel = void (*)(int64_t k, float alpha, const float* a, const float* b,
                             float beta, float* c, int64_t rs_c, const float* bias);
// Unpacked-A variant: A rows a + r * rs_a, r in [0, MR), k contiguous floats
// each; B rows b + p * rs_b, p in [0, k), NR contiguous floats each.
using MicroKernelUA = void (*)(int64_t k, float alpha, const float* a, int64_t rs_a,
                               const float* b, int64_t rs_b, float beta, float* c,
                               int64_t rs_c, const float* bias);
using MicroKernelUAEdge = void (*)(int64_t mr, int64_t k, float alpha, const float* a,
                                   int64_t rs_a, const float* b, float beta, float* c,
                                   int64_t rs_c, const float* bias);

void sgemm_generic_6x16(int64_t k, float alpha, const float* a, const float* b,
                        float beta, float* c, int64_t rs_c, const float* bias);
#ifdef PYNN_X86_64
void sgemm_avx2_6x16(int64_t k, float alpha, const float* a, const float* b,
                     float beta, float* c, int64_t rs_c, const float* bias);
// The same kernel reading A unpacked from 6 rows a + r * rs_a (unit column
// stride) and B from k rows of NR floats rs_b apart (packed: rs_b = NR).
void sgemm_avx2_6x16_ua(int64_t k, float alpha, const float* a, int64_t rs_a, const float* b,
                        int64_t rs_b, float beta, float* c, int64_t rs_c, const float* bias);
// Rows [0, mr) (1 <= mr < MR) of the same, reading A in place and packed B
// (NR floats per k step); writes only rows [0, mr) of the 16-wide tile c.
void sgemm_avx2_ua_edge(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a,
                        const float* b, float beta, float* c, int64_t rs_c, const float* bias);
// act_forward on an mr x nr tile (unit column stride, rows rs apart), 8-wide.
void act_tile_avx2(Act act, float* c, int64_t rs, int64_t mr, int64_t nr, float alpha);
// Full NR panels [p0, p1) of a row-major B block, k rows rs_b apart, packed row by row.
void pack_b_rowmajor_avx2(int64_t kc, const float* b, int64_t rs_b, float* dst, int64_t p0,
                          int64_t p1);
// One full NR panel of a column-major B (unit row stride, columns cs_b apart).
void pack_b_panel16_colmajor_avx2(int64_t kc, const float* b, int64_t cs_b, float* dst);
// A full 6-row panel of row-major A (cs_a == 1), k-major (pack_avx2.cpp).
void pack_a_panel6_rowmajor_avx2(int64_t kc, const float* a, int64_t rs_a, float* dst);
// Whole small product without packing (B must have unit column stride; bias
// is n floats). Computes exactly what sgemm documents.
void sgemm_avx2_small(int64_t m, int64_t n, int64_t k, float alpha,
                      const float* a, int64_t rs_a, int64_t cs_a,
                      const float* b, int64_t rs_b,
                      float beta, float* c, int64_t rs_c, int64_t cs_c,
                      const float* bias, Act act, float act_alpha);
#endif

// Packing (pack.cpp). Both zero-pad the edge panels to full MR / NR width so the
// microkernel only ever sees full tiles.
// A block rows [0, mc) x cols [0, kc) of the strided A -> ceil(mc/MR) panels of kc*MR.
void pack_a(int64_t mc, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, float* dst);
// B block rows [0, kc) x cols [0, nc) of the strided B -> ceil(nc/NR) panels of kc*NR.
void pack_b(int64_t kc, int64_t nc, const float* b, int64_t rs_b, int64_t cs_b, float* dst);
// Only NR panels [p0, p1) of the block (for cooperative packing by several threads).
void pack_b_panels(int64_t kc, int64_t nc, const float* b, int64_t rs_b, int64_t cs_b,
                   float* dst, int64_t p0, int64_t p1);
void pack_a_panels(int64_t mc, int64_t kc, const float* a, int64_t rs_a, int64_t cs_a,
                   float* dst, int64_t p0, int64_t p1);

}  // namespace gemm
}  // namespace pynn
