// Instruction-set selection, one scheme for every kernel family.
//
// A family with ISA-specific code writes its loops once, in a <name>_impl.h whose
// body sits in `namespace ... ::PYNN_ISA`, and compiles it twice:
//   <name>.cpp       #define PYNN_ISA generic   (portable flags: SSE2 on x86-64)
//   <name>_avx2.cpp  #define PYNN_ISA avx2      (CMake gives every *_avx2.cpp -mavx2 -mfma
//                                              and leaves it out off x86)
// declares both variants with PYNN_ISA_DECLARE and calls them through PYNN_ISA_CALL.
// Hand-written microkernels (gemm/kernels/<isa>/) are the same two namespaces.
// Code compiled per ISA must stay in those ISA-named (or anonymous) namespaces:
// an inline function or template instantiation with one name in both would be
// merged by the linker into either copy, possibly the AVX2 one.
#pragma once

namespace pynn {

enum class Isa : int { Generic = 0, Avx2 = 1 };

// True when this CPU can run the AVX2+FMA kernels (CPUID, checked once).
bool cpu_has_avx2_fma();
// The ISA the kernels dispatch to: AVX2 when the CPU has it, unless PYNN_ISA=generic
// or set_isa(Isa::Generic). Asking for AVX2 on a CPU without it throws.
Isa active_isa();
void set_isa(Isa isa);
const char* isa_name(Isa isa);

// The AVX2 kernels are compiled in and selected. (`static`: headers here are also
// compiled into *_avx2.cpp units, whose copies must not be shared with generic code.)
static inline bool use_avx2() {
#ifdef PYNN_X86_64
  return active_isa() == Isa::Avx2;
#else
  return false;
#endif
}

}  // namespace pynn

// The same declarations in namespaces generic and avx2 (inside the caller's namespace).
#define PYNN_ISA_DECLARE(...)  \
  namespace generic {          \
  __VA_ARGS__                  \
  }                            \
  namespace avx2 {             \
  __VA_ARGS__                  \
  }

// avx2::fn(args) when use_avx2(), else generic::fn(args); PYNN_ISA_PICK(fn): the same
// choice as a function pointer. Off x86 only generic:: is referenced.
#ifdef PYNN_X86_64
#define PYNN_ISA_CALL(fn, ...) (::pynn::use_avx2() ? avx2::fn(__VA_ARGS__) : generic::fn(__VA_ARGS__))
#define PYNN_ISA_PICK(fn) (::pynn::use_avx2() ? &avx2::fn : &generic::fn)
#else
#define PYNN_ISA_CALL(fn, ...) (generic::fn(__VA_ARGS__))
#define PYNN_ISA_PICK(fn) (&generic::fn)
#endif
