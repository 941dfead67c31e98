// A static split of [0, n) over the pooling kernels' threads (OpenMP when built with it).
#pragma once
#include <cstdint>

#include "common/runtime.h"

namespace pynn {

template <class F>
void pool_parallel_for(int64_t n, int64_t work_per_item, F&& body) {
  const int T = threads_for(n * work_per_item, 1 << 15);
#ifdef PYNN_OPENMP
  if (T > 1 && n > 1) {
#pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace pynn
