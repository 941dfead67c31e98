// AVX2+FMA build of the recurrent cells (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in cells.cpp when use_avx2().
//
// On top of the auto-vectorised loops of cells_impl.h, the LSTM's block passes
// for its default activations (tanh, sigmoid) are written with intrinsics: one
// pass per 8 units computes the four gates (three sigmoids, each one vector exp
// and one reciprocal, and a tanh as a rational function: see tanh_k), the cell
// update and o·tanh(c), and stores the
// activated gates the BPTT reads. Written by hand because g++'s vectorisation
// of the scalar expressions spilled ~20 constants to the stack per call and
// set them up again for every row (profile: the gate pass was ~40% of the
// forward at 1 thread, more than the recurrent GEMM).
#define PYNN_ISA avx2
#define PYNN_RNN_LSTM_BLOCK_FAST
#include "rnn/cells_impl.h"

#include <immintrin.h>

#include <type_traits>

#include "common/simd_avx2.h"

namespace pynn::rnn::avx2 {
namespace {

// K independent vectors go through every stage side by side (the loops over k
// unroll): the gate pass is a ~50-instruction-deep chain (exp, division, then
// tanh(c) on their result), and one vector at a time left the out-of-order
// window too little independent work to fill the FMA pipes.
#define PYNN_FOR_K _Pragma("GCC unroll 8") for (int k = 0; k < K; ++k)

inline __m256 sign_bit() { return _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)); }

using simd::recip;  // 1/d by rcpp + one Newton step (relative error < 3e-7)

using simd::exp_clamped;  // exp on [-87.34, 88], ~1 ulp

// Logistic 1/(1 + exp(-x)), in place. One exp and one reciprocal; no branch
// on the sign (the stable e/(1+e) form for x < 0 is not needed: exp(-x) is
// accurate to ~1 ulp on the whole clamped range, so the quotient keeps its
// relative accuracy down to sigmoid(-88) ~ 6e-39, where the reciprocal's
// estimate flushes to 0). Measured against float64 on every 7th float of
// [-100, 100]: max relative error 2.0e-7 (the sign-split form: 2.4e-7).
template <int K>
inline void sigmoid_k(__m256 (&x)[K]) {
  PYNN_FOR_K x[k] = recip(_mm256_add_ps(_mm256_set1_ps(1.f), exp_clamped(_mm256_xor_ps(x[k], sign_bit()))));
}

// tanh, in place, as a rational function on the clamped argument: x p(x²) /
// q(x²) with p of degree 6 and q of degree 3 in x² (the minimax fit of Eigen's
// float tanh, clamped at |x| = 7.905, where it reaches 1 to float precision).
// 11 multiply-adds and one reciprocal instead of an exp, a polynomial for small
// |x| and a blend: ~3x faster in isolation. Measured against float64 on every
// 7th float of [-100, 100]: max relative error 3.4e-7, absolute 3.4e-7 (the
// exp-based form: 1.8e-7); odd (tanh(-x) = -tanh(x)) and |tanh| <= 1 exactly.
template <int K>
inline void tanh_k(__m256 (&x)[K]) {
  PYNN_FOR_K {
    const __m256 c = _mm256_set1_ps(7.90531110763549805f);
    const __m256 xc = _mm256_min_ps(c, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), c), x[k]));
    const __m256 x2 = _mm256_mul_ps(xc, xc);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.76076847742355e-16f), _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(4.89352455891786e-03f));
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.19825839466702e-06f), _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(4.89352518554385e-03f));
    x[k] = _mm256_mul_ps(_mm256_mul_ps(xc, p), recip(q));
  }
}

// Loads and stores of 8 lanes, or of the first lanes of a mask (a row's tail):
// every element of a row goes through the same instructions.
template <bool Tail>
inline __m256 ld(const float* p, __m256i m) {
  if constexpr (Tail) return _mm256_maskload_ps(p, m);
  else return _mm256_loadu_ps(p);
}
template <bool Tail>
inline void st(float* p, __m256 v, __m256i m) {
  if constexpr (Tail) _mm256_maskstore_ps(p, m, v);
  else _mm256_storeu_ps(p, v);
}

using simd::tail_mask;

// Rows this far ahead are prefetched: a row of a block is 16-128 units, a few
// hundred cycles of work, and a miss to DRAM costs about as much.
constexpr int64_t kAhead = 6;

inline void prefetch_row(const float* p, int64_t len, bool write) {
  for (int64_t j = 0; j < len; j += 16) __builtin_prefetch(p + j, write ? 1 : 0, 3);
  __builtin_prefetch(p + len - 1, write ? 1 : 0, 3);
}

// Units [j, j + 8K) of one row (Tail: K = 1 and the lanes of m).
template <int K, bool Tail, bool Save, bool HasX>
inline void lstm_fwd_vec(const LstmFwdBlock& b, const float* x, const float* rc, const float* cp, float* g, float* c,
                         float* h, int64_t j, __m256i m) {
  __m256 sg[3 * K], gg[K];  // i, f, o side by side: one 3K-wide sigmoid
  PYNN_FOR_K {
    const int64_t o = j + 8 * k;
    sg[k] = ld<Tail>(rc + o, m);
    sg[K + k] = ld<Tail>(rc + b.gs_r + o, m);
    gg[k] = ld<Tail>(rc + 2 * b.gs_r + o, m);
    sg[2 * K + k] = ld<Tail>(rc + 3 * b.gs_r + o, m);
    if constexpr (HasX) {  // else rec already holds the whole pre-activation (lstm_forward_x)
      sg[k] = _mm256_add_ps(ld<Tail>(x + o, m), sg[k]);
      sg[K + k] = _mm256_add_ps(ld<Tail>(x + b.gs_x + o, m), sg[K + k]);
      gg[k] = _mm256_add_ps(ld<Tail>(x + 2 * b.gs_x + o, m), gg[k]);
      sg[2 * K + k] = _mm256_add_ps(ld<Tail>(x + 3 * b.gs_x + o, m), sg[2 * K + k]);
    }
  }
  sigmoid_k<3 * K>(sg);
  tanh_k<K>(gg);
  __m256 cn[K];
  PYNN_FOR_K {
    const int64_t o = j + 8 * k;
    if constexpr (Save) {
      st<Tail>(g + o, sg[k], m);
      st<Tail>(g + b.gs_g + o, sg[K + k], m);
      st<Tail>(g + 2 * b.gs_g + o, gg[k], m);
      st<Tail>(g + 3 * b.gs_g + o, sg[2 * K + k], m);
    }
    cn[k] = _mm256_fmadd_ps(sg[K + k], ld<Tail>(cp + o, m), _mm256_mul_ps(sg[k], gg[k]));
    st<Tail>(c + o, cn[k], m);
  }
  tanh_k<K>(cn);
  PYNN_FOR_K st<Tail>(h + j + 8 * k, _mm256_mul_ps(sg[2 * K + k], cn[k]), m);
}

constexpr int kUnroll = 2;  // vectors side by side in a row's body

template <int K>
using IntK = std::integral_constant<int, K>;
template <bool B>
using BoolK = std::integral_constant<bool, B>;

// The row loop of both block passes: for each of n rows, prefetch(r + kAhead)
// first, then the row's len units as vec(r, j, IntK<K>, BoolK<Tail>, mask): in
// vectors of 8·kUnroll, then 8, then one masked tail vector.
template <class Prefetch, class Vec>
inline void block_rows(int64_t n, int64_t len, Prefetch&& prefetch, Vec&& vec) {
  const int64_t body = len & ~int64_t{7}, wide = len & ~int64_t{8 * kUnroll - 1};
  const __m256i tm = tail_mask(len - body), none = _mm256_setzero_si256();
  for (int64_t r = 0; r < n; ++r) {
    if (r + kAhead < n) prefetch(r + kAhead);
    int64_t j = 0;
    for (; j < wide; j += 8 * kUnroll) vec(r, j, IntK<kUnroll>(), BoolK<false>(), none);
    for (; j < body; j += 8) vec(r, j, IntK<1>(), BoolK<false>(), none);
    if (body < len) vec(r, body, IntK<1>(), BoolK<true>(), tm);
  }
}

template <bool Save, bool HasX>
void lstm_fwd_rows(const LstmFwdBlock& b) {
  const int64_t len = b.len;
  block_rows(
      b.n, len,
      [&](int64_t a) {
        for (int k = 0; k < 4; ++k) {
          if (HasX) prefetch_row(b.xw + a * b.rs_x + k * b.gs_x, len, false);
          if (Save) prefetch_row(b.gates + a * b.rs_g + k * b.gs_g, len, true);
        }
        prefetch_row(b.c_prev + a * b.rs_cp, len, false);
        prefetch_row(b.c + a * b.rs_c, len, true);
        prefetch_row(b.h + a * b.rs_h, len, true);
      },
      [&](int64_t r, int64_t j, auto K, auto Tail, __m256i m) {
        lstm_fwd_vec<decltype(K)::value, decltype(Tail)::value, Save, HasX>(
            b, HasX ? b.xw + r * b.rs_x : nullptr, b.rec + r * b.rs_r, b.c_prev + r * b.rs_cp, Save ? b.gates + r * b.rs_g : nullptr,
            b.c + r * b.rs_c, b.h + r * b.rs_h, j, m);
      });
}

template <int K, bool Tail>
inline void lstm_bwd_vec(const LstmBwdBlock& b, const float* g, const float* c, const float* cp, const float* dhs,
                         float* dh, float* dc, float* z, int64_t j, __m256i m) {
  const __m256 one = _mm256_set1_ps(1.f);
  __m256 tc[K];
  PYNN_FOR_K tc[k] = ld<Tail>(c + j + 8 * k, m);
  tanh_k<K>(tc);
  PYNN_FOR_K {
    const int64_t q = j + 8 * k;
    const __m256 dhj = _mm256_add_ps(ld<Tail>(dh + q, m), ld<Tail>(dhs + q, m));
    st<Tail>(dh + q, dhj, m);
    const __m256 i = ld<Tail>(g + q, m), f = ld<Tail>(g + b.gs_g + q, m);
    const __m256 gg = ld<Tail>(g + 2 * b.gs_g + q, m), o = ld<Tail>(g + 3 * b.gs_g + q, m);
    // dc_t = dc + dh·o·tanh'(c); the gates' derivatives read off their outputs
    const __m256 dct =
        _mm256_fmadd_ps(_mm256_mul_ps(dhj, o), _mm256_fnmadd_ps(tc[k], tc[k], one), ld<Tail>(dc + q, m));
    st<Tail>(z + q, _mm256_mul_ps(_mm256_mul_ps(dct, gg), _mm256_mul_ps(i, _mm256_sub_ps(one, i))), m);
    st<Tail>(z + b.gs_z + q,
             _mm256_mul_ps(_mm256_mul_ps(dct, ld<Tail>(cp + q, m)), _mm256_mul_ps(f, _mm256_sub_ps(one, f))), m);
    st<Tail>(z + 2 * b.gs_z + q, _mm256_mul_ps(_mm256_mul_ps(dct, i), _mm256_fnmadd_ps(gg, gg, one)), m);
    st<Tail>(z + 3 * b.gs_z + q,
             _mm256_mul_ps(_mm256_mul_ps(dhj, tc[k]), _mm256_mul_ps(o, _mm256_sub_ps(one, o))), m);
    st<Tail>(dc + q, _mm256_mul_ps(dct, f), m);
  }
}

void lstm_bwd_rows(const LstmBwdBlock& b) {
  const int64_t len = b.len;
  block_rows(
      b.n, len,
      [&](int64_t a) {
        for (int k = 0; k < 4; ++k) {
          prefetch_row(b.gates + a * b.rs_g + k * b.gs_g, len, false);
          prefetch_row(b.dz + a * b.rs_z + k * b.gs_z, len, true);
        }
        prefetch_row(b.c + a * b.rs_c, len, false);
        prefetch_row(b.c_prev + a * b.rs_cp, len, false);
        prefetch_row(b.dhs + a * b.rs_dhs, len, false);
      },
      [&](int64_t r, int64_t j, auto K, auto Tail, __m256i m) {
        lstm_bwd_vec<decltype(K)::value, decltype(Tail)::value>(
            b, b.gates + r * b.rs_g, b.c + r * b.rs_c, b.c_prev + r * b.rs_cp, b.dhs + r * b.rs_dhs,
            b.dh + r * b.rs_dh, b.dc + r * b.rs_dc, b.dz + r * b.rs_z, j, m);
      });
}

#undef PYNN_FOR_K

}  // namespace

bool lstm_fwd_block_fast(Act a, Act ra, const LstmFwdBlock& b) {
  if (a != Act::Tanh || ra != Act::Sigmoid) return false;
  if (b.len <= 0) return true;
  if (b.gates) {
    if (b.xw) lstm_fwd_rows<true, true>(b);
    else lstm_fwd_rows<true, false>(b);
  } else {
    if (b.xw) lstm_fwd_rows<false, true>(b);
    else lstm_fwd_rows<false, false>(b);
  }
  return true;
}

bool lstm_bwd_block_fast(Act a, Act ra, const LstmBwdBlock& b) {
  if (a != Act::Tanh || ra != Act::Sigmoid) return false;
  if (b.len > 0) lstm_bwd_rows(b);
  return true;
}

}  // namespace pynn::rnn::avx2
