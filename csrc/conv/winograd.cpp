// Driver of the Winograd F(2x2, 3x3) forward (conv/winograd.h): the weight transform, the
// tile blocks and their threads. Loops, outermost first:
//
//   threads   claim blocks of output tiles from a counter (share_work): a late helper
//             leaves its blocks to the caller instead of stalling it
//   blocks    bt tiles (a multiple of the microkernel's 6 rows): input transform of the
//             block into V (16 x bt x C_in), 16 GEMMs M_ξ = V_ξ · U_ξ, output transform
//   GEMM      per ξ and 16-channel panel of U_ξ (C_in x 16, in L1): the 6x16 microkernel over
//             the block's rows of V_ξ (AVX2), or sgemm_packed_panels on one thread (generic)
#define PYNN_ISA generic
#include "conv/winograd_impl.h"
#undef PYNN_ISA

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "common/aligned_buffer.h"
#include "common/parallel.h"
#include "gemm/config.h"
#include "gemm/kernels/kernels.h"

namespace pynn {

namespace winograd {
namespace {
// The transforms of the active ISA.
auto input_tile_kernel() { return PYNN_ISA_PICK(input_tile); }
auto output_tile_kernel() { return PYNN_ISA_PICK(output_tile); }
}  // namespace
}  // namespace winograd

namespace {
// Multiply-adds (of the direct conv) per extra thread: as the implicit GEMM's forward.
constexpr int64_t kWinogradGrain = int64_t(1) << 19;
}  // namespace

WinogradWeights::WinogradWeights(int64_t c_in, int64_t c_out, const float* w) : c(c_in), oc(c_out) {
  // All 16 U_ξ in one (16, C, OC) array first, o innermost (contiguous in w and in t).
  std::vector<float> t(static_cast<size_t>(16 * c * oc));
  for (int64_t ci = 0; ci < c; ++ci) {
    for (int64_t o = 0; o < oc; ++o) {
      float g[3][3];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) g[i][j] = w[((i * 3 + j) * c + ci) * oc + o];
      float gg[4][3];  // G g
      for (int j = 0; j < 3; ++j) {
        gg[0][j] = g[0][j];
        gg[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        gg[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        gg[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; ++i) {  // (G g) Gᵀ
        const float u[4] = {gg[i][0], 0.5f * (gg[i][0] + gg[i][1] + gg[i][2]), 0.5f * (gg[i][0] - gg[i][1] + gg[i][2]),
                            gg[i][2]};
        for (int j = 0; j < 4; ++j) t[static_cast<size_t>(((4 * i + j) * c + ci) * oc + o)] = u[j];
      }
    }
  }
  u.reserve(16);
  for (int64_t xi = 0; xi < 16; ++xi) u.emplace_back(c, oc, t.data() + xi * c * oc, oc, 1);
}

bool winograd_shape_ok(const WindowGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.c >= kWinogradMinChannels &&
         g.oc >= kWinogradMinChannels;
}

bool winograd_enabled() {
  for (const char* name : {"PYNN_CONV_WINOGRAD", "PYNN_CONV_IGEMM"}) {
    const char* e = std::getenv(name);
    if (e && e[0] == '0') return false;
  }
  return true;
}

void conv2d_forward_winograd(const WindowGeom& g, const float* x, const float* w, const float* bias, float* y, Act act,
                             float act_alpha, const WinogradWeights* pre) {
  using gemm::MR;
  const int64_t C = g.c, OC = g.oc;
  const int64_t th = (g.oh + 1) / 2, tw = (g.ow + 1) / 2, plane = th * tw, tiles = g.n * plane;
  if (tiles == 0 || OC == 0) return;
  std::unique_ptr<WinogradWeights> own;
  if (!pre) {
    own = std::make_unique<WinogradWeights>(C, OC, w);
    pre = own.get();
  }
  const int64_t np = pre->u[0].panels(), OCp = np * gemm::NR;
  // AVX2: the 6x16 microkernel called straight on each (6 tiles, 16 channels) tile of M_ξ, A read in
  // place; measured 5-10% faster for the whole conv (1 thread, 64->64 and 128->128) than through
  // sgemm_packed_panels, whose per-tile frame (edge copies, activation hook) these tiles never need.
  [[maybe_unused]] const bool direct = use_avx2();
  AlignedBuf zeros(std::max(C, OC));  // the input cells outside the image; the bias when there is none
  std::fill(zeros.p, zeros.p + std::max(C, OC), 0.f);
  const float* b = bias ? bias : zeros.p;
  // Tiles per block: V (16·bt·C floats) and M (16·bt·OCp) within kWinogradBlockBytes, whole 6-row tiles.
  const int64_t per_tile = 16 * (C + OCp) * static_cast<int64_t>(sizeof(float));
  const int64_t bt = std::max<int64_t>(MR, kWinogradBlockBytes / per_tile / MR * MR);
  const int64_t blocks = (tiles + bt - 1) / bt;
  const int T = static_cast<int>(std::min<int64_t>(threads_for(g.out_pixels() * 9 * C * OC, kWinogradGrain), blocks));
  const auto input_tile = winograd::input_tile_kernel();
  const auto output_tile = winograd::output_tile_kernel();
  share_work(blocks, 1, T, [&](int64_t blo, int64_t bhi) {
    // V, M (rows of OCp floats: whole 16-channel microkernel tiles) and 4 rows of OC floats that take
    // the outputs of a tile past the image's last row or column.
    thread_local Scratch scratch;
    float* const V = scratch.get(static_cast<size_t>(16 * bt * (C + OCp) + 4 * OC));
    float* const M = V + 16 * bt * C;
    float* const junk = M + 16 * bt * OCp;
    const float* src[16];
    float* dst[4];
    for (int64_t blk = blo; blk < bhi; ++blk) {
      const int64_t t0 = blk * bt, nt = std::min(bt, tiles - t0);
      for (int64_t i = 0; i < nt; ++i) {
        const int64_t tile = t0 + i, n = tile / plane, ty = tile % plane / tw, tx = tile % tw;
        const float* xn = x + n * g.h * g.w * C;
        for (int64_t a = 0; a < 4; ++a) {
          const int64_t ih = 2 * ty - g.pt + a;
          for (int64_t c = 0; c < 4; ++c) {
            const int64_t iw = 2 * tx - g.pl + c;
            src[4 * a + c] = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w ? xn + (ih * g.w + iw) * C : zeros.p;
          }
        }
        input_tile(C, src, V + i * C, bt * C);
      }
      for (int64_t xi = 0; xi < 16; ++xi) {
#ifdef PYNN_X86_64
        if (direct) {
          const PackedB& u = pre->u[static_cast<size_t>(xi)];
          const float* vx = V + xi * bt * C;
          float* mx = M + xi * bt * OCp;
          for (int64_t jp = 0; jp < np; ++jp)
            for (int64_t i = 0; i < nt; i += MR) {
              if (nt - i >= MR)
                gemm::avx2::sgemm_6x16_ua(C, 1.f, vx + i * C, C, u.panel(jp), gemm::NR, 0.f,
                                          mx + i * OCp + jp * gemm::NR, OCp, nullptr);
              else
                gemm::avx2::sgemm_ua_edge(nt - i, C, 1.f, vx + i * C, C, u.panel(jp), 0.f, mx + i * OCp + jp * gemm::NR,
                                          OCp, nullptr);
            }
          continue;
        }
#endif
        sgemm_packed_panels(nt, 1.f, V + xi * bt * C, C, 1, pre->u[static_cast<size_t>(xi)], 0, np, 0.f,
                            M + xi * bt * OCp, OCp, 1, nullptr, Act::Linear, 0.f);
      }
      for (int64_t i = 0; i < nt; ++i) {
        const int64_t tile = t0 + i, n = tile / plane, ty = tile % plane / tw, tx = tile % tw;
        float* const yn = y + n * g.oh * g.ow * OC;
        for (int64_t r = 0; r < 2; ++r)
          for (int64_t s = 0; s < 2; ++s) {
            const int64_t oy = 2 * ty + r, ox = 2 * tx + s;
            dst[2 * r + s] = oy < g.oh && ox < g.ow ? yn + (oy * g.ow + ox) * OC : junk + (2 * r + s) * OC;
          }
        output_tile(OC, M + i * OCp, bt * OCp, b, dst, act, act_alpha);
      }
    }
  });
}

}  // namespace pynn
