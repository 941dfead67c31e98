// Block sizes of the packed SGEMM, per ISA. One table, read by gemm.cpp; the
// microkernels only know MR x NR.
//
// Why these numbers (Zen 3: L1d 32 KiB, L2 512 KiB private, L3 32 MiB shared):
//  - MR x NR = 6 x 16: 12 ymm accumulators + 2 ymm of B + 1-2 broadcasts of A fit
//    the 16 ymm registers, and 12 independent FMA chains cover 2 FMA pipes x
//    4-cycle latency (needs >= 8). Same tile as BLIS' haswell/zen kernels.
//  - KC = 256: one packed B micro-panel (KC x NR x 4 B = 16 KiB) plus one packed
//    A micro-panel (KC x MR x 4 B = 6 KiB) stay in the 32 KiB L1d while the
//    microkernel streams through them.
//  - MC = 144: the packed A block (MC x KC x 4 B = 144 KiB) stays in the private
//    L2 (512 KiB) and is reused across all NR panels of B.
//  - NC = 4080: the packed B block (KC x NC x 4 B ~ 4 MiB) sits in the shared L3
//    and is reused by every MC block (and by every thread in the shared mode).
// The generic kernel uses the same tile so packing is shared code; its blocks
// are the same because they only depend on the caches, not on the ISA.
// On the Zen 4 reference machine (1 MiB L2, clock 3.64 GHz) these blocks were swept again
// (1 thread, CPU time, 1024^3 / 2048^3 / 512^3 / 784x128x256 with A = X^T): MC x KC =
// 144x256, 288x256, 144x320, 240x320 and 192x384 all landed within the +-3% run-to-run
// noise of a machine at load ~10 (95-105 GFLOPS), so the Zen 3 values stay; the 6x16
// kernel itself reaches 113-115 GFLOPS with its panels in L1 (98-99% of the core's 116.5).
//
// These blocks serve the classic (BLIS-order, A and B packed) path, which the
// AVX2 build takes for wide B (n > kUnpackedAMaxN per thread, e.g. square
// products) or a transposed A. Narrow B with row-major A -- the Dense and
// im2col-conv shapes -- takes the unpacked-A path instead (gemm.cpp,
// macro_kernel_ua), whose block is sized differently:
//  - one 6-row micro-panel of A, read in place, stays in L1 (KC x 24 B, at
//    most ~24 KiB) while it meets every B micro-panel of the block;
//  - the packed B block (KC x n x 4 B) streams from L2 and is sized to
//    kUnpackedABBytes = 320 KiB (of the 512 KiB L2, leaving room for C and
//    the A rows), with KC raised up to all of K: K = 576 x n = 64 runs as one
//    block (C written once instead of K / 256 read-modify-writes; the
//    conv-like 32768x576x64 went 0.97x -> 1.2x OpenBLAS), 784 x 128 as
//    2 x 392, 1152 x 128 as 2 x 576.
//  Measured (1 thread, CPU time, alternating processes): 96 KiB cost 12% on
//  32768x576x64 and 5% on 3136x1152x128; 160 and 480 KiB were within noise of
//  320 on the Dense shapes and 2-5% behind it on 3136x1152x128.
#pragma once
#include <cstdint>

namespace pynn {
namespace gemm {

constexpr int MR = 6;
constexpr int NR = 16;

struct Blocking {
  int64_t mc, kc, nc;
};

constexpr Blocking kBlockingAvx2{144, 256, 4080};
constexpr Blocking kBlockingGeneric{144, 256, 4080};

// Below this many multiply-adds (m*n*k) the whole product runs on one thread:
// forking and synchronising costs more than it saves (OpenBLAS uses 262144 too).
constexpr int64_t kSingleThreadWork = 262144;
// Up to this many multiply-adds, and when B has unit column stride, the AVX2
// path skips packing altogether (sgemm_avx2_small): A and B are then small
// enough to stay in L1/L2 as they are. Tuned with bench/gemm_table.py.
constexpr int64_t kSmallWork = 64 * 64 * 64;
// ... and k at most this: a longer B panel (k x 16 floats) no longer fits L1,
// and the unpacked path's edge copy would grow with k.
constexpr int64_t kSmallMaxK = 1024;
// Skinny products also take the unpacked path, at any size (gemm.cpp: skinny()): a
// narrow C (n <= kSkinnyMaxN, k <= kSkinnyMaxK: a classifier layer), a short one
// (m <= kSkinnyMaxM, n <= kSkinnyMaxWideN) and a narrow one with a transposed A (n <=
// kSkinnyMaxM, k <= kSkinnyMaxK: the weight gradient X^T dY of a narrow layer). The
// packed path pays a 16-wide edge panel there, or packs a transposed A that the unpacked
// path broadcasts in place. Measured (1 thread, CPU time, us, packed -> unpacked):
// 2048x256x10 (A = X^T) 470 -> 212, 512x256x10 (A = X^T) 83 -> 35, 2048x512x32 (A = X^T)
// 1252 -> 891, 4096x512x16 794 -> 730, 10x784x256 55 -> 49, 32x256x512 109 -> 104,
// 32x1024x256 212 -> 200. Outside these bounds it lost: k = 1024 with A = X^T
// (4096x1024x10 4008 -> 6135), n >= 1024 (16x512x1024 280 -> 296, 32x1024x4096 4.4 ->
// 13 ms: B panels of k rows far apart leave L1), 32 row-major columns (4096x256x32 670
// -> 772) and 64 rows (64x784x128 125 -> 131).
constexpr int64_t kSkinnyMaxN = 16;
constexpr int64_t kSkinnyMaxK = 512;
constexpr int64_t kSkinnyMaxM = 32;
constexpr int64_t kSkinnyMaxWideN = 512;
// With at least this many rows of C per thread, the threads take independent
// row blocks of C, each packing its own B (see gemm.cpp): the duplicate
// packing is then < ~5% of the thread's work. With fewer rows, and column
// panels that deal evenly, they take column blocks (no duplicate work at all
// on a row-major A, which every thread reads in place).
constexpr int64_t kPrivateBRows = 192;
// Unpacked-A path (AVX2, row-major A): used when the packed B block of one
// thread is at most this many columns (padded to NR) wide, so that KC >= 256
// still fits kUnpackedABBytes; its KC is then raised until the block holds
// kUnpackedABBytes (see the top of this file).
constexpr int64_t kUnpackedAMaxN = 320;
constexpr int64_t kUnpackedABBytes = 320 * 1024;
// Independent row blocks of C with a narrow B are dealt to the threads
// dynamically, about this many per thread, so a thread descheduled on a busy
// machine does not hold up the product; row blocks keep at least
// kMinChunkRows rows, since each block packs its own copy of B.
constexpr int64_t kChunksPerThread = 2;
constexpr int64_t kMinChunkRows = 512;
// Column blocks (small m) keep at least this many NR panels (32 columns): each
// block reads all of A once more.
constexpr int64_t kMinChunkPanels = 2;
// Work each extra thread should get at least (m*n*k units).
constexpr int64_t kThreadGrain = 131072;

}  // namespace gemm
}  // namespace pynn
