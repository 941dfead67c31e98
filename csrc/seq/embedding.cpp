#include "seq/embedding.h"

#include <cstring>

#include "common/parallel.h"

namespace pynn {

constexpr int64_t kGrain = 1 << 15;  // floats per thread

void embedding_gather(const float* table, int64_t d, const int64_t* ids, int64_t n, float* out) {
  parallel_for(n, d, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) std::memcpy(out + i * d, table + ids[i] * d, sizeof(float) * d);
  });
}

// Threads own disjoint column ranges of the table, so repeated ids never race.
void embedding_scatter_add(const float* dy, int64_t d, const int64_t* ids, int64_t n, int64_t v, float* grad) {
  std::memset(grad, 0, sizeof(float) * v * d);
  parallel_team_checked(threads_for(n * d, kGrain), [&](int t, int T) {
    const int64_t lo = d * t / T, hi = d * (t + 1) / T;  // this thread's columns
    for (int64_t i = 0; i < n; ++i) {
      float* g = grad + ids[i] * d;
      const float* s = dy + i * d;
#pragma omp simd
      for (int64_t j = lo; j < hi; ++j) g[j] += s[j];
    }
  });
}

}  // namespace pynn
