// The machine's multiply-add peak, measured rather than computed from a nominal clock:
// every thread runs independent chains of vector multiply-adds on registers (no memory
// traffic), all threads at once. This is the ceiling a GEMM or convolution kernel can
// reach on these cores at this moment: the clock the host actually gives under an
// all-core vector load (turbo, power limits, a hypervisor's share) is in it, which a
// clock read on one idle thread is not. bench/peak.py and bench/scaling.py report
// kernel GFLOPS as a fraction of it.
#pragma once
#include <cstdint>

#include "common/dispatch.h"

namespace pynn {

// Multiply-adds of one call of fma_chains per iteration: 12 chains x 8 lanes.
constexpr int64_t kFmaPeakChains = 12;
constexpr int64_t kFmaPeakLanes = 8;

PYNN_ISA_DECLARE(float fma_chains(int64_t iterations);)

// GFLOPS (2 flops per multiply-add) of `threads` threads running fma_chains(iterations)
// at the same time on the active ISA, timed in wall time from a common start to the last
// thread's end (threads are started and parked first: their creation is not timed).
double fma_peak_gflops(int threads, int64_t iterations);

}  // namespace pynn
