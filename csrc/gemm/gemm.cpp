// The portable frame of the packed SGEMM (BLIS's five loops):
//
//   for jc in n, step NC        B block (KC x NC, ~4 MiB) -> shared L3
//     for pc in k, step KC      pack B block
//       for ic in m, step MC    A block (MC x KC, 144 KiB) -> private L2
//         for jr in NC, step NR   B micro-panel (16 KiB) -> L1
//           for ir in MC, step MR   microkernel: 6x16 tile of C in registers
//
// With AVX2, a row-major A and a narrow B (n <= 320 per thread: Dense layers,
// im2col convolutions) A is not packed at all: each 6-row micro-panel is read
// in place and stays in L1 while it meets all of the packed B block, which is
// sized for L2 with KC up to all of K (macro_kernel_ua, config.h).
//
// Threads (N = num_threads(), any N): C is cut into independent blocks (rows, or
// MR-row / NR-column panels; N to 2N of them) that the threads claim from a counter
// (share_work), each block solved by the single-thread algorithm with its own packed B:
// no barrier, no OpenMP team, and a thread that is late costs at most one block. KC is
// chosen once for the whole product, so the result is bit-for-bit the same at any
// thread count (every element is one FMA chain over the same KC blocks, whichever
// block and kernel -- packed or unpacked A, full or edge tile -- computes it). The
// epilogue (beta on the first KC block, bias and activation on the last) is applied
// to each tile while it is still in L1.
// Edge tiles and non-unit column strides of C go through a local MR x NR
// tile, so the kernel never reads or writes outside C. Small products
// (m*n*k <= 64^3) and skinny ones (config.h) skip all of this and run the
// unpacked AVX2 path of small_avx2.cpp (skinny ones split into row or column blocks).
#include "gemm/gemm.h"
#include "common/aligned_buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "gemm/kernels/kernels.h"
#include "gemm/pack.h"

namespace pynn {

namespace gemm {
namespace {


float* scratch_a(size_t n) { static thread_local Scratch s; return s.get(n); }
float* scratch_b(size_t n) { static thread_local Scratch s; return s.get(n); }
float* scratch_bias(size_t n) { static thread_local Scratch s; return s.get(n); }

struct Problem {
  int64_t m, n, k;
  float alpha;
  const float* a; int64_t rs_a, cs_a;
  const float* b; int64_t rs_b, cs_b;
  float beta;
  float* c; int64_t rs_c, cs_c;
  const float* bias;  // padded to a multiple of NR, or nullptr
  Act act; float act_alpha;
  MicroKernel ukr;
  ActTile act_tile;      // the activation on a finished tile (ISA-specific)
  MicroKernelUA ukr_ua;  // non-null: A is read unpacked (row-major A, full MR rows)
  MicroKernelUAEdge ukr_ua_edge;  // ... and its last mr < MR rows
  Blocking blk;
  int64_t kc;         // KC actually used (k split into equal blocks; set once per call, so
                      // every element's summation order is the same at any thread count)
  float* b_packed;    // the packed B block
};

// An mr x nr tile of C at cij through `kernel(c, rs_c)`, which stores the full
// MR x NR (or mr x NR) tile with alpha, beta and bias, then the activation on the
// last KC block. Edge tiles and non-unit column strides of C go through a local
// MR x NR tile, so the kernel never reads or writes outside C.
template <class Kernel>
inline void finish_tile(const Problem& P, float* cij, int64_t mr, int64_t nr, float beta, bool last, bool full,
                        Kernel&& kernel) {
  if (full && P.cs_c == 1) {
    kernel(cij, P.rs_c);
    if (last) P.act_tile(P.act, cij, P.rs_c, mr, nr, P.act_alpha);
    return;
  }
  alignas(64) float t[MR * NR] = {};
  if (beta != 0.f)
    for (int64_t r = 0; r < mr; ++r)
      for (int64_t q = 0; q < nr; ++q) t[r * NR + q] = cij[r * P.rs_c + q * P.cs_c];
  kernel(t, int64_t{NR});
  if (last) P.act_tile(P.act, t, NR, mr, nr, P.act_alpha);
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t q = 0; q < nr; ++q) cij[r * P.rs_c + q * P.cs_c] = t[r * NR + q];
}

// One MR x NR tile of C at (i, j) from packed panels ap, bp.
// ua_rs != 0: ap points at row i of the unpacked A block (rows ua_rs apart, mr == MR)
// and bp at k rows of NR floats rs_bp apart (only the unpacked-A kernel takes rs_bp).
inline void do_tile(const Problem& P, const float* ap, int64_t ua_rs, const float* bp, int64_t rs_bp, int64_t kc,
                    int64_t i, int64_t j, int64_t mr, int64_t nr, float beta, bool last) {
  const float* bias = (last && P.bias) ? P.bias + j : nullptr;
  finish_tile(P, P.c + i * P.rs_c + j * P.cs_c, mr, nr, beta, last, mr == MR && nr == NR,
              [&](float* c, int64_t rs_c) {
                if (ua_rs)
                  P.ukr_ua(kc, P.alpha, ap, ua_rs, bp, rs_bp, beta, c, rs_c, bias);
                else
                  P.ukr(kc, P.alpha, ap, bp, beta, c, rs_c, bias);
              });
}

// Contiguous share [lo, hi) of `total` items for thread tid of nt.
inline void share(int64_t total, int tid, int nt, int64_t* lo, int64_t* hi) {
  const int64_t base = total / nt, rem = total % nt;
  *lo = tid * base + std::min<int64_t>(tid, rem);
  *hi = *lo + base + (tid < rem ? 1 : 0);
}

// The macro-kernel: all MR x NR tiles of the mcb x ncb block, jr panels [jp0, jp1).
void macro_kernel(const Problem& P, const float* b_packed, const float* ap, int64_t ic, int64_t mcb, int64_t jc, int64_t ncb,
                  int64_t kcb, int64_t jp0, int64_t jp1, float beta, bool last) {
  for (int64_t jp = jp0; jp < jp1; ++jp) {
    const int64_t j = jp * NR;
    const int64_t nr = std::min<int64_t>(NR, ncb - j);
    const float* bp = b_packed + jp * kcb * NR;
    for (int64_t i = 0; i < mcb; i += MR) {
      const int64_t mr = std::min<int64_t>(MR, mcb - i);
      do_tile(P, ap + (i / MR) * kcb * MR, 0, bp, NR, kcb, ic + i, jc + j, mr, nr, beta, last);
    }
  }
}

// The same with A unpacked: a points at A(ic, pc). Loop order ir -> jr (not
// BLIS's jr -> ir): one 6-row micro-panel of A (6 x kcb, <= 24 KiB) stays in
// L1 while it meets every packed B micro-panel, which stream from L2 (the B
// block is sized for L2, see solve_single). A is thus read from memory exactly
// once per KC block and never copied. The last, partial panel (mcb % MR rows)
// goes through an edge kernel that reads only those rows.
void macro_kernel_ua(const Problem& P, const float* b_packed, int64_t ps_b, int64_t rs_b, const float* a,
                     int64_t ic, int64_t mcb, int64_t jc, int64_t ncb, int64_t kcb,
                     int64_t jp0, int64_t jp1, float beta, bool last) {
  const int64_t mfull = mcb / MR * MR;
  // b_packed: the B block's NR-column panels ps_b floats apart, k rows rs_b apart in each:
  // packed (ps_b = kcb * NR, rs_b = NR) or B itself (ps_b = NR, rs_b = B's row stride; see
  // b_in_place: only with 64-byte aligned rows. With numpy's 16-byte aligned rows each 64-byte
  // k step spans two cache lines, and reading in place measured 10-20% slower than packing;
  // with 64-byte aligned rows (Dense allocates its kernel so) it measured 2% faster on
  // 128x784x256 and 4.5% on 128x256x128 (1 thread, bias + relu; the same sums bit for bit).
  for (int64_t i = 0; i < mfull; i += MR)
    for (int64_t jp = jp0; jp < jp1; ++jp) {
      const int64_t j = jp * NR;
      const int64_t nr = std::min<int64_t>(NR, ncb - j);
      do_tile(P, a + i * P.rs_a, P.rs_a, b_packed + jp * ps_b, rs_b, kcb, ic + i, jc + j, MR, nr, beta, last);
    }
  if (mfull < mcb) {
    // The last mcb % MR rows, read in place by the edge kernel (no padding rows).
    const int64_t mr = mcb - mfull;
    const float* ar = a + mfull * P.rs_a;
    for (int64_t jp = jp0; jp < jp1; ++jp) {
      const int64_t j = jp * NR;
      const int64_t nr = std::min<int64_t>(NR, ncb - j);
      const float* bp = b_packed + jp * ps_b;
      const float* bias = (last && P.bias) ? P.bias + jc + j : nullptr;
      finish_tile(P, P.c + (ic + mfull) * P.rs_c + (jc + j) * P.cs_c, mr, nr, beta, last, nr == NR,
                  [&](float* c, int64_t rs_c) {
                    P.ukr_ua_edge(mr, kcb, P.alpha, ar, P.rs_a, bp, rs_b, beta, c, rs_c, bias);
                  });
    }
  }
}

// A B the unpacked-A path can read in place (no packing): row-major, rows starting on 64-byte
// boundaries (each 16-float k step of a panel is one cache line), ncols whole NR panels (an
// edge panel would read past the block's columns). NR-aligned column blocks keep all three.
bool b_rows_aligned(const float* b, int64_t rs_b, int64_t cs_b, int64_t ncols) {
  return cs_b == 1 && ncols % NR == 0 && rs_b % 16 == 0 && reinterpret_cast<uintptr_t>(b) % 64 == 0;
}

bool b_in_place(const Problem& P, int64_t ncb) { return P.ukr_ua && b_rows_aligned(P.b, P.rs_b, P.cs_b, ncb); }

// The five loops on the calling thread (threads take independent blocks of C, each
// solved by this; see sgemm below).
void run(const Problem& P) {
  const int64_t NC = P.blk.nc, KC = P.kc, MCb = P.blk.mc;
  // Packed A block (none when A is read in place).
  float* a_private = P.ukr_ua ? nullptr : scratch_a(static_cast<size_t>(MCb) * KC);
  for (int64_t jc = 0; jc < P.n; jc += NC) {
    const int64_t ncb = std::min(NC, P.n - jc);
    const int64_t n_jp = (ncb + NR - 1) / NR;
    for (int64_t pc = 0; pc < P.k; pc += KC) {
      const int64_t kcb = std::min(KC, P.k - pc);
      const float beta = pc == 0 ? P.beta : 1.f;
      const bool last = pc + kcb >= P.k;
      const float* bblk = P.b + pc * P.rs_b + jc * P.cs_b;
      const bool in_place = b_in_place(P, ncb);
      if (!in_place) pack_b_panels(kcb, ncb, bblk, P.rs_b, P.cs_b, P.b_packed, 0, n_jp);
      for (int64_t ic = 0; ic < P.m; ic += MCb) {
        const int64_t mcb = std::min(MCb, P.m - ic);
        if (P.ukr_ua) {
          if (in_place)
            macro_kernel_ua(P, bblk, NR, P.rs_b, P.a + ic * P.rs_a + pc, ic, mcb, jc, ncb, kcb, 0, n_jp, beta, last);
          else
            macro_kernel_ua(P, P.b_packed, kcb * NR, NR, P.a + ic * P.rs_a + pc, ic, mcb, jc, ncb, kcb, 0, n_jp,
                            beta, last);
        } else {
          pack_a(mcb, kcb, P.a + ic * P.rs_a + pc * P.cs_a, P.rs_a, P.cs_a, a_private);
          macro_kernel(P, P.b_packed, a_private, ic, mcb, jc, ncb, kcb, 0, n_jp, beta, last);
        }
      }
    }
  }
}

// Skinny shapes that the unpacked (small) path runs faster than the packed one at any
// size (config.h: kSkinny*).
bool skinny(int64_t m, int64_t n, int64_t k, int64_t cs_a) {
  return (n <= kSkinnyMaxN && k <= kSkinnyMaxK) || (m <= kSkinnyMaxM && n <= kSkinnyMaxWideN) ||
         (n <= kSkinnyMaxM && cs_a != 1 && k <= kSkinnyMaxK);
}

// Fraction of ideal speed-up when `units` equal pieces are dealt to nt threads.
double balance(int64_t units, int nt) {
  const int64_t per = (units + nt - 1) / nt;
  return static_cast<double>(units) / (static_cast<double>(per) * nt);
}

// k == 0 or alpha == 0: C = act(beta * C + bias), A and B are not read.
void scale_only(int64_t m, int64_t n, float beta, float* c, int64_t rs_c, int64_t cs_c,
                const float* bias, Act act, float act_alpha) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& cij = c[i * rs_c + j * cs_c];
      float v = beta != 0.f ? beta * cij : 0.f;
      if (bias) v += bias[j];
      cij = act_forward(act, v, act_alpha);
    }
}


// KC for the whole product (not per thread block, so the summation order of every
// element, hence the result, is the same at any thread count): equal blocks no longer
// than the cap, so k = 784 runs as 4 x 196 rather than 3 x 256 + 16, whose last thin
// block would pay a full C load/store per tile for 16 FMAs. The unpacked-A path (row-major
// A, B narrow enough that a KC >= 256 block of it fits kUnpackedABBytes) raises the cap
// until the B block fills that budget (config.h).
int64_t kc_for(int64_t n, int64_t k, int64_t cs_a, const Blocking& blk, bool isa_avx2) {
  int64_t kc_max = blk.kc;
#ifdef PYNN_X86_64
  const int64_t ncp = (std::min(n, blk.nc) + NR - 1) / NR * NR;
  if (isa_avx2 && cs_a == 1 && ncp <= kUnpackedAMaxN) kc_max = std::max<int64_t>(blk.kc, kUnpackedABBytes / (4 * ncp));
#else
  (void)n; (void)cs_a; (void)isa_avx2;
#endif
  const int64_t n_pc = (k + kc_max - 1) / kc_max;
  return (k + n_pc - 1) / n_pc;
}

// The whole product (or one thread's block of it) on the calling thread, which owns its
// thread_local scratch. P.kc is the whole product's.
void solve_single(Problem P, bool isa_avx2) {
  const int64_t ncp = (std::min(P.n, P.blk.nc) + NR - 1) / NR * NR;
  P.ukr_ua = nullptr;
#ifdef PYNN_X86_64
  // Row-major A and a B block narrow enough to sit in L2: read A unpacked, each 6-row
  // micro-panel staying in L1 while it meets all of B. Same sums as the packed path.
  if (isa_avx2 && P.cs_a == 1 && ncp <= kUnpackedAMaxN) {
    P.ukr_ua = avx2::sgemm_6x16_ua;
    P.ukr_ua_edge = avx2::sgemm_ua_edge_rs;
  }
#else
  (void)isa_avx2;
#endif
  P.b_packed = scratch_b(static_cast<size_t>(ncp * P.kc));
  run(P);
}
}  // namespace
}  // namespace gemm

void sgemm(int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t rs_a, int64_t cs_a,
           const float* b, int64_t rs_b, int64_t cs_b,
           float beta, float* c, int64_t rs_c, int64_t cs_c,
           const float* bias, Act act, float act_alpha) {
  using namespace gemm;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.f) {
    scale_only(m, n, beta, c, rs_c, cs_c, bias, act, act_alpha);
    return;
  }
  // Transposed C (unit row stride): compute C^T = B^T A^T instead, so the
  // microkernel writes rows of 16 contiguous floats rather than a strided tile.
  if (cs_c != 1 && rs_c == 1 && !bias) {
    sgemm(n, m, k, alpha, b, cs_b, rs_b, a, cs_a, rs_a, beta, c, cs_c, rs_c, nullptr, act, act_alpha);
    return;
  }

#ifdef PYNN_X86_64
  // Small or skinny product: packing and blocking would cost more than they save. The
  // choice depends on the shape alone (never on the thread count), and every element is
  // one FMA chain over all of k whichever block computes it: the same bits at any count.
  if (use_avx2() && k <= kSmallMaxK && (m * n * k <= kSmallWork || skinny(m, n, k, cs_a))) {
    const int64_t work = m * n * k;
    const int nt = work < kSingleThreadWork ? 1 : threads_for(work, kThreadGrain);
    if (nt <= 1) {
      avx2::sgemm_small(m, n, k, alpha, a, rs_a, cs_a, b, rs_b, cs_b, beta, c, rs_c, cs_c, bias, act, act_alpha);
      return;
    }
    // Skinny and big enough for threads: blocks of the long side (MR rows or NR columns),
    // a few per thread, claimed from share_work's counter.
    const bool by_m = m >= n;
    const int64_t units = by_m ? (m + MR - 1) / MR : (n + NR - 1) / NR;
    const int64_t chunks = std::min<int64_t>(units, int64_t{nt} * kChunksPerThread);
    share_work(chunks, 1, nt, [&](int64_t ch0, int64_t ch1) {
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        int64_t lo, hi;
        share(units, static_cast<int>(ch), static_cast<int>(chunks), &lo, &hi);
        if (by_m) {
          const int64_t r0 = lo * MR, r1 = std::min(m, hi * MR);
          if (r1 > r0)
            avx2::sgemm_small(r1 - r0, n, k, alpha, a + r0 * rs_a, rs_a, cs_a, b, rs_b, cs_b, beta, c + r0 * rs_c,
                              rs_c, cs_c, bias, act, act_alpha);
        } else {
          const int64_t c0 = lo * NR, c1 = std::min(n, hi * NR);
          if (c1 > c0)
            avx2::sgemm_small(m, c1 - c0, k, alpha, a, rs_a, cs_a, b + c0 * cs_b, rs_b, cs_b, beta, c + c0 * cs_c,
                              rs_c, cs_c, bias ? bias + c0 : nullptr, act, act_alpha);
        }
      }
    });
    return;
  }
#endif

  Problem P;
  P.m = m; P.n = n; P.k = k; P.alpha = alpha;
  P.a = a; P.rs_a = rs_a; P.cs_a = cs_a;
  P.b = b; P.rs_b = rs_b; P.cs_b = cs_b;
  P.beta = beta; P.c = c; P.rs_c = rs_c; P.cs_c = cs_c;
  P.act = act; P.act_alpha = act_alpha;
  const bool isa_avx2 = use_avx2();
  P.blk = isa_avx2 ? kBlockingAvx2 : kBlockingGeneric;
  P.ukr = PYNN_ISA_PICK(sgemm_6x16);
  P.act_tile = PYNN_ISA_PICK(act_tile);
  P.ukr_ua = nullptr;
  P.kc = kc_for(n, k, cs_a, P.blk, isa_avx2);

  // Bias padded to whole NR panels so edge tiles can read NR floats of it.
  P.bias = nullptr;
  if (bias) {
    const int64_t np = (n + NR - 1) / NR * NR;
    float* bp = scratch_bias(static_cast<size_t>(np));
    std::memcpy(bp, bias, static_cast<size_t>(n) * sizeof(float));
    std::fill(bp + n, bp + np, 0.f);
    P.bias = bp;
  }

  const int64_t work = m * n * k;
  int nt = work < kSingleThreadWork ? 1 : threads_for(work, kThreadGrain);
  if (nt <= 1) {
    solve_single(P, isa_avx2);
    return;
  }

  // Independent blocks of C, each solved by the single-thread algorithm with its own
  // packed B: no barrier at all, and any thread count (no 2 in the split). By rows when
  // every thread gets enough of them that packing B once per block costs little (each B
  // element then feeds m/nt FMAs); otherwise by MR-row or NR-column panels, whichever
  // deals more evenly among the nt threads, ties going to columns (A then read in place
  // by every block, the Dense-like shapes) unless A is transposed and the larger operand
  // (then packed once per column block, so rows: B, the smaller, is packed per block).
  const int64_t mp = (m + MR - 1) / MR;
  const int64_t np_all = (n + NR - 1) / NR;
  bool by_m = m / nt >= kPrivateBRows;
  if (!by_m) {
    const double bm = balance(mp, nt), bn = balance(np_all, nt);
    by_m = bm > 1.05 * bn || (bn <= 1.05 * bm && cs_a != 1 && m > n);
  }
  // A B that every block reads in place (b_in_place: a 64-byte aligned Dense kernel) costs a
  // row block nothing to "pack": rows then, unless they deal clearly worse. Each 6-row panel
  // of A then meets all of B's panels, not a block's few (128x784x256 at 2 threads: 246 ->
  // 242 us, 128x256x128 43.5 -> 42 us against column blocks).
  const bool shared_b = isa_avx2 && cs_a == 1 && np_all * NR <= kUnpackedAMaxN && b_rows_aligned(b, rs_b, cs_b, n);
  if (shared_b && !by_m) by_m = 1.05 * balance(mp, nt) >= balance(np_all, nt);
  const int64_t units = by_m ? mp : np_all;
  if (units < nt) nt = static_cast<int>(units);
  if (nt <= 1) {
    solve_single(P, isa_avx2);
    return;
  }
  // The blocks are claimed from a counter (common/parallel.h: share_work): the caller
  // starts at once and a helper joins when it is scheduled, so a helper that is late --
  // on a shared machine, or oversubscribed -- costs at most the block it is working on,
  // never a wait at a fork or join for a thread that has not run yet (an OpenMP
  // fork+join measured 250-500 us at load ~12 on the 2-core machine, 0.6 us idle; the
  // 64x784x128 product takes ~65 us on 2 threads). Row blocks of a narrow B (n <=
  // kUnpackedAMaxN) are a few per thread; each packs its own copy of B, so they keep >=
  // kMinChunkRows rows; a wide B (square products: 16 MiB at 2048) is packed once per
  // block, one block per thread. Column blocks (the small-m shapes) are also a few per
  // thread, of at least kMinChunkPanels NR-panels: A is re-read per block, but from L2.
  int64_t chunks = nt;
  if (shared_b && by_m)
    chunks = std::max<int64_t>(nt, std::min(units, int64_t{nt} * kChunksPerThread));
  else if (by_m && n <= kUnpackedAMaxN && m / nt >= kPrivateBRows)
    chunks = std::max<int64_t>(nt, std::min({units, int64_t{nt} * kChunksPerThread, m / kMinChunkRows}));
  else if (!by_m)
    chunks = std::max<int64_t>(nt, std::min(int64_t{nt} * kChunksPerThread, units / kMinChunkPanels));
  share_work(chunks, 1, nt, [&](int64_t ch0, int64_t ch1) {
    for (int64_t ch = ch0; ch < ch1; ++ch) {
      Problem Q = P;
      int64_t lo, hi;
      share(units, static_cast<int>(ch), static_cast<int>(chunks), &lo, &hi);
      if (by_m) {
        const int64_t r0 = lo * MR, r1 = std::min(m, hi * MR);
        Q.m = r1 - r0;
        Q.a = P.a + r0 * P.rs_a;
        Q.c = P.c + r0 * P.rs_c;
      } else {
        const int64_t c0 = lo * NR, c1 = std::min(n, hi * NR);
        Q.n = c1 - c0;
        Q.b = P.b + c0 * P.cs_b;
        Q.c = P.c + c0 * P.cs_c;
        if (P.bias) Q.bias = P.bias + c0;
      }
      if (Q.m > 0 && Q.n > 0) solve_single(Q, isa_avx2);
    }
  });
}

}  // namespace pynn
