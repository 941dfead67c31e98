// Batched SGEMM (bmm): the batch loop around pynn::sgemm. When one matrix is
// too small to be worth splitting across threads, the threads take whole
// matrices instead; the inner sgemm then sees an active OpenMP region and
// stays on one thread (threads_for returns 1 inside a team), so there is no oversubscription.
#include "common/parallel.h"
#include "gemm/config.h"
#include "gemm/gemm.h"

namespace pynn {

void sgemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t bs_a, int64_t rs_a, int64_t cs_a,
                   const float* b, int64_t bs_b, int64_t rs_b, int64_t cs_b,
                   float beta, float* c, int64_t bs_c, int64_t rs_c, int64_t cs_c,
                   const float* bias, Act act, float act_alpha) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  const int64_t per = m * n * (k > 0 ? k : 1);
  // One matrix big enough for several threads: parallelise inside each GEMM.
  const int nt = per >= 4 * gemm::kSingleThreadWork ? 1 : threads_for(batch * per, gemm::kThreadGrain);
  auto one = [&](int64_t t) {
    sgemm(m, n, k, alpha, a + t * bs_a, rs_a, cs_a, b + t * bs_b, rs_b, cs_b,
          beta, c + t * bs_c, rs_c, cs_c, bias, act, act_alpha);
  };
  parallel_team_checked(batch == 1 ? 1 : nt, [&](int t, int T) {
    for (int64_t i = batch * t / T; i < batch * (t + 1) / T; ++i) one(i);
  });
}

}  // namespace pynn
