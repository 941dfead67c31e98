#include "common/work_share.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

#include "common/first_error.h"

namespace pynn {

namespace {

struct Job {
  const std::function<void(int64_t, int64_t)>* body = nullptr;
  int64_t n = 0, chunk = 1;
  std::atomic<int64_t> next{0};
  int max_helpers = 0;
  int joined = 0;  // helpers inside drain(); guarded by Pool::m
  FirstError err;  // a body that throws on a helper (bad_alloc) is rethrown on the caller
};

void drain(Job& j) {
  j.err.run([&] {
    for (;;) {
      const int64_t lo = j.next.fetch_add(j.chunk, std::memory_order_relaxed);
      if (lo >= j.n) return;
      (*j.body)(lo, std::min(lo + j.chunk, j.n));
    }
  });
}

// This module's thread_local blocks (the GEMM scratch) are allocated by glibc on a thread's
// first touch, and a failure there is a fatal glibc abort, not an exception: a helper touches
// them when it starts, before any kernel can have used up the address space.
thread_local volatile char g_tls_touch;

// Helpers sleep on `wake` between jobs. The pool is never destroyed (helpers are
// detached and may still be waiting at exit); a forked child has no helpers, which
// is harmless: the caller then does every chunk itself.
struct Pool {
  std::mutex m;
  std::condition_variable wake, idle;
  Job* job = nullptr;
  uint64_t gen = 0;
  int started = 0;

  void ensure(int helpers) {  // under m
    try {
      for (; started < helpers; ++started) std::thread([this] { loop(); }).detach();
    } catch (const std::system_error&) {
      // No thread could be created (address-space or thread limit): the helpers that
      // exist, possibly none, share the work and the caller does the rest.
    }
  }

  void loop() {
    g_tls_touch = 1;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m);
    for (;;) {
      wake.wait(lk, [&] { return gen != seen; });
      seen = gen;
      Job* j = job;
      if (!j || j->joined >= j->max_helpers) continue;
      ++j->joined;
      lk.unlock();
      drain(*j);
      lk.lock();
      if (--j->joined == 0) idle.notify_all();
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool;  // leaked on purpose, see above
  return *p;
}

}  // namespace

void share_work(int64_t n, int64_t chunk, int threads, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(chunk, 1);
  if (threads <= 1 || n <= chunk) {
    body(0, n);
    return;
  }
  Job j;
  j.body = &body;
  j.n = n;
  j.chunk = chunk;
  j.max_helpers = threads - 1;
  Pool& P = pool();
  {
    std::lock_guard<std::mutex> lk(P.m);
    if (P.job) {  // a call from another Python thread holds the helpers: run this one inline
      j.max_helpers = 0;
    } else {
      P.ensure(threads - 1);
      P.job = &j;
      ++P.gen;
    }
  }
  if (j.max_helpers == 0) {
    body(0, n);
    return;
  }
  P.wake.notify_all();
  drain(j);
  {
    std::unique_lock<std::mutex> lk(P.m);
    P.job = nullptr;  // no helper joins after this; wait only for those already inside
    P.idle.wait(lk, [&] { return j.joined == 0; });
  }
  j.err.rethrow();
}

}  // namespace pynn
