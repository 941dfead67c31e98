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

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  g_threads.store(n);
}

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
  int64_t t = grain > 0 ? work / grain : work;
  int n = num_threads();
  if (t < 1) t = 1;
  return t < n ? static_cast<int>(t) : n;
}

}  // namespace pynn
