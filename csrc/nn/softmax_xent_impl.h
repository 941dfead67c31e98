// loss = logsumexp(x) - sum_j t_j x_j (for sum_j t_j = 1) is written per element
// as sum_j t_j (log s - (x_j - m)) with m the row max and s = sum exp(x - m), which equals -sum_j t_j log_softmax(x)_j also for
// targets that do not sum to 1. The exp values land in dlogits and are scaled
// in place, so the row is read from memory once.
// Included once per ISA (softmax_xent.cpp generic, softmax_xent_avx2.cpp with -mavx2
// -mfma), each inside its own PYNN_ISA namespace. No #pragma once.
#include "nn/softmax_xent.h"
#include <cmath>
#include "common/parallel.h"
#include "nn/rowmath.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (common/dispatch.h) before including this file"
#endif

namespace pynn::nn::PYNN_ISA {

void softmax_xent_sparse(const float* logits, const int64_t* labels, float* loss, float* dlogits,
                         int64_t rows, int64_t C) {
  parallel_for(rows, C, kElemGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = logits + r * C;
      float* __restrict dr = dlogits + r * C;
      const float m = row_max(xr, C);
      const float s = row_exp_sum(xr, m, dr, C);
      const float inv = 1.f / s;
      for (int64_t i = 0; i < C; ++i) dr[i] *= inv;
      const int64_t k = labels[r];
      loss[r] = std::log(s) - (xr[k] - m);  // not (m + log s) - x: see softmax.cpp
      dr[k] -= 1.f;
    }
  });
}

void softmax_xent_dense(const float* logits, const float* targets, float* loss, float* dlogits,
                        int64_t rows, int64_t C) {
  parallel_for(rows, C, kElemGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = logits + r * C;
      const float* __restrict tr = targets + r * C;
      float* __restrict dr = dlogits + r * C;
      const float m = row_max(xr, C);
      const float s = row_exp_sum(xr, m, dr, C);
      const float inv = 1.f / s, ls = std::log(s);
      float acc[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      int64_t i = 0;
      for (; i + kLanes <= C; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
          const float t = tr[i + l];
          acc[l] += t * (ls - (xr[i + l] - m));
          dr[i + l] = dr[i + l] * inv - t;
        }
      float L = 0.f;
      for (; i < C; ++i) {
        L += tr[i] * (ls - (xr[i] - m));
        dr[i] = dr[i] * inv - tr[i];
      }
      for (int l = 0; l < kLanes; ++l) L += acc[l];
      loss[r] = L;
    }
  });
}

}  // namespace pynn::nn::PYNN_ISA
