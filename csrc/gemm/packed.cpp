// The pre-packed-B GEMM (packed.h). The frame is gemm.cpp's unpacked-A path
// (macro_kernel_ua) without its per-call packing of B: B was packed once, in
// whole-k panels, so each call only walks tiles.
//
// Per thread block (rows [i0, i1) x panels [p0, p1)):
//   for column blocks of the panels (the B block kc x cols sized for L2)
//     for KC blocks of k (equal blocks <= kKcMax, a function of k alone)
//       for 6-row micro-panels of A (read in place: stays in L1)
//         for panels of the column block: one 6x16 tile
// A row-major A (AVX2) is read in place by the unpacked-A kernels; any other A
// (strided, transposed, or the generic ISA) has each 6-row micro-panel packed
// into a small thread-local buffer (6 x kc floats) first. Rows < 6 of a block
// go through the edge kernel (AVX2) or the padded tile.
//
// Threads: the tiles form an mp x np grid (6-row panels x 16-column panels); the
// nt threads take a tr x tc grid of rectangular blocks (tr * tc <= nt), chosen
// to minimise the largest block, ties going to more column blocks (A is small
// and read in place by all; B, the big operand, is then split). No barrier.
#include "gemm/packed.h"
#include "common/aligned_buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "gemm/config.h"
#include "gemm/kernels/kernels.h"
#include "gemm/pack.h"

namespace pynn {

static_assert(PackedB::kNR == gemm::NR, "PackedB's panel width must be the microkernel's NR");

void PackedB::Free::operator()(float* p) const { std::free(p); }

PackedB::PackedB(int64_t k, int64_t n, const float* b, int64_t rs_b, int64_t cs_b)
    : k_(std::max<int64_t>(k, 0)), n_(std::max<int64_t>(n, 0)), panels_((n_ + kNR - 1) / kNR) {
  const size_t bytes = nbytes();
  if (bytes == 0) return;
  float* p = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!p) throw std::bad_alloc();
  data_.reset(p);
  // pack_b with KC = k writes panel jp at dst + jp * k * NR: exactly this layout.
  parallel_for(panels_, k_ * kNR, kElemGrain,
               [&](int64_t lo, int64_t hi) { gemm::pack_b_panels(k_, n_, b, rs_b, cs_b, p, lo, hi); });
}

#ifdef PYNN_X86_64
namespace gemm::avx2 {  // packed_avx2.cpp
int packed_rows_group(int64_t mr);
void packed_rows_panels(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, int64_t ps,
                        float beta, float* c, int64_t rs_c, const float* bias);
}  // namespace gemm::avx2
#endif

namespace {
using namespace gemm;

// KC: equal blocks of k no longer than this. A 6-row micro-panel of A (6 x KC)
// stays in L1 at 512 (12 KiB); depending on k alone keeps every element's
// summation order independent of the thread split.
constexpr int64_t kKcMax = 512;

float* scratch_apanel(size_t n) { static thread_local Scratch s; return s.get(n); }
float* scratch_bias(size_t n) { static thread_local Scratch s; return s.get(n); }

struct Ctx {
  float alpha, beta;
  const float* a; int64_t rs_a, cs_a;
  const PackedB* b;
  float* c; int64_t rs_c, cs_c;  // c at column 0 of the panel range's origin
  const float* bias;             // padded to whole panels, indexed like c's columns, or nullptr
  int64_t n;                     // columns of c (from the origin)
  Act act; float act_alpha;
  MicroKernel ukr;
  ActTile act_tile;
  bool ua;                       // A read in place (AVX2, cs_a == 1)
};

// The mr x nr tile at cij through `kernel(c, rs_c)`, which writes a 16-wide tile:
// rows [0, mr) only for the unpacked-A kernels (X.ua), all MR rows for the
// packed-A one. The activation on the last KC block. Edge tiles the kernel
// would overrun, and a non-unit column stride of C, go through a local tile:
// nothing outside C is read or written.
template <class Kernel>
inline void finish_tile(const Ctx& X, float* cij, int64_t mr, int64_t nr, float beta, bool last, Kernel&& kernel) {
  if (nr == NR && X.cs_c == 1 && (mr == MR || X.ua)) {
    kernel(cij, X.rs_c);
    if (last) X.act_tile(X.act, cij, X.rs_c, mr, nr, X.act_alpha);
    return;
  }
  alignas(64) float t[MR * NR] = {};
  if (beta != 0.f)
    for (int64_t r = 0; r < mr; ++r)
      for (int64_t q = 0; q < nr; ++q) t[r * NR + q] = cij[r * X.rs_c + q * X.cs_c];
  kernel(t, int64_t{NR});
  if (last) X.act_tile(X.act, t, NR, mr, nr, X.act_alpha);
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t q = 0; q < nr; ++q) cij[r * X.rs_c + q * X.cs_c] = t[r * NR + q];
}

// Rows [i0, i1) x panels [p0, p1) (panel indices relative to the origin of X.c) on this thread.
void solve_block(const Ctx& X, int64_t i0, int64_t i1, int64_t p0, int64_t p1, int64_t pbase) {
  const int64_t k = X.b->k();
  const int64_t n_pc = (k + kKcMax - 1) / kKcMax;
  const int64_t kc = (k + n_pc - 1) / n_pc;
  // Column block: the B block (kc x cols) of about kUnpackedABBytes streams from L2
  // while each A micro-panel, in L1, meets all of it.
  const int64_t cols = std::max<int64_t>(1, kUnpackedABBytes / (kc * NR * int64_t{sizeof(float)}));
  float* apanel = X.ua ? nullptr : scratch_apanel(static_cast<size_t>(kc * MR));
  for (int64_t jb = p0; jb < p1; jb += cols) {
    const int64_t je = std::min(p1, jb + cols);
    for (int64_t pc = 0; pc < k; pc += kc) {
      const int64_t kcb = std::min(kc, k - pc);
      const float beta = pc == 0 ? X.beta : 1.f;
      const bool last = pc + kcb >= k;
      for (int64_t i = i0; i < i1; i += MR) {
        const int64_t mr = std::min<int64_t>(MR, i1 - i);
        const float* ar = X.a + i * X.rs_a + pc * X.cs_a;
        if (!X.ua) pack_a(mr, kcb, ar, X.rs_a, X.cs_a, apanel);  // zero rows beyond mr
        int64_t jp = jb;
#ifdef PYNN_X86_64
        // Few rows (batch-1 Dense, GEMV-like): several full panels per call.
        if (X.ua && mr < MR && X.cs_c == 1) {
          const int64_t grp = avx2::packed_rows_group(mr);
          if (grp > 0)
            for (; jp + grp <= je && (jp + grp) * NR <= X.n; jp += grp) {
              float* cij = X.c + i * X.rs_c + jp * NR;
              avx2::packed_rows_panels(mr, kcb, X.alpha, ar, X.rs_a, X.b->panel(pbase + jp) + pc * NR,
                                       k * NR, beta, cij, X.rs_c, (last && X.bias) ? X.bias + jp * NR : nullptr);
              if (last)  // per panel: the same (vectorised full-row) activation as the one-panel path
                for (int64_t q = 0; q < grp; ++q) X.act_tile(X.act, cij + q * NR, X.rs_c, mr, NR, X.act_alpha);
            }
        }
#endif
        for (; jp < je; ++jp) {
          const int64_t j = jp * NR;
          const int64_t nr = std::min<int64_t>(NR, X.n - j);
          const float* bp = X.b->panel(pbase + jp) + pc * NR;
          const float* bias = (last && X.bias) ? X.bias + j : nullptr;
          finish_tile(X, X.c + i * X.rs_c + j * X.cs_c, mr, nr, beta, last, [&](float* c, int64_t rs_c) {
#ifdef PYNN_X86_64
            if (X.ua) {
              if (mr == MR)
                avx2::sgemm_6x16_ua(kcb, X.alpha, ar, X.rs_a, bp, NR, beta, c, rs_c, bias);
              else
                avx2::sgemm_ua_edge(mr, kcb, X.alpha, ar, X.rs_a, bp, beta, c, rs_c, bias);
              return;
            }
#endif
            X.ukr(kcb, X.alpha, apanel, bp, beta, c, rs_c, bias);
          });
        }
      }
    }
  }
}

// k == 0 or alpha == 0: C = act(beta * C + bias), A and B are not read.
void scale_only(int64_t m, int64_t n, float beta, float* c, int64_t rs_c, int64_t cs_c, const float* bias, Act act,
                float act_alpha) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& cij = c[i * rs_c + j * cs_c];
      float v = beta != 0.f ? beta * cij : 0.f;
      if (bias) v += bias[j];
      cij = act_forward(act, v, act_alpha);
    }
}

Ctx make_ctx(float alpha, const float* a, int64_t rs_a, int64_t cs_a, const PackedB& b, float beta, float* c,
             int64_t rs_c, int64_t cs_c, const float* bias, int64_t n, Act act, float act_alpha) {
  Ctx X;
  X.alpha = alpha; X.beta = beta;
  X.a = a; X.rs_a = rs_a; X.cs_a = cs_a;
  X.b = &b;
  X.c = c; X.rs_c = rs_c; X.cs_c = cs_c;
  X.n = n;
  X.act = act; X.act_alpha = act_alpha;
  X.ukr = PYNN_ISA_PICK(sgemm_6x16);
  X.act_tile = PYNN_ISA_PICK(act_tile);
  X.ua = use_avx2() && cs_a == 1;
  // Bias padded to whole panels so edge tiles can read NR floats of it.
  X.bias = nullptr;
  if (bias) {
    const int64_t np = (n + NR - 1) / NR * NR;
    float* bp = scratch_bias(static_cast<size_t>(np));
    std::memcpy(bp, bias, static_cast<size_t>(n) * sizeof(float));
    std::fill(bp + n, bp + np, 0.f);
    X.bias = bp;
  }
  return X;
}

inline void share(int64_t total, int tid, int nt, int64_t* lo, int64_t* hi) {
  const int64_t base = total / nt, rem = total % nt;
  *lo = tid * base + std::min<int64_t>(tid, rem);
  *hi = *lo + base + (tid < rem ? 1 : 0);
}

}  // namespace

void sgemm_packed_panels(int64_t m, float alpha, const float* a, int64_t rs_a, int64_t cs_a, const PackedB& b,
                         int64_t p0, int64_t p1, float beta, float* c, int64_t rs_c, int64_t cs_c, const float* bias,
                         Act act, float act_alpha) {
  p0 = std::max<int64_t>(p0, 0);
  p1 = std::min(p1, b.panels());
  if (m <= 0 || p1 <= p0) return;
  const int64_t n = std::min(b.n() - p0 * NR, (p1 - p0) * NR);
  if (b.k() == 0 || alpha == 0.f) return scale_only(m, n, beta, c, rs_c, cs_c, bias, act, act_alpha);
  const Ctx X = make_ctx(alpha, a, rs_a, cs_a, b, beta, c, rs_c, cs_c, bias, n, act, act_alpha);
  solve_block(X, 0, m, 0, p1 - p0, p0);
}

void sgemm_packed(int64_t m, float alpha, const float* a, int64_t rs_a, int64_t cs_a, const PackedB& b, float beta,
                  float* c, int64_t rs_c, int64_t cs_c, const float* bias, Act act, float act_alpha) {
  const int64_t n = b.n(), k = b.k();
  if (m <= 0 || n <= 0) return;
  if (k == 0 || alpha == 0.f) return scale_only(m, n, beta, c, rs_c, cs_c, bias, act, act_alpha);
  const Ctx X = make_ctx(alpha, a, rs_a, cs_a, b, beta, c, rs_c, cs_c, bias, n, act, act_alpha);
  const int64_t work = m * n * k;
  const int nt = work < kSingleThreadWork ? 1 : threads_for(work, kThreadGrain);
  const int64_t mp = (m + MR - 1) / MR, np = b.panels();
  // tr x tc blocks, tr * tc <= nt: the smallest largest block (in tiles), ties to
  // more column blocks, then to fewer threads.
  int64_t best_tr = 1, best_tc = 1, best_cost = mp * np;
  for (int64_t tr = 1; tr <= std::min<int64_t>(nt, mp); ++tr)
    for (int64_t tc = std::min<int64_t>(nt / tr, np); tc >= 1; --tc) {
      const int64_t cost = ((mp + tr - 1) / tr) * ((np + tc - 1) / tc);
      if (cost < best_cost || (cost == best_cost && tc > best_tc) ||
          (cost == best_cost && tc == best_tc && tr < best_tr)) {
        best_cost = cost; best_tr = tr; best_tc = tc;
      }
    }
  const int T = static_cast<int>(best_tr * best_tc);
  if (T <= 1) return solve_block(X, 0, m, 0, np, 0);
  // X.bias lives in the caller's thread_local scratch: valid while the caller waits in the team.
  // The team may come back smaller than asked (OpenMP may give fewer threads):
  // thread t then takes blocks t, t + nt, ... so every block is still computed.
  parallel_team_checked(T, [&](int t, int nt_got) {
    for (int blk = t; blk < T; blk += nt_got) {
      int64_t rlo, rhi, clo, chi;
      share(mp, static_cast<int>(blk / best_tc), static_cast<int>(best_tr), &rlo, &rhi);
      share(np, static_cast<int>(blk % best_tc), static_cast<int>(best_tc), &clo, &chi);
      if (rlo < rhi && clo < chi) solve_block(X, rlo * MR, std::min(m, rhi * MR), clo, chi, 0);
    }
  });
}

}  // namespace pynn
