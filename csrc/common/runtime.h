// Process-wide runtime settings shared by every kernel family: the thread count
// used by OpenMP regions and the instruction set chosen by runtime dispatch.
#pragma once
#include <cstdint>

namespace pynn {

enum class Isa : int { Generic = 0, Avx2 = 1 };

// Threads that a kernel may use. Starts from PYNN_NUM_THREADS, else the OpenMP
// default (the number of cores). 1 in a child forked after the parent went
// multi-threaded (common/process_hooks.cpp); asking for more there throws.
int num_threads();
void set_num_threads(int n);

// True in a process forked after its parent ran (or was running) a multi-threaded kernel.
bool forked_single_threaded();

namespace detail {
// Called by the pthread_atfork child handler (async-signal-safe: atomics only).
void after_fork_in_child();
}  // namespace detail

// True when this CPU can run the AVX2+FMA kernels (CPUID, checked once).
bool cpu_has_avx2_fma();
// The ISA the kernels dispatch to: AVX2 when the CPU has it, unless PYNN_ISA=generic
// or set_isa(Isa::Generic). Asking for AVX2 on a CPU without it throws.
Isa active_isa();
void set_isa(Isa isa);
const char* isa_name(Isa isa);

// Threads to use for `work` units of work when one thread should get at least
// `grain` of them: small problems stay on one thread, where forking costs more
// than it saves. Also 1 inside an existing parallel region (no oversubscription).
int threads_for(int64_t work, int64_t grain);

}  // namespace pynn
