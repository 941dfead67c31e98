// AVX2+FMA build (this file alone gets -mavx2 -mfma); reached only through the
// dispatch in activations.cpp when use_avx2().
//
// GELU (exact and tanh form) has hand-written 8-lane kernels here; every other
// activation is the compiler-vectorised loop of activations_impl.h. Why: the
// auto-vectorised x·Phi(x) of common/activation.h (erfc by t·exp(P(t) − z²), a
// second exp for the density in the backward) ran at 0.3-0.4x PyTorch's speed on
// one thread; the kernels below need one exp and one division per 8 values in the
// forward *and* the backward, because the erfc is written as exp(−x²/2) times a
// polynomial, and the density is that same exp.
#include <immintrin.h>

#include "common/simd_avx2.h"

#include <algorithm>

#include "common/activation.h"
#include "common/parallel.h"

namespace pynn::nn::avx2 {
namespace {

inline __m256 set1(float v) { return _mm256_set1_ps(v); }

using simd::exp_nonpos;  // callers pass −|v| or −x²/2
using simd::recip;  // d in [1, 5.35] here: 1-2 ulp

// Phi(x) and exp(−x²/2) (the normal density times sqrt(2π)), from one exp.
// 0.5·erfc(a/√2) = t·Q(t)·exp(−a²/2) with a = |x|, t = 1/(1 + 0.3a): Q is smooth on
// t in [1/5.35, 1] (a <= 14.5, beyond which the exp is 0), so a degree-8 polynomial
// fits it to 4e-7 relative in float32 (least squares on Chebyshev nodes against
// scipy's erfcx). The tail is relative-accurate on the left, where 1 + erf would
// cancel; Phi = 1 − tail on the right. x² is split exactly (hi + lo by FMA) so the
// exp's argument carries no rounding of x² (which would cost 1e-5 relative at |x| 14).
struct PhiE {
  __m256 phi, e;
};
inline PhiE normcdf_and_gauss(__m256 x) {
  // |x| capped at 14.5 (exp(−105) is 0 already: beyond, Phi is exactly 0 or 1), so t's
  // divisor stays finite and hi, lo finite for huge or infinite x. min_ps(cap, a) returns
  // a when a is NaN: NaN flows on into t and e.
  const __m256 ac = _mm256_min_ps(set1(14.5f), _mm256_andnot_ps(set1(-0.f), x));
  const __m256 t = recip(_mm256_fmadd_ps(set1(0.3f), ac, set1(1.f)));
  __m256 q = set1(0.00491590193f);
  q = _mm256_fmadd_ps(q, t, set1(0.0132872872f));
  q = _mm256_fmadd_ps(q, t, set1(-0.114112653f));
  q = _mm256_fmadd_ps(q, t, set1(0.160701677f));
  q = _mm256_fmadd_ps(q, t, set1(-0.0246492382f));
  q = _mm256_fmadd_ps(q, t, set1(0.117240392f));
  q = _mm256_fmadd_ps(q, t, set1(0.102550715f));
  q = _mm256_fmadd_ps(q, t, set1(0.120418899f));
  q = _mm256_fmadd_ps(q, t, set1(0.119647063f));
  const __m256 hi = _mm256_mul_ps(ac, ac);
  const __m256 lo = _mm256_fmsub_ps(ac, ac, hi);
  __m256 e = exp_nonpos(_mm256_mul_ps(hi, set1(-0.5f)));
  e = _mm256_fnmadd_ps(_mm256_mul_ps(e, set1(0.5f)), lo, e);  // exp(−hi/2 − lo/2) ~ exp(−hi/2)(1 − lo/2)
  // NaN x: a is NaN, so t, q and the tail are NaN and so is Phi on either side.
  const __m256 tail = _mm256_mul_ps(_mm256_mul_ps(t, q), e);
  const __m256 phi = _mm256_blendv_ps(_mm256_sub_ps(set1(1.f), tail), tail, x);  // sign bit of x: left tail
  return {phi, e};
}

// The tanh form's gate sigmoid(2u), 2u = sqrt(8/pi)·(x + 0.044715 x³), stable on both
// sides (exp of −|2u| never overflows; e/(1 + e) on the left keeps relative accuracy).
inline __m256 gelu_tanh_gate(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(set1(0.044715f), x), x), x);
  const __m256 v = _mm256_mul_ps(set1(1.5957691216057308f), _mm256_add_ps(x, x3));
  const __m256 e = exp_nonpos(_mm256_or_ps(v, set1(-0.f)));  // exp(−|v|)
  // A true division: the gradient's s(1 − s) needs s == 1 exactly where e is 0 (there x·2u'
  // is ~1e3), which rcp + Newton does not give.
  const __m256 r = _mm256_div_ps(set1(1.f), _mm256_add_ps(set1(1.f), e));
  return _mm256_blendv_ps(r, _mm256_mul_ps(e, r), v);  // v < 0 (sign bit): e/(1 + e)
}

// Lanes past n are loaded as 0 and never stored: a tail goes through the same
// arithmetic as a full vector, so every element's bits are independent of where a
// thread's block starts (blocks are whole vectors, see run_vec).
using simd::tail_mask;

// f(i, mask, full) over [0, n) in 8-lane steps, threads taking whole vectors. Chunks are
// claimed dynamically (share_work): on a loaded machine the caller starts at once instead
// of waiting at an OpenMP fork for a helper that is not scheduled yet.
template <class F>
void run_vec(int64_t n, F f) {
  const int64_t nv = (n + 7) / 8;
  if (nv == 0) return;
  const int T = threads_for(n, kElemGrain);
  share_work(nv, std::max<int64_t>(256, nv / (8 * T)), T, [=](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) {
      const int64_t i = v * 8, rem = n - i;
      f(i, rem >= 8 ? _mm256_set1_epi32(-1) : tail_mask(rem), rem >= 8);
    }
  });
}

inline __m256 load(const float* p, __m256i m, bool full) { return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m); }
inline void store(float* p, __m256 v, __m256i m, bool full) {
  if (full) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, m, v);
}

}  // namespace

// Phi(x) = 0.5 + x·S(x²) for |x| <= 2, S of degree 8 (least squares on Chebyshev nodes
// in x², float64 against scipy's ndtr): no exp, no division. 9e-8 absolute; relative
// 2.7e-6 at x = -2, where 0.5 + x·S starts to cancel (the reason the region stops there).
inline __m256 normcdf_central(__m256 x) {
  const __m256 u = _mm256_mul_ps(x, x);
  __m256 p = set1(9.54401336e-10f);
  p = _mm256_fmadd_ps(p, u, set1(-3.2846426e-08f));
  p = _mm256_fmadd_ps(p, u, set1(6.34836397e-07f));
  p = _mm256_fmadd_ps(p, u, set1(-9.37491404e-06f));
  p = _mm256_fmadd_ps(p, u, set1(0.000115341318f));
  p = _mm256_fmadd_ps(p, u, set1(-0.00118725735f));
  p = _mm256_fmadd_ps(p, u, set1(0.00997352973f));
  p = _mm256_fmadd_ps(p, u, set1(-0.0664903745f));
  p = _mm256_fmadd_ps(p, u, set1(0.398942292f));
  return _mm256_fmadd_ps(x, p, set1(0.5f));
}

// y = x·Phi(x): |x| <= 2 from normcdf_central, the rest (and NaN) from the tail form. Each
// lane's formula depends on its own x only, so results are elementwise. A vector with a
// lane outside (~30% of them for N(0, 1) data) is not branched on where it is met (that
// branch is unpredictable: it cost more than it saved); its index is listed, branch-free,
// and a second loop over a block of 256 vectors redoes the listed ones with the tail form
// blended in. ~2x cheaper than the tail form everywhere. (The backward needs the exp for
// the density anyway; there the tail form, which shares it, is used throughout.)
void gelu_forward_vec(const float* x, float* y, int64_t n) {
  const int64_t nv = (n + 7) / 8;
  if (nv == 0) return;
  constexpr int64_t kBlock = 256;
  const int T = threads_for(n, kElemGrain);
  share_work(nv, std::max<int64_t>(kBlock, nv / (8 * T)), T, [=](int64_t b, int64_t e) {
    int32_t redo[kBlock];
    for (int64_t v0 = b; v0 < e; v0 += kBlock) {
      const int64_t v1 = std::min(e, v0 + kBlock);
      int cnt = 0;
      for (int64_t v = v0; v < v1; ++v) {
        const int64_t i = v * 8, rem = n - i;
        const bool full = rem >= 8;
        const __m256i m = full ? _mm256_set1_epi32(-1) : tail_mask(rem);
        const __m256 xv = load(x + i, m, full);
        const __m256 central = _mm256_cmp_ps(_mm256_andnot_ps(set1(-0.f), xv), set1(2.f), _CMP_LE_OQ);
        store(y + i, _mm256_mul_ps(xv, normcdf_central(xv)), m, full);
        redo[cnt] = static_cast<int32_t>(v - v0);
        cnt += _mm256_movemask_ps(central) != 0xFF;
      }
      for (int k = 0; k < cnt; ++k) {
        const int64_t i = (v0 + redo[k]) * 8, rem = n - i;
        const bool full = rem >= 8;
        const __m256i m = full ? _mm256_set1_epi32(-1) : tail_mask(rem);
        const __m256 xv = load(x + i, m, full);
        const __m256 central = _mm256_cmp_ps(_mm256_andnot_ps(set1(-0.f), xv), set1(2.f), _CMP_LE_OQ);
        const __m256 phi = _mm256_blendv_ps(normcdf_and_gauss(xv).phi, normcdf_central(xv), central);
        store(y + i, _mm256_mul_ps(xv, phi), m, full);
      }
    }
  });
}

// dx = dy·(Phi(x) + x·phi(x)), phi(x) = exp(−x²/2)/sqrt(2π). x·phi is 0·finite for
// huge |x| (the exp is 0, x finite) and inf·0 = NaN for infinite x, as the scalar row.
void gelu_backward_vec(const float* x, const float* dy, float* dx, int64_t n) {
  run_vec(n, [=](int64_t i, __m256i m, bool full) {
    const __m256 xv = load(x + i, m, full);
    const PhiE pe = normcdf_and_gauss(xv);
    const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(xv, set1(0.39894228040143268f)), pe.e, pe.phi);
    store(dx + i, _mm256_mul_ps(load(dy + i, m, full), d), m, full);
  });
}

// Sigmoid through the same exp as GELU: the compiler-vectorised exp_f32 of the scalar row
// (common/vmath.h sigmoid_f32) was slower. Same formula and branch as the scalar:
// e = exp(−|x|), r = 1/(1 + e), x >= 0 ? r : e·r (a true division, as there). Its backward
// (from the output, y(1 − y)) has no exp and stays on the generic loop.
void sigmoid_forward_vec(const float* x, float* y, int64_t n) {
  run_vec(n, [=](int64_t i, __m256i m, bool full) {
    const __m256 xv = load(x + i, m, full);
    const __m256 e = exp_nonpos(_mm256_or_ps(xv, set1(-0.f)));  // exp(−|x|)
    const __m256 r = _mm256_div_ps(set1(1.f), _mm256_add_ps(set1(1.f), e));
    store(y + i, _mm256_blendv_ps(r, _mm256_mul_ps(e, r), xv), m, full);  // sign bit: e/(1 + e)
  });
}

// y = x·sigmoid(2u) (= 0.5 x (1 + tanh u)).
void gelu_tanh_forward_vec(const float* x, float* y, int64_t n) {
  run_vec(n, [=](int64_t i, __m256i m, bool full) {
    const __m256 xv = load(x + i, m, full);
    store(y + i, _mm256_mul_ps(xv, gelu_tanh_gate(xv)), m, full);
  });
}

// dx = dy·(s + x s (1 − s)·2u'), 2u' = sqrt(8/pi)(1 + 3·0.044715 x²); x capped at ±20 in the
// second term (s(1 − s) is exactly 0 there) so x² never overflows into inf·0.
void gelu_tanh_backward_vec(const float* x, const float* dy, float* dx, int64_t n) {
  run_vec(n, [=](int64_t i, __m256i m, bool full) {
    const __m256 xv = load(x + i, m, full);
    const __m256 s = gelu_tanh_gate(xv);
    const __m256 xc = _mm256_min_ps(set1(20.f), _mm256_max_ps(set1(-20.f), xv));
    const __m256 du2 = _mm256_mul_ps(set1(1.5957691216057308f), _mm256_fmadd_ps(_mm256_mul_ps(set1(0.134145f), xc), xc, set1(1.f)));
    const __m256 s1s = _mm256_mul_ps(s, _mm256_sub_ps(set1(1.f), s));
    const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(xc, s1s), du2, s);
    store(dx + i, _mm256_mul_ps(load(dy + i, m, full), d), m, full);
  });
}

}  // namespace pynn::nn::avx2

// The impl's loops send Gelu, GeluTanh and the Sigmoid forward to the kernels above (see PYNN_ACT_GELU_VEC there).
#define PYNN_ISA avx2
#define PYNN_ACT_GELU_VEC 1
#include "nn/activations_impl.h"
