// AVX2 + FMA 6x16 microkernel (this file alone is compiled with -mavx2 -mfma;
// it is only called after CPUID dispatch says the CPU has them).
//
// Register plan (16 ymm): 12 accumulators (6 rows x 2 vectors of 8 columns),
// 2 for the current k step of packed B, 2 for broadcasts of A. Each k step is
// 2 loads + 6 broadcasts + 12 FMAs; 12 independent FMA chains cover the 2 FMA
// pipes x 4-cycle latency of Zen 3. k is unrolled by 4 and packed A is
// prefetched ahead so the broadcasts hit L1. The epilogue (alpha, beta, bias)
// is intrinsics.
#include <immintrin.h>

#define PYNN_ISA avx2
#include "gemm/kernels/act_tile_impl.h"
#include "gemm/kernels/avx2/store_avx2.h"

namespace pynn::gemm::avx2 {

void sgemm_6x16(int64_t k, float alpha, const float* a, const float* b,
                     float beta, float* c, int64_t rs_c, const float* bias) {
  // C is written once at the end: start pulling its rows in now, both cache lines of each
  // (a numpy array is 16-byte aligned, so a 64-byte tile row usually spans two).
  for (int r = 0; r < MR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * rs_c), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * rs_c + NR - 1), _MM_HINT_T0);
  }

  alignas(32) float acc[MR * NR];
  int64_t k4 = k / 4, kr = k % 4;
  // The k loop is inline assembly: g++ 12 spills accumulators when it
  // allocates the 16 ymm registers itself for this kernel. ymm4..ymm15 hold
  // C (row r: ymm(4+2r) columns 0-7, ymm(5+2r) columns 8-15), ymm0/1 the k step
  // of B, ymm2/3 alternate broadcasts of A.
  __asm__ volatile(
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
      "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
      "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
      "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
      "test %[k4], %[k4]\n\t"
      "je 2f\n\t"
      ".p2align 4\n\t"
      "1:\n\t"
      "prefetcht0 256(%[a])\n\t"
      "vmovups 0(%[b]), %%ymm0\n\t"
      "vmovups 32(%[b]), %%ymm1\n\t"
      "vbroadcastss 0(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 4(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 8(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 12(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 16(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 20(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "vmovups 64(%[b]), %%ymm0\n\t"
      "vmovups 96(%[b]), %%ymm1\n\t"
      "vbroadcastss 24(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 28(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 32(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 36(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 40(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 44(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "prefetcht0 320(%[a])\n\t"
      "vmovups 128(%[b]), %%ymm0\n\t"
      "vmovups 160(%[b]), %%ymm1\n\t"
      "vbroadcastss 48(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 52(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 56(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 60(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 64(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 68(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "vmovups 192(%[b]), %%ymm0\n\t"
      "vmovups 224(%[b]), %%ymm1\n\t"
      "vbroadcastss 72(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 76(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 80(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 84(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 88(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 92(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "add $96, %[a]\n\t"
      "add $256, %[b]\n\t"
      "dec %[k4]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[kr], %[kr]\n\t"
      "je 4f\n\t"
      "3:\n\t"
      "vmovups 0(%[b]), %%ymm0\n\t"
      "vmovups 32(%[b]), %%ymm1\n\t"
      "vbroadcastss 0(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 4(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 8(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 12(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 16(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 20(%[a]), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "add $24, %[a]\n\t"
      "add $64, %[b]\n\t"
      "dec %[kr]\n\t"
      "jnz 3b\n\t"
      "4:\n\t"
      "vmovups %%ymm4, 0(%[acc])\n\t"
      "vmovups %%ymm5, 32(%[acc])\n\t"
      "vmovups %%ymm6, 64(%[acc])\n\t"
      "vmovups %%ymm7, 96(%[acc])\n\t"
      "vmovups %%ymm8, 128(%[acc])\n\t"
      "vmovups %%ymm9, 160(%[acc])\n\t"
      "vmovups %%ymm10, 192(%[acc])\n\t"
      "vmovups %%ymm11, 224(%[acc])\n\t"
      "vmovups %%ymm12, 256(%[acc])\n\t"
      "vmovups %%ymm13, 288(%[acc])\n\t"
      "vmovups %%ymm14, 320(%[acc])\n\t"
      "vmovups %%ymm15, 352(%[acc])\n\t"
      : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [kr] "+r"(kr)
      : [acc] "r"(acc)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");

  store_tile(acc, MR, alpha, beta, c, rs_c, bias);
}

// The same 6x16 kernel reading A unpacked: rows a, a + rs_a, ..., a + 5 rs_a of
// a row-major A (unit column stride), k contiguous floats each, and B as k rows
// of 16 contiguous floats, rs_b apart (rs_b = NR for a packed micro-panel, or
// B's own row stride when B is read in place). The broadcasts come straight
// from A's rows, addressed as base + {0, 1, 2, 3} * stride from two bases so
// that only 3 pointers advance. Reads exactly rows [0, 6) x columns [0, k) of
// A and rows [0, k) x columns [0, 16) of B; the epilogue is the packed kernel's.
void sgemm_6x16_ua(int64_t k, float alpha, const float* a, int64_t rs_a, const float* b,
                        int64_t rs_b, float beta, float* c, int64_t rs_c, const float* bias) {
  for (int r = 0; r < MR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * rs_c), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * rs_c + NR - 1), _MM_HINT_T0);
  }
  alignas(32) float acc[MR * NR];
  int64_t k4 = k / 4, kr = k % 4;
  const int64_t rs = rs_a * static_cast<int64_t>(sizeof(float));
  const int64_t rs3 = 3 * rs;
  const int64_t rsb = rs_b * static_cast<int64_t>(sizeof(float));
  const int64_t rsb3 = 3 * rsb;
  const float* a4 = a + 4 * rs_a;
  __asm__ volatile(
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
      "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
      "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
      "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
      "test %[k4], %[k4]\n\t"
      "je 2f\n\t"
      ".p2align 4\n\t"
      "1:\n\t"
      "vmovups (%[b]), %%ymm0\n\t"
      "vmovups 32(%[b]), %%ymm1\n\t"
      "vbroadcastss 0(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 0(%[a],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 0(%[a],%[rs],2), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 0(%[a],%[rs3],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 0(%[a4]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 0(%[a4],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "vmovups (%[b],%[rsb],1), %%ymm0\n\t"
      "vmovups 32(%[b],%[rsb],1), %%ymm1\n\t"
      "vbroadcastss 4(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 4(%[a],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 4(%[a],%[rs],2), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 4(%[a],%[rs3],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 4(%[a4]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 4(%[a4],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "vmovups (%[b],%[rsb],2), %%ymm0\n\t"
      "vmovups 32(%[b],%[rsb],2), %%ymm1\n\t"
      "vbroadcastss 8(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 8(%[a],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 8(%[a],%[rs],2), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 8(%[a],%[rs3],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 8(%[a4]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 8(%[a4],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "vmovups (%[b],%[rsb3],1), %%ymm0\n\t"
      "vmovups 32(%[b],%[rsb3],1), %%ymm1\n\t"
      "vbroadcastss 12(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 12(%[a],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 12(%[a],%[rs],2), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 12(%[a],%[rs3],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 12(%[a4]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 12(%[a4],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "add $16, %[a]\n\t"
      "add $16, %[a4]\n\t"
      "lea (%[b],%[rsb],4), %[b]\n\t"
      "dec %[k4]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[kr], %[kr]\n\t"
      "je 4f\n\t"
      "3:\n\t"
      "vmovups (%[b]), %%ymm0\n\t"
      "vmovups 32(%[b]), %%ymm1\n\t"
      "vbroadcastss 0(%[a]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
      "vbroadcastss 0(%[a],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
      "vbroadcastss 0(%[a],%[rs],2), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
      "vbroadcastss 0(%[a],%[rs3],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
      "vbroadcastss 0(%[a4]), %%ymm2\n\t"
      "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
      "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
      "vbroadcastss 0(%[a4],%[rs],1), %%ymm3\n\t"
      "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
      "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
      "add $4, %[a]\n\t"
      "add $4, %[a4]\n\t"
      "add %[rsb], %[b]\n\t"
      "dec %[kr]\n\t"
      "jnz 3b\n\t"
      "4:\n\t"
      "vmovups %%ymm4, 0(%[acc])\n\t"
      "vmovups %%ymm5, 32(%[acc])\n\t"
      "vmovups %%ymm6, 64(%[acc])\n\t"
      "vmovups %%ymm7, 96(%[acc])\n\t"
      "vmovups %%ymm8, 128(%[acc])\n\t"
      "vmovups %%ymm9, 160(%[acc])\n\t"
      "vmovups %%ymm10, 192(%[acc])\n\t"
      "vmovups %%ymm11, 224(%[acc])\n\t"
      "vmovups %%ymm12, 256(%[acc])\n\t"
      "vmovups %%ymm13, 288(%[acc])\n\t"
      "vmovups %%ymm14, 320(%[acc])\n\t"
      "vmovups %%ymm15, 352(%[acc])\n\t"
      : [a] "+r"(a), [a4] "+r"(a4), [b] "+r"(b), [k4] "+r"(k4), [kr] "+r"(kr)
      : [acc] "r"(acc), [rs] "r"(rs), [rs3] "r"(rs3), [rsb] "r"(rsb), [rsb3] "r"(rsb3)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  store_tile(acc, MR, alpha, beta, c, rs_c, bias);
}

// The last mr < 6 rows of a row panel, read in place like the kernel above, so
// that m = 64 or 128 (6 x 10 + 4, 6 x 21 + 2) wastes no FMAs on padding rows.
// With at most 10 accumulators g++ keeps everything in registers, so this one
// is intrinsics. Writes rows [0, mr) of the 16-wide tile c only.
template <int R>
static void ua_rows(int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, int64_t rs_b,
                    float beta, float* c, int64_t rs_c, const float* bias) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 2 <= k; p += 2) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    const __m256 b2 = _mm256_loadu_ps(b + rs_b), b3 = _mm256_loadu_ps(b + rs_b + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * rs_a + p);
      acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
    }
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * rs_a + p + 1);
      acc0[r] = _mm256_fmadd_ps(x, b2, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(x, b3, acc1[r]);
    }
    b += 2 * rs_b;
  }
  if (p < k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * rs_a + p);
      acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
    }
  }
  store_rows(acc0, acc1, R, alpha, beta, c, rs_c, bias);
}

void sgemm_ua_edge_rs(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a, const float* b,
                      int64_t rs_b, float beta, float* c, int64_t rs_c, const float* bias) {
  switch (mr) {
    case 1: return ua_rows<1>(k, alpha, a, rs_a, b, rs_b, beta, c, rs_c, bias);
    case 2: return ua_rows<2>(k, alpha, a, rs_a, b, rs_b, beta, c, rs_c, bias);
    case 3: return ua_rows<3>(k, alpha, a, rs_a, b, rs_b, beta, c, rs_c, bias);
    case 4: return ua_rows<4>(k, alpha, a, rs_a, b, rs_b, beta, c, rs_c, bias);
    default: return ua_rows<5>(k, alpha, a, rs_a, b, rs_b, beta, c, rs_c, bias);
  }
}

void sgemm_ua_edge(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a,
                        const float* b, float beta, float* c, int64_t rs_c, const float* bias) {
  sgemm_ua_edge_rs(mr, k, alpha, a, rs_a, b, NR, beta, c, rs_c, bias);
}

}  // namespace pynn::gemm::avx2

