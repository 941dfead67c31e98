// Static splitting of [0, n) over an OpenMP team sized by threads_for(): each
// thread gets one contiguous block, so each streams its own part of memory and
// small problems stay on the calling thread (no fork cost at all).
#pragma once
#include <cstdint>

#include "common/first_error.h"
#include "common/runtime.h"

#ifdef PYNN_OPENMP
#include <omp.h>
#endif

namespace pynn::nn {

// Elementwise kernels: below ~32k floats a fork costs more than it saves.
constexpr int64_t kElemGrain = 32768;

// f(begin, end) over disjoint blocks covering [0, n). `cost_per_item` scales the
// grain when one item is a row of many elements.
template <class F>
void parallel_for(int64_t n, int64_t cost_per_item, F&& f) {
  if (n <= 0) return;
  const int64_t work = n * (cost_per_item > 0 ? cost_per_item : 1);
  const int nt = threads_for(work, kElemGrain);
  if (nt <= 1) { f(int64_t{0}, n); return; }
#ifdef PYNN_OPENMP
  FirstError err;  // an exception must not leave the region (std::terminate): rethrown on the caller
#pragma omp parallel num_threads(nt)
  err.run([&] {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t b = n * t / T, e = n * (t + 1) / T;
    if (b < e) f(b, e);
  });
  err.rethrow();
#else
  f(int64_t{0}, n);
#endif
}

}  // namespace pynn::nn
