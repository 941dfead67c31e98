// Small AVX2 helpers shared by the hand-written *_avx2.cpp kernels (activations,
// pooling, recurrent cells, small-channel conv). Include only from files compiled
// with the AVX2/FMA flags (see CMakeLists.txt): the intrinsics need them.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace pynn::simd {

// Lanes [0, rem) set, for _mm256_mask{load,store}_ps on the last partial vector:
// a tail then goes through the same arithmetic as a full vector, so an element's
// bits do not depend on where a thread's block starts. rem >= 8 sets all lanes.
inline __m256i tail_mask(int64_t rem) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem < 8 ? rem : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 1/d for finite d >= 1 (NaN stays NaN): the 12-bit rcpps estimate refined by one
// Newton step (relative error < 3e-7, ~2^-22), about a third of divps's issue cost.
// Above 2^126 the estimate flushes to 0, where 1/d is below 1.2e-38 anyway.
inline __m256 recip(__m256 d) {
  const __m256 r0 = _mm256_rcp_ps(d);
  return _mm256_fmadd_ps(r0, _mm256_fnmadd_ps(d, r0, _mm256_set1_ps(1.f)), r0);
}

}  // namespace pynn::simd
