// A static split of [0, n) over the pooling kernels' threads (OpenMP when built with it).
#pragma once
#include <cstdint>

#include "common/runtime.h"

namespace pynn {

// Pooling is memory-bound (~1 ms for 8 MB on one core), so a second thread gains
// at most ~2x there, while waking it on this shared 2-core machine was measured to
// cost 5-10 ms whenever the other core is busy (the worker waits out a time
// slice). So each thread gets at least ~2M window-cell visits (an 8 MB tensor
// stays on one thread; larger ones split).
constexpr int64_t kPoolGrain = int64_t(1) << 21;

template <class F>
void pool_parallel_for(int64_t n, int64_t work_per_item, F&& body) {
  const int T = threads_for(n * work_per_item, kPoolGrain);
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
