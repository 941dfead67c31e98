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

// max(in, m) propagating NaN as NumPy and PyTorch do: max_ps returns its second operand when
// either is NaN, so a NaN already in m stays; a NaN `in` is blended in. The max-pool forward's fold
// (pool/pool_avx2.cpp) and the first-layer conv's register-fused pool (conv/direct_avx2.cpp),
// one definition so the fused pooling is bitwise the pooling of the stored conv output.
inline __m256 nan_max(__m256 in, __m256 m) {
  return _mm256_blendv_ps(_mm256_max_ps(in, m), in, _mm256_cmp_ps(in, in, _CMP_UNORD_Q));
}

// exp on an argument already clamped to [-87.34, 88]: the Cephes expf polynomial of
// common/vmath.h's exp_f32 (~1 ulp), whose 2^n factor stays a normal float over that range
// (n in [-126, 127]), so it is built in the exponent bits with no underflow mask. NaN in, NaN out.
inline __m256 exp_in_range(__m256 xc) {
  const __m256 fn = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.693359375f), xc);  // ln2 split hi/lo: fn*hi is exact
  r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fn), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// exp(x) for x <= 0, ~1 ulp; below -87.33 (where exp leaves the normal range) exactly 0.
// NaN in, NaN out (max_ps returns its second operand when one is NaN). GELU/sigmoid
// (nn/activations_avx2.cpp) pass -|v| or -x²/2.
inline __m256 exp_nonpos(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365402f);
  return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), exp_in_range(_mm256_max_ps(lo, x)));
}

// exp(x) for any x, the argument clamped to [-87.34, 88] (no zero below: the LSTM cells'
// sigmoid 1/(1 + exp(-x)) needs no underflow mask). NaN in, NaN out.
inline __m256 exp_clamped(__m256 x) {
  return exp_in_range(_mm256_min_ps(_mm256_set1_ps(88.f), _mm256_max_ps(_mm256_set1_ps(-87.3365402f), x)));
}

}  // namespace pynn::simd
