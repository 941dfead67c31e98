// Threading, one set of primitives for every kernel family.
//
//   threads_for(work, grain)        how many threads a problem deserves (1 when small,
//                                   1 inside an existing parallel region: no oversubscription)
//   parallel_team_checked(T, body)  body(t, T), t < T, without barriers, on the share_work pool
//   parallel_for(n, cost, grain, f) f(begin, end) on static contiguous blocks of [0, n)
//   share_work(n, chunk, T, body)   dynamic chunks, never waiting for a late thread (below)
//   shared_for_each(n, work, grain, body)  body(i) for i < n over share_work
//   (column sums the same at any thread count: common/block_sums.h)
//
// Everything runs on share_work's helpers (OpenMP supplies only the thread-count setting
// and omp_in_parallel): one pool for every kernel family, so back-to-back kernels of a training step find the same helpers awake instead
// of an OpenMP team and the pool competing for the cores. share_work suits the shared,
// loaded machine, where an OpenMP join can wait a whole time slice for a worker that has
// not been scheduled yet (measured: an 8 MB pooling call 0.17 -> 0.5 ms, a 64->64 conv
// 31 -> 45 ms at load ~5): the caller starts at once and claims chunks from an atomic
// counter; helper threads join when they wake. Static splits (parallel_for,
// parallel_team_checked) are numbered parts claimed the same way.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "common/first_error.h"

#ifdef PYNN_OPENMP
#include <omp.h>
#endif

namespace pynn {

// Threads that a kernel may use. Starts from PYNN_NUM_THREADS, else the OpenMP
// default (the number of cores).
int num_threads();
void set_num_threads(int n);

// Threads to use for `work` units of work when one thread should get at least
// `grain` of them: small problems stay on one thread, where forking costs more
// than it saves. Also 1 inside an existing parallel region -- an OpenMP team or a
// share_work body -- (no oversubscription).
int threads_for(int64_t work, int64_t grain);

// True in a process forked after its parent ran (or was running) a multi-threaded kernel:
// kernels there run on one thread (libgomp's pool does not survive fork; process_hooks.cpp).
bool forked_single_threaded();

namespace detail {
// Called by the pthread_atfork child handler (async-signal-safe: atomics only).
void after_fork_in_child();
}  // namespace detail

// Calls body(lo, hi) on disjoint ranges covering [0, n), each at most `chunk` long,
// on up to `threads` threads (the caller and threads-1 persistent helpers).
// threads <= 1, n <= chunk, or another share_work already running: all inline.
// An exception thrown by body (on any thread) is rethrown here after every chunk
// already claimed has finished; the remaining chunks are still run.
void share_work(int64_t n, int64_t chunk, int threads, const std::function<void(int64_t, int64_t)>& body);

// body(t, T) for t in [0, T): a static split into T numbered parts, run on the
// share_work pool (not an OpenMP team): an OpenMP team beside the share_work helpers
// put 3+ runnable threads on 2 cores whenever a libgomp worker was still spinning after its
// region while the next kernel's helper polled (measured: the MLP step's Adam update took
// 0.42 ms at 2 threads against 0.11 ms at 1). A part whose helper is late is run by the
// caller, never waited for at a fork or join. Parts are numbered, not tied to threads, so
// a body that writes per-part partials gets the same result whichever thread ran which
// part. An exception (std::bad_alloc from a worker's scratch) is rethrown on the caller
// after the claimed parts end, where pybind11 makes it a MemoryError.
template <class F>
void parallel_team_checked(int T, F&& body) {
  if (T <= 1) {
    body(0, 1);
    return;
  }
  share_work(T, 1, T, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) body(static_cast<int>(t), T);
  });
}

// Elementwise kernels: below ~32k floats a fork costs more than it saves.
constexpr int64_t kElemGrain = 32768;

// f(begin, end) over disjoint contiguous blocks covering [0, n), one per thread.
// `cost_per_item` scales the work when one item is a row of many elements.
template <class F>
void parallel_for(int64_t n, int64_t cost_per_item, int64_t grain, F&& f) {
  if (n <= 0) return;
  const int T = threads_for(n * std::max<int64_t>(cost_per_item, 1), grain);
  parallel_team_checked(T, [&](int t, int nt) {
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(b, e);
  });
}


// body(i) for every i < n over share_work, threads sized by threads_for(n * work_per_item,
// grain); chunks of ~1/8 of a thread's share, so a late helper leaves the caller at most
// one chunk to wait for.
template <class F>
void shared_for_each(int64_t n, int64_t work_per_item, int64_t grain, F&& body) {
  const int T = threads_for(n * work_per_item, grain);
  share_work(n, std::max<int64_t>(1, n / (8 * T)), T, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) body(i);
  });
}

}  // namespace pynn
