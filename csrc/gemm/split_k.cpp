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
  // The k slices are claimed from a counter (share_work): a helper that is not
  // scheduled yet leaves its slice to the caller instead of holding a barrier. The
  // slices and their summation order are fixed by index, not by thread, so the
  // result is the same whichever thread computed which slice.
  std::vector<float> part(static_cast<size_t>((nt - 1) * m * n));
  share_work(nt, 1, nt, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t k0 = k * s / nt, k1 = k * (s + 1) / nt;
      float* out = s ? part.data() + (s - 1) * m * n : c;
      const int64_t rs_out = s ? n : rs_c;
      sgemm(m, n, k1 - k0, 1.f, a + k0 * rs_a, 1, rs_a, b + k0 * rs_b, rs_b, 1, 0.f, out, rs_out, 1, nullptr,
            Act::Linear, 0.f);
    }
  });
  // Sum the partial products in slice order, rows split across the threads.
  parallel_for(m, n * (nt - 1), int64_t{1} << 16, [&](int64_t r0, int64_t r1) {
    for (int p = 1; p < nt; ++p)
      for (int64_t i = r0; i < r1; ++i) {
        float* __restrict ci = c + i * rs_c;
        const float* __restrict pi = part.data() + (p - 1) * m * n + i * n;
        for (int64_t j = 0; j < n; ++j) ci[j] += pi[j];
      }
  });
}

}  // namespace pynn
