// The loops of nn/elementwise.h, once per ISA (elementwise.cpp, elementwise_avx2.cpp).
// Each follows NumPy's own order of operations where NumPy's result is deterministic
// (see elementwise.h); g++ vectorises them without reassociating anything (no
// -ffast-math): the 8 pairwise accumulators are one (float) or two (double) registers,
// the column loops run across the columns. No #pragma once.
#include <algorithm>
#include <cmath>

#include "nn/elementwise.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef PYNN_ISA
#error "define PYNN_ISA (generic or avx2) before including this file"
#endif

namespace pynn::nn::PYNN_ISA {
namespace {

// NumPy's @TYPE@_pairwise_sum, transcribed (same association, same accumulators).
template <class T>
T pairwise(const T* __restrict a, int64_t n) {
  if (n < 8) {
    T r = T(-0.0);  // NumPy starts here so that a sum of -0.0s stays -0.0
    for (int64_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    const int64_t end = n - (n % 8);
    for (; i < end; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

// NumPy's binary maximum/minimum: a if a is NaN, else (a > b ? a : b) / (a < b ? a : b).
template <class T>
inline T np_max(T a, T b) { return (a != a) ? a : (a > b ? a : b); }
template <class T>
inline T np_minimum(T a, T b) { return (a != a) ? a : (a < b ? a : b); }
template <bool IsMax, class T>
inline T np_ext(T a, T b) { return IsMax ? np_max(a, b) : np_minimum(a, b); }

#if defined(__AVX2__)
// g++ does not vectorise a compare-and-select under its default -ftrapping-math, so the
// AVX2 build spells the loops with intrinsics. MAXPS(a, b) is exactly (a > b ? a : b)
// (MINPS: a < b ? a : b), NumPy's order of operands; the NaN case is a blend on top.
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using R = __m256;
  static constexpr int kN = 8;
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static R set1(float s) { return _mm256_set1_ps(s); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static R unord(R a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static R unord2(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }  // a or b is NaN
  static R zero() { return _mm256_setzero_ps(); }
  static R blend(R a, R b, R m) { return _mm256_blendv_ps(a, b, m); }  // m ? b : a
  static R bor(R a, R b) { return _mm256_or_ps(a, b); }
  static bool any(R m) { return _mm256_movemask_ps(m) != 0; }
};
template <>
struct Vec<double> {
  using R = __m256d;
  static constexpr int kN = 4;
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static R set1(double s) { return _mm256_set1_pd(s); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R max(R a, R b) { return _mm256_max_pd(a, b); }
  static R min(R a, R b) { return _mm256_min_pd(a, b); }
  static R unord(R a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
  static R unord2(R a, R b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
  static R zero() { return _mm256_setzero_pd(); }
  static R blend(R a, R b, R m) { return _mm256_blendv_pd(a, b, m); }
  static R bor(R a, R b) { return _mm256_or_pd(a, b); }
  static bool any(R m) { return _mm256_movemask_pd(m) != 0; }
};
// NumPy's maximum(a, b) / minimum(a, b), a vector at a time.
template <bool IsMax, class T>
inline typename Vec<T>::R vext(typename Vec<T>::R a, typename Vec<T>::R b) {
  using V = Vec<T>;
  return V::blend(IsMax ? V::max(a, b) : V::min(a, b), a, V::unord(a));
}
#endif

// Extreme of a row, NaN propagated (the first NaN of the row is returned).
template <bool IsMax, class T>
T row_extreme(const T* __restrict x, int64_t n) {
  int64_t i = 1;
  T m = x[0];
#if defined(__AVX2__)
  using V = Vec<T>;
  constexpr int W = 2 * V::kN;  // two independent accumulators
  if (n >= 2 * W) {
    typename V::R a0 = V::load(x), a1 = V::load(x + V::kN);
    typename V::R nan = V::bor(V::unord(a0), V::unord(a1));
    for (i = W; i + W <= n; i += W) {
      const typename V::R v0 = V::load(x + i), v1 = V::load(x + i + V::kN);
      // (v > acc ? v : acc): NaN v are left out here and caught by the flag.
      a0 = IsMax ? V::max(v0, a0) : V::min(v0, a0);
      a1 = IsMax ? V::max(v1, a1) : V::min(v1, a1);
      nan = V::bor(nan, V::bor(V::unord(v0), V::unord(v1)));
    }
    if (V::any(nan)) {
      for (int64_t k = 0; k < n; ++k)
        if (x[k] != x[k]) return x[k];
    }
    alignas(32) T lanes[W];
    V::store(lanes, a0);
    V::store(lanes + V::kN, a1);
    m = lanes[0];
    for (int l = 1; l < W; ++l) m = np_ext<IsMax>(m, lanes[l]);
  }
#endif
  for (; i < n; ++i) m = np_ext<IsMax>(m, x[i]);
  return m;
}

template <class T>
void rows_impl(ReduceOp op, const T* x, T* out, int64_t r0, int64_t r1, int64_t n) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = x + r * n;
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Mean: out[r] = T(0) + pairwise(row, n); break;  // add.reduce starts from 0.0
      case ReduceOp::Max: out[r] = row_extreme<true>(row, n); break;
      case ReduceOp::Min: out[r] = row_extreme<false>(row, n); break;
    }
  }
}

// The binary operations a column reduction folds with: scalar and (AVX2) vector forms of
// NumPy's add and maximum/minimum, so one loop below serves sum, mean, max and min.
template <class T>
struct AddOp {
  // NaN + NaN: the vector ADDPS returns its first operand's NaN (the running sum's, as NumPy's
  // loop does); the scalar a + b may be emitted with the operands swapped, so say it outright.
  static T f(T a, T b) { return (a != a) ? a : a + b; }
#if defined(__AVX2__)
  static typename Vec<T>::R v(typename Vec<T>::R a, typename Vec<T>::R b) {  // the same rule, per lane
    return Vec<T>::blend(Vec<T>::add(a, b), a, Vec<T>::unord(a));
  }
#endif
};
template <bool IsMax, class T>
struct ExtOp {
  static T f(T a, T b) { return np_ext<IsMax>(a, b); }
#if defined(__AVX2__)
  static typename Vec<T>::R v(typename Vec<T>::R a, typename Vec<T>::R b) { return vext<IsMax, T>(a, b); }
#endif
};

// o[c] = Op(o[c], x[r, c0 + c]) for rows r0.. in order: NumPy's binary loop down the
// columns, bit for bit (each column on its own: vectorising across columns reorders nothing).
template <class Op, class T>
void cols_fold(const T* x, T* __restrict o, int64_t r0, int64_t rows, int64_t C, int64_t c0, int64_t w) {
  for (int64_t r = r0; r < rows; ++r) {
    const T* __restrict xr = x + r * C + c0;
    int64_t c = 0;
#if defined(__AVX2__)
    using V = Vec<T>;
    for (; c + V::kN <= w; c += V::kN) V::store(o + c, Op::v(V::load(o + c), V::load(xr + c)));
#endif
    for (; c < w; ++c) o[c] = Op::f(o[c], xr[c]);
  }
}

#if defined(__AVX2__)
// cols_fold for whole blocks of kRegs vectors of columns, the block's running values held in
// registers down all the rows (cols_fold stores and reloads them every row: for max/min,
// whose NaN-aware step is three dependent instructions, that store/reload chain made a
// 1024x1024 float32 max over axis 0 slower than NumPy's; measured 141 vs 131 us).
// Sum: acc = acc + x[r], the same additions in the same order (a NaN sum, whose payload depends
// on the operand order the compiler picked, is redone by AddOp's explicit rule). Max/min: acc = MAXPS(acc, x[r])
// is NumPy's (acc > x ? acc : x) whenever neither is NaN; a NaN anywhere in the block (one
// unordered compare per pair of vectors) sends the block back to cols_fold's exact NaN rule.
// Returns the columns done (a multiple of the block width); the caller folds the rest.
template <class Op, bool Ext, bool IsMax, class T>
int64_t cols_fold_regs(const T* x, T* __restrict o, int64_t rows, int64_t C, int64_t c0, int64_t w) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int kRegs = 8;
  constexpr int64_t kW = kRegs * V::kN;
  // Rows in tiles: each register block folds kTile rows, then the next block the same rows, so
  // the reads stay within kTile rows' pages (one register block straight down all the rows read
  // 256 bytes per 4-8 KB row and lost to NumPy's row-streaming loop on 2 MB arrays: 0.75x).
  constexpr int64_t kTile = 32;
  const int64_t wr = w - w % kW;  // the columns done here
  if (wr == 0 || (Ext && rows < 1)) return 0;  // no first row to start from: the caller's loop
  R nan = V::zero();
  for (int64_t t0 = 0; t0 < rows; t0 += kTile) {
    const int64_t t1 = std::min(rows, t0 + kTile);
    for (int64_t c = 0; c < wr; c += kW) {
      const T* xc = x + c0 + c;
      R acc[kRegs];
      int64_t r = t0;
      if (t0 > 0) {
        for (int k = 0; k < kRegs; ++k) acc[k] = V::load(o + c + k * V::kN);
      } else if (Ext) {  // maximum.reduce starts from the first row
        for (int k = 0; k < kRegs; ++k) acc[k] = V::load(xc + k * V::kN);
        for (int k = 0; k < kRegs; k += 2) nan = V::bor(nan, V::unord2(acc[k], acc[k + 1]));
        r = 1;
      } else {  // add.reduce starts from 0.0
        for (int k = 0; k < kRegs; ++k) acc[k] = V::set1(T(0));
      }
      for (; r < t1; ++r) {
        const T* xr = xc + r * C;
        R v[kRegs];
        for (int k = 0; k < kRegs; ++k) v[k] = V::load(xr + k * V::kN);
        if (Ext) {
          for (int k = 0; k < kRegs; ++k) acc[k] = IsMax ? V::max(acc[k], v[k]) : V::min(acc[k], v[k]);
          const R u = V::bor(V::bor(V::unord2(v[0], v[1]), V::unord2(v[2], v[3])),
                             V::bor(V::unord2(v[4], v[5]), V::unord2(v[6], v[7])));
          nan = V::bor(nan, u);
        } else {
          for (int k = 0; k < kRegs; ++k) acc[k] = V::add(acc[k], v[k]);  // the payload rule: below
        }
      }
      for (int k = 0; k < kRegs; ++k) V::store(o + c + k * V::kN, acc[k]);
    }
  }
  if (!Ext)  // a NaN in any column's sum: its payload follows AddOp's rule (redone below)
    for (int64_t c = 0; c < wr; c += 2 * V::kN) nan = V::bor(nan, V::unord2(V::load(o + c), V::load(o + c + V::kN)));
  if (V::any(nan)) {  // rare: the exact fold, NaN rule and all, for these columns
    for (int64_t c = 0; c < wr; ++c) o[c] = Ext ? x[c0 + c] : T(0);
    cols_fold<Op>(x, o, Ext ? 1 : 0, rows, C, c0, wr);
  }
  return wr;
}
#endif

template <class T>
void cols_impl(ReduceOp op, const T* x, T* out, int64_t rows, int64_t C, int64_t c0, int64_t c1) {
  T* __restrict o = out + c0;
  const int64_t w = c1 - c0;
  int64_t done = 0;
  if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
#if defined(__AVX2__)
    done = cols_fold_regs<AddOp<T>, false, false>(x, o, rows, C, c0, w);
#endif
    for (int64_t c = done; c < w; ++c) o[c] = T(0);  // add.reduce starts from 0.0 (-0.0 columns give 0.0)
    cols_fold<AddOp<T>>(x, o + done, 0, rows, C, c0 + done, w - done);
    return;
  }
  if (op == ReduceOp::Max) {
#if defined(__AVX2__)
    done = cols_fold_regs<ExtOp<true, T>, true, true>(x, o, rows, C, c0, w);
#endif
    for (int64_t c = done; c < w; ++c) o[c] = x[c0 + c];  // maximum.reduce starts from the first row
    cols_fold<ExtOp<true, T>>(x, o + done, 1, rows, C, c0 + done, w - done);
  } else {
#if defined(__AVX2__)
    done = cols_fold_regs<ExtOp<false, T>, true, false>(x, o, rows, C, c0, w);
#endif
    for (int64_t c = done; c < w; ++c) o[c] = x[c0 + c];
    cols_fold<ExtOp<false, T>>(x, o + done, 1, rows, C, c0 + done, w - done);
  }
}

template <bool IsMax, bool ScalarFirst, class T>
void ext_scalar(const T* x, T s, T* y, int64_t n) {
  // y may be x (out=x): each element is read before it is written.
  int64_t i = 0;
#if defined(__AVX2__)
  using V = Vec<T>;
  const typename V::R vs = V::set1(s);
  for (; i + V::kN <= n; i += V::kN) {
    const typename V::R v = V::load(x + i);
    V::store(y + i, ScalarFirst ? vext<IsMax, T>(vs, v) : vext<IsMax, T>(v, vs));
  }
#endif
  for (; i < n; ++i) y[i] = ScalarFirst ? np_ext<IsMax>(s, x[i]) : np_ext<IsMax>(x[i], s);
}

template <class T>
void max_scalar_impl(const T* x, T s, T* y, int64_t n, bool is_max, bool scalar_first) {
  if (is_max)
    scalar_first ? ext_scalar<true, true>(x, s, y, n) : ext_scalar<true, false>(x, s, y, n);
  else
    scalar_first ? ext_scalar<false, true>(x, s, y, n) : ext_scalar<false, false>(x, s, y, n);
}

}  // namespace

#define PYNN_EW_DEFINE(T)                                                                          \
  void reduce_rows(ReduceOp op, const T* x, T* out, int64_t r0, int64_t r1, int64_t n) {          \
    rows_impl<T>(op, x, out, r0, r1, n);                                                           \
  }                                                                                                \
  void reduce_cols(ReduceOp op, const T* x, T* out, int64_t rows, int64_t C, int64_t c0, int64_t c1) { \
    cols_impl<T>(op, x, out, rows, C, c0, c1);                                                     \
  }                                                                                                \
  void max_scalar(const T* x, T s, T* y, int64_t n, bool is_max, bool scalar_first) {              \
    max_scalar_impl<T>(x, s, y, n, is_max, scalar_first);                                         \
  }
PYNN_EW_DEFINE(float)
PYNN_EW_DEFINE(double)
#undef PYNN_EW_DEFINE

}  // namespace pynn::nn::PYNN_ISA
