#include "common/parallel.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace pynn {

// ---------------------------------------------------------------- thread count
namespace {

int default_threads() {
  if (const char* s = std::getenv("PYNN_NUM_THREADS")) {
    int n = std::atoi(s);
    if (n > 0) return n;
  }
#ifdef PYNN_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::atomic<int> g_threads{default_threads()};

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  g_threads.store(n);
}

int threads_for(int64_t work, int64_t grain) {
#ifdef PYNN_OPENMP
  if (omp_in_parallel()) return 1;
#endif
  int64_t t = grain > 0 ? work / grain : work;
  int n = num_threads();
  if (t < 1) t = 1;
  return t < n ? static_cast<int>(t) : n;
}

// ---------------------------------------------------------------- share_work
namespace {

struct Job {
  const std::function<void(int64_t, int64_t)>* body = nullptr;
  int64_t n = 0, chunk = 1;
  std::atomic<int64_t> next{0};
  int max_helpers = 0;
  int joined = 0;  // helpers inside drain(); guarded by Pool::m
};

void drain(Job& j) {
  for (;;) {
    const int64_t lo = j.next.fetch_add(j.chunk, std::memory_order_relaxed);
    if (lo >= j.n) return;
    (*j.body)(lo, std::min(lo + j.chunk, j.n));
  }
}

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
    for (; started < helpers; ++started) std::thread([this] { loop(); }).detach();
  }

  void loop() {
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
  std::unique_lock<std::mutex> lk(P.m);
  P.job = nullptr;  // no helper joins after this; wait only for those already inside
  P.idle.wait(lk, [&] { return j.joined == 0; });
}

}  // namespace pynn
