#include "common/runtime.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef PYNN_OPENMP
#include <omp.h>
#endif

namespace pynn {
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

Isa default_isa() {
  if (const char* s = std::getenv("PYNN_ISA")) {
    if (std::strcmp(s, "generic") == 0) return Isa::Generic;
  }
  return cpu_has_avx2_fma() ? Isa::Avx2 : Isa::Generic;
}

std::atomic<int> g_threads{default_threads()};
std::atomic<int> g_isa{static_cast<int>(default_isa())};
// Set once any kernel asked for more than one thread: from then on libgomp's pool (or
// share_work's helpers) may exist, and a forked child must not use them.
std::atomic<bool> g_went_parallel{false};
std::atomic<bool> g_forked_single{false};

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

bool cpu_has_avx2_fma() {
#if defined(PYNN_X86_64) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

Isa active_isa() { return static_cast<Isa>(g_isa.load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
  if (isa == Isa::Avx2 && !cpu_has_avx2_fma())
    throw std::invalid_argument("set_isa: this CPU has no AVX2+FMA");
  g_isa.store(static_cast<int>(isa));
}

const char* isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2" : "generic"; }

int threads_for(int64_t work, int64_t grain) {
#ifdef PYNN_OPENMP
  if (omp_in_parallel()) return 1;
#endif
  if (g_forked_single.load(std::memory_order_relaxed)) return 1;
  int64_t t = grain > 0 ? work / grain : work;
  int n = num_threads();
  if (t < 1) t = 1;
  const int r = t < n ? static_cast<int>(t) : n;
  if (r > 1 && !g_went_parallel.load(std::memory_order_relaxed)) g_went_parallel.store(true, std::memory_order_relaxed);
  return r;
}

}  // namespace pynn
