#include "seq/embedding.h"

#include <cstring>

#include "common/parallel.h"

#ifdef PYNN_OPENMP
#include <omp.h>
#endif

namespace pynn {

void embedding_gather(const float* table, int64_t d, const int64_t* ids, int64_t n, float* out) {
  const int nt = threads_for(n * d, 1 << 15);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * d, table + ids[i] * d, sizeof(float) * d);
}

void embedding_scatter_add(const float* dy, int64_t d, const int64_t* ids, int64_t n, int64_t v, float* grad) {
  std::memset(grad, 0, sizeof(float) * v * d);
  const int nt = threads_for(n * d, 1 << 15);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = 0, threads = 1;
#ifdef PYNN_OPENMP
    t = omp_get_thread_num();
    threads = omp_get_num_threads();
#endif
    const int64_t lo = d * t / threads, hi = d * (t + 1) / threads;  // this thread's columns
    for (int64_t i = 0; i < n; ++i) {
      float* g = grad + ids[i] * d;
      const float* s = dy + i * d;
#pragma omp simd
      for (int64_t j = lo; j < hi; ++j) g[j] += s[j];
    }
  }
}

}  // namespace pynn
