#include "common/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace pynn {
namespace {

Isa default_isa() {
  if (const char* s = std::getenv("PYNN_ISA")) {
    if (std::strcmp(s, "generic") == 0) return Isa::Generic;
  }
  return cpu_has_avx2_fma() ? Isa::Avx2 : Isa::Generic;
}

std::atomic<int> g_isa{static_cast<int>(default_isa())};

}  // namespace

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

}  // namespace pynn
