// Row reductions written with 8 independent lanes. g++ will not vectorise a
// plain float max/sum reduction without -ffast-math (it may not reorder the
// additions, and maxps is not NaN-symmetric); spelling out 8 partial results
// makes the reordering ours, so the inner loops become SIMD code.
#pragma once
#include <cstdint>

#include "common/vmath.h"

namespace pynn::nn {

constexpr int kLanes = 8;

// max of x[0..n) ignoring NaN (callers see NaN come back through exp/sum);
// -inf for n == 0. An OpenMP simd max-reduction: the 8-lane spelling below the other
// reductions use stayed scalar here (g++ 12 emitted one vmaxss per element: the
// select is not recognised as a max across lanes), a third of a 128-wide softmax row.
PYNN_INLINE float row_max(const float* __restrict x, int64_t n) {
  float m = -HUGE_VALF;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// y[i] = exp(x[i] - m); returns the sum of the y[i].
PYNN_INLINE float row_exp_sum(const float* __restrict x, float m, float* __restrict y, int64_t n) {
  float acc[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float e = exp_f32(x[i + l] - m);
      y[i + l] = e;
      acc[l] += e;
    }
  float s = 0.f;
  for (; i < n; ++i) {
    y[i] = exp_f32(x[i] - m);
    s += y[i];
  }
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// sum_i a[i] * b[i].
PYNN_INLINE float row_dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float acc[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0.f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// sum_i a[i].
PYNN_INLINE float row_sum(const float* __restrict a, int64_t n) {
  float acc[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l];
  float s = 0.f;
  for (; i < n; ++i) s += a[i];
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

}  // namespace pynn::nn
