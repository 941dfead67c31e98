// A static split of [0, n) over the pooling kernels' threads (OpenMP when built with it).
#pragma once
#include <cstdint>

#include "common/runtime.h"

namespace pynn {

// Pooling is memory-bound: the AVX2 kernels run 2x2 max pooling of an 8 MB
// N32 32x32x64 tensor in ~0.16 ms on one core with x in L3, so a second thread
// pays only when both cores are free. Measured here: idle-core best cases gain,
// but while another process holds the other core the fork/join costs ~0.3 ms
// (0.17 -> 0.5 ms for that pool). The grain below splits from ~2 MB of input
// (512K window-cell visits per thread), favouring the idle machine the README
// table is taken on; raise it if pooling runs next to other busy processes.
constexpr int64_t kPoolGrain = int64_t(1) << 19;

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
