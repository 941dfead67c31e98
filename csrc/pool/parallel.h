// [0, n) shared over the pooling kernels' threads (common/work_share.h: no waiting for late threads).
#pragma once
#include <cstdint>

#include <algorithm>

#include "common/runtime.h"
#include "common/work_share.h"

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
  // Chunks of ~1/8 of a thread's share: a late helper leaves the caller at most one chunk to wait for.
  share_work(n, std::max<int64_t>(1, n / (8 * T)), T, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) body(i);
  });
}

}  // namespace pynn
