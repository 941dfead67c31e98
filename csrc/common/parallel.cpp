#include "common/parallel.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#include "common/first_error.h"

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
// Set once any kernel asked for more than one thread: from then on libgomp's pool (or
// share_work's helpers) may exist, and a forked child must not use them
// (common/process_hooks.cpp installs the fork handler).
std::atomic<bool> g_went_parallel{false};
std::atomic<bool> g_forked_single{false};
// Nonzero while this thread runs a share_work body (caller or helper): a kernel called
// from there (sgemm inside the split-K slices) runs on one thread, as it does inside an
// OpenMP region, instead of starting a team of its own on top of the busy helpers.
thread_local int g_in_share_work = 0;

}  // namespace

int num_threads() { return g_forked_single.load(std::memory_order_relaxed) ? 1 : g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  if (n > 1 && g_forked_single.load())
    throw std::runtime_error("set_num_threads(" + std::to_string(n) +
                             "): this process was forked after pynn's kernels ran multi-threaded; the OpenMP "
                             "thread pool is not fork-safe, so kernels here run on one thread. Use the 'spawn' "
                             "or 'forkserver' start method for multi-threaded workers.");
  g_threads.store(n);
}

bool forked_single_threaded() { return g_forked_single.load(std::memory_order_relaxed); }

namespace detail {
void after_fork_in_child() {
  if (g_went_parallel.load(std::memory_order_relaxed)) g_forked_single.store(true, std::memory_order_relaxed);
}
}  // namespace detail

int threads_for(int64_t work, int64_t grain) {
#ifdef PYNN_OPENMP
  if (omp_in_parallel()) return 1;
#endif
  if (g_in_share_work) return 1;
  if (g_forked_single.load(std::memory_order_relaxed)) return 1;
  int64_t t = grain > 0 ? work / grain : work;
  int n = num_threads();
  if (t < 1) t = 1;
  const int r = t < n ? static_cast<int>(t) : n;
  if (r > 1 && !g_went_parallel.load(std::memory_order_relaxed)) g_went_parallel.store(true, std::memory_order_relaxed);
  return r;
}

// ---------------------------------------------------------------- share_work
namespace {

struct Job {
  const std::function<void(int64_t, int64_t)>* body = nullptr;
  int64_t n = 0, chunk = 1;
  std::atomic<int64_t> next{0};
  int max_helpers = 0;
  // Helpers inside drain(): incremented under Pool::m (so none joins after the caller has
  // cleared Pool::job), read without it by the caller's spin at the end of share_work.
  std::atomic<int> joined{0};
  FirstError err;  // a body that throws on a helper (bad_alloc) is rethrown on the caller
};

void drain(Job& j) {
  ++g_in_share_work;
  j.err.run([&] {
    for (;;) {
      const int64_t lo = j.next.fetch_add(j.chunk, std::memory_order_relaxed);
      if (lo >= j.n) return;
      (*j.body)(lo, std::min(lo + j.chunk, j.n));
    }
  });
  --g_in_share_work;
}

// This module's thread_local blocks (the GEMM scratch) are allocated by glibc on a thread's
// first touch, and a failure there is a fatal glibc abort, not an exception: a helper touches
// them when it starts, before any kernel can have used up the address space.
thread_local volatile char g_tls_touch;

// Waiting between and at the end of jobs: first spin (pause, no system call), then poll
// with sched_yield, then (the caller of spin_until) sleep on a condition variable.
//  - Spinning is what keeps a helper on its core: a helper that only yield-polled handed
//    its core to background jobs for whole time slices (milliseconds) and missed every
//    block of the GEMM it was polling for. Measured, 128x784x256 at 2 threads with a
//    30 us Python gap before each call (every GEMM of a training step has one): yield-poll
//    only 494 us median (the 1-thread speed), spin 311 us, back to back 300.
//  - Spinning only for a while, then yielding: when the machine is oversubscribed (other
//    processes, or other sessions' autogroups getting equal shares) a spinning thread
//    burns its own process's share that the caller needs; measured at load ~7, pure
//    spinning for the whole window lost to yield-polling (median 720 vs 560 us).
constexpr int kHelperSpinMicros = 100;   // a Python gap between kernels of a step is < ~100 us
constexpr int kHelperPollMicros = 300;   // ... and up to here yield-poll, then sleep on `wake`
// The caller waiting for a helper's last chunk: spin briefly, yield-poll, then sleep.
constexpr int kCallerSpinMicros = 50;
constexpr int kCallerPollMicros = 100;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Until done() or poll_us have passed (spinning for the first spin_us); returns done().
template <class Done>
bool spin_until(Done&& done, int spin_us, int poll_us) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto spin_end = t0 + std::chrono::microseconds(spin_us), poll_end = t0 + std::chrono::microseconds(poll_us);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= spin_end) break;
  }
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= poll_end) return done();
    std::this_thread::yield();
  }
}

// Between jobs a helper first polls for the next one for up to kHelperPollMicros
// (spin_until above), then sleeps on `wake`. The poll is what keeps back-to-back
// kernels parallel: a helper asleep on a
// futex measured to wake too late to take any block of a 125 us GEMM (64x784x128:
// 2 threads ran at the 1-thread speed, 102 vs 103 GFLOPS), while libgomp's and
// OpenBLAS's spinning workers are ready at once. The pool is never destroyed (helpers are
// detached and may still be waiting at exit); a forked child has no helpers, which
// is harmless: the caller then does every chunk itself.
//
// Only cores - 1 helpers poll (the caller has a core of its own; none on one core); the
// rest sleep between jobs. With 8 threads on 2 cores, 7 polling helpers took the cores
// from the caller and from each other; the sleeping ones still join a job when their
// wake-up comes in time.
int poll_helpers() {
  static const int n = [] {
    int cores = static_cast<int>(std::thread::hardware_concurrency());
#if defined(__linux__)
    cpu_set_t set;  // the CPUs this process may run on (a container's cpuset, taskset)
    if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
#endif
    return cores > 1 ? cores - 1 : 0;
  }();
  return n;
}

// The spinning part of a wait, or none when more threads are asked for than there are cores:
// the woken sleepers then need the cores the spinner would hold (measured, 8 threads on 2
// cores: spinning waits 650-750 us median for 128x784x256 against 440-690 yield-polling).
int spin_micros(int micros) { return num_threads() > poll_helpers() + 1 ? 0 : micros; }

struct Pool {
  std::mutex m;
  std::condition_variable wake, idle;
  Job* job = nullptr;
  std::atomic<uint64_t> gen{0};  // written under m; read without it while polling
  int started = 0;

  void ensure(int helpers) {  // under m
    try {
      for (; started < helpers; ++started) {
        const bool polls = started < poll_helpers();
        std::thread([this, polls] { loop(polls); }).detach();
      }
    } catch (const std::system_error&) {
      // No thread could be created (address-space or thread limit): the helpers that
      // exist, possibly none, share the work and the caller does the rest.
    }
  }

  void loop(bool polls) {
    g_tls_touch = 1;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m);
    for (;;) {
      if (polls && gen.load(std::memory_order_relaxed) == seen) {
        lk.unlock();
        spin_until([&] { return gen.load(std::memory_order_acquire) != seen; }, spin_micros(kHelperSpinMicros),
                   kHelperPollMicros);
        lk.lock();
      }
      wake.wait(lk, [&] { return gen.load(std::memory_order_relaxed) != seen; });
      seen = gen.load(std::memory_order_relaxed);
      Job* j = job;
      if (!j || j->joined.load(std::memory_order_relaxed) >= j->max_helpers) continue;
      j->joined.fetch_add(1, std::memory_order_relaxed);
      lk.unlock();
      drain(*j);
      lk.lock();
      // The last touch of *j: the caller may return (and free it) as soon as it reads 0.
      if (j->joined.fetch_sub(1, std::memory_order_acq_rel) == 1) idle.notify_all();
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
    std::lock_guard<std::mutex> lk(P.m);
    P.job = nullptr;  // no helper joins after this; wait only for those already inside
  }
  // A helper still inside is finishing its last chunk: wait for it in spin_until first
  // (blocking on the condition variable and being woken costs tens of us, a whole small
  // GEMM, and on a busy machine the woken caller can wait a time slice for its core).
  if (!spin_until([&] { return j.joined.load(std::memory_order_acquire) == 0; },
                  poll_helpers() > 0 ? spin_micros(kCallerSpinMicros) : 0, poll_helpers() > 0 ? kCallerPollMicros : 0)) {
    std::unique_lock<std::mutex> lk(P.m);
    P.idle.wait(lk, [&] { return j.joined.load(std::memory_order_acquire) == 0; });
  }
  j.err.rethrow();
}

}  // namespace pynn
