// Scalar float32 math written so that g++ vectorises a loop over it without
// -ffast-math: branch-free inline functions (bit selects, polynomials, no libm
// calls). std::exp in a loop stays a scalar libm call; exp_f32 below becomes SIMD.
//
// Everything here is `static inline` (PYNN_INLINE): this header is compiled both into
// generic and into *_avx2.cpp translation units, and an `inline` function with
// external linkage would be merged by the linker into whichever copy it sees
// first -- possibly the AVX2 one, which would then crash a generic CPU.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) || defined(__clang__)
// Forced: with -flto the inliner otherwise may outline exp_f32, and a call in
// the loop body stops vectorisation (measured: 5x slower sigmoid in _C.so).
#define PYNN_INLINE static inline __attribute__((always_inline))
#else
#define PYNN_INLINE static inline
#endif

namespace pynn {

// ------------------------------------------------------------ vectorisable math
PYNN_INLINE float bits_to_f32(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
PYNN_INLINE int32_t f32_to_bits(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

// c ? a : b as a bit blend. Under g++'s default -ftrapping-math a plain `?:`
// whose arm computes anything (a*x, exp...) is kept as a branch -- FP ops may
// not be executed speculatively -- and the loop is not vectorised. Here both
// arms are always computed (they are in every caller anyway), so the select is
// data flow and becomes andps/andnps/orps (or a blend).
PYNN_INLINE float select_f32(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  const uint32_t r = (static_cast<uint32_t>(f32_to_bits(a)) & m) | (static_cast<uint32_t>(f32_to_bits(b)) & ~m);
  return bits_to_f32(static_cast<int32_t>(r));
}

// exp(x) to ~1 ulp (Cephes expf): x = n*ln2 + r with |r| <= ln2/2, exp(r) by a
// degree-6 polynomial, 2^n built in the exponent bits. 2^n is applied as two
// factors 2^(n/2) * 2^(n-n/2) so that the whole range, down to the denormals
// (x >= -103.97) and up to FLT_MAX (x <= 88.72), is exact without a branch.
// NaN propagates; +inf -> inf; -inf -> 0.
PYNN_INLINE float exp_f32(float x) {
  const float hi = 88.72283935546875f, lo = -104.0f;
  float xc = select_f32(x > hi, hi, x);
  xc = select_f32(xc < lo, lo, xc);
  // round(xc * log2(e)) with the 1.5*2^23 trick: vectorises on SSE2 (no roundps).
  const float magic = 12582912.0f;
  const float t = xc * 1.44269504088896341f + magic;
  const float fn = t - magic;
  // Integer parts in uint32: wraps (instead of signed-overflow UB) for NaN input,
  // whose result is NaN through the polynomial anyway.
  const uint32_t n = static_cast<uint32_t>(f32_to_bits(t)) - static_cast<uint32_t>(f32_to_bits(magic));
  float r = xc - fn * 0.693359375f;      // ln2 split hi/lo: fn*hi is exact
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(n) >> 1), n2 = n - n1;
  const float s1 = bits_to_f32(static_cast<int32_t>((n1 + 127u) << 23));
  const float s2 = bits_to_f32(static_cast<int32_t>((n2 + 127u) << 23));
  const float out = (y * s1) * s2;
  return select_f32(x > hi, HUGE_VALF, out);
}

// exp(x) - 1 without the cancellation of exp_f32(x) - 1 near 0 (ELU needs it
// relative-accurate for small |x|): Taylor to x^8 for |x| < 0.35 (error < 1e-9
// relative), exp_f32(x) - 1 outside (there the subtraction loses < 1 ulp).
PYNN_INLINE float expm1_f32(float x) {
  float p = 1.f / 40320.f;
  p = p * x + 1.f / 5040.f;
  p = p * x + 1.f / 720.f;
  p = p * x + 1.f / 120.f;
  p = p * x + 1.f / 24.f;
  p = p * x + 1.f / 6.f;
  p = p * x + 0.5f;
  p = p * x + 1.f;
  const float small = p * x;
  const float big = exp_f32(x) - 1.f;
  return select_f32(std::fabs(x) < 0.35f, small, big);
}

// tanh to a few ulp (Cephes tanhf): odd polynomial for |x| < 0.625, else
// 1 - 2/(exp(2|x|) + 1), which saturates to +-1 without overflow trouble.
PYNN_INLINE float tanh_f32(float x) {
  const float ax = std::fabs(x);
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * x + x;
  const float e = exp_f32(2.f * ax);
  const float big_abs = 1.f - 2.f / (e + 1.f);
  const float big = select_f32(x < 0.f, -big_abs, big_abs);
  return select_f32(ax < 0.625f, small, big);
}

// Stable logistic: exp of -|x| never overflows, and the x < 0 branch e/(1+e)
// keeps full relative accuracy for very negative x (sigmoid(-1000) = 0, no inf).
PYNN_INLINE float sigmoid_f32(float x) {
  const float e = exp_f32(-std::fabs(x));
  const float r = 1.f / (1.f + e);
  return select_f32(x >= 0.f, r, e * r);
}

// erfc(z) for z >= 0 to 1.05e-7 relative over the whole range (Chebyshev fit
// of Numerical Recipes' erfcc, checked against scipy on [0, 15]):
// erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2). z2 = z*z is passed in so the
// caller can form it without an extra rounding. Vectorisable (libm erfcf is not).
PYNN_INLINE float erfc_pos_f32(float z, float z2) {
  const float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * exp_f32(p - z2);
}

// Normal CDF Phi(x) = erfc(-x/sqrt2)/2, from the tail erfc(|x|/sqrt2) on
// either side: relative accuracy in the left tail, where 1 + erf(x/sqrt2)
// would cancel, and 1 - tail/2 on the right. z^2 = x^2/2 is formed from x
// directly (no rounding of x/sqrt2 squared).
PYNN_INLINE float normcdf_f32(float x) {
  const float ax = std::fabs(x);
  const float half_tail = 0.5f * erfc_pos_f32(ax * 0.70710678118654752f, 0.5f * (x * x));
  const float r = select_f32(x < 0.f, half_tail, 1.f - half_tail);
  return select_f32(x != x, x, r);  // NaN in, NaN out
}

// log(u) for u in [1, 2] (the argument range of log1p below), to ~1 ulp (Cephes
// logf): u = 2^e m with m in [sqrt(1/2), sqrt 2), log(m) by a degree-9 polynomial.
PYNN_INLINE float log_1to2_f32(float u) {
  const int32_t bits = f32_to_bits(u);
  float e = static_cast<float>((bits >> 23) - 126);
  float m = bits_to_f32((bits & 0x007fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  const bool small = m < 0.70710678118654752f;
  e = select_f32(small, e - 1.f, e);
  m = select_f32(small, m + m - 1.f, m - 1.f);
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  return m + y + e * 0.693359375f;
}

// log(1 + z) for z in [0, 1] with full relative accuracy near 0: u = 1 + z rounds,
// and (z - (u - 1)) / u restores what the rounding lost (u == 1: the result is z).
PYNN_INLINE float log1p_01_f32(float z) {
  const float u = 1.f + z;
  return log_1to2_f32(u) + (z - (u - 1.f)) / u;
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows, and for
// very negative x it is e^x to full relative accuracy.
PYNN_INLINE float softplus_f32(float x) {
  const float r = select_f32(x > 0.f, x, 0.f) + log1p_01_f32(exp_f32(-std::fabs(x)));
  return select_f32(x != x, x, r);  // NaN in, NaN out
}

}  // namespace pynn
