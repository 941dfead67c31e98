// The split-K driver of the GEMM frame (declared in gemm.h): see sgemm_split_k.
#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "gemm/gemm.h"

namespace pynn {

void sgemm_split_k(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, const float* b, int64_t rs_b,
                   float* c, int64_t rs_c) {
  if (m <= 0 || n <= 0) return;
  // Split k only when each thread gets a long slice and the partial sums are
  // small next to the product (k slices of at least 256 rows).
  int nt = threads_for(m * n * k, int64_t{1} << 20);
  nt = static_cast<int>(std::min<int64_t>(nt, std::max<int64_t>(1, k / 256)));
  if (nt <= 1) {
    sgemm(m, n, k, 1.f, a, 1, rs_a, b, rs_b, 1, 0.f, c, rs_c, 1, nullptr, Act::Linear, 0.f);
    return;
  }
  std::vector<float> part(static_cast<size_t>((nt - 1) * m * n));
  FirstError err;  // sgemm's scratch may fail to grow on a worker: every thread still meets the barrier
  parallel_team(nt, [&](int tid, int T) {
    const int64_t k0 = k * tid / T, k1 = k * (tid + 1) / T;
    float* out = tid ? part.data() + (tid - 1) * m * n : c;
    const int64_t rs_out = tid ? n : rs_c;
    err.run([&] {
      sgemm(m, n, k1 - k0, 1.f, a + k0 * rs_a, 1, rs_a, b + k0 * rs_b, rs_b, 1, 0.f, out, rs_out, 1, nullptr,
            Act::Linear, 0.f);
    });
    team_barrier(T);
    // sum the partial products, rows split across the threads
    const int64_t r0 = m * tid / T, r1 = m * (tid + 1) / T;
    for (int p = 1; p < T; ++p)
      for (int64_t i = r0; i < r1; ++i) {
        float* __restrict ci = c + i * rs_c;
        const float* __restrict pi = part.data() + (p - 1) * m * n + i * n;
        for (int64_t j = 0; j < n; ++j) ci[j] += pi[j];
      }
  });
  err.rethrow();
}

}  // namespace pynn
