// One row at a time, rows split over threads. A row of C floats is read three
// times (max, exp+sum, scale) but stays in L1/L2 between the passes for any
// realistic class count, so memory traffic is one read and one write per row.
// Included once per ISA (softmax.cpp generic, softmax_avx2.cpp with -mavx2
// -mfma), each inside its own PYNN_ISA namespace. No #pragma once.
#include "nn/softmax.h"
#include <cmath>
#include "common/parallel.h"
#include "nn/rowmath.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (common/dispatch.h) before including this file"
#endif

namespace pynn::nn::PYNN_ISA {

void softmax_rows(const float* x, float* y, int64_t rows, int64_t C, bool log) {
  parallel_for(rows, C, kElemGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * C;
      float* __restrict yr = y + r * C;
      const float m = row_max(xr, C);
      const float s = row_exp_sum(xr, m, yr, C);
      if (log) {
        // (x - m) - log s, not x - (m + log s): m + log s would round away
        // log s when |m| is large (logits of 1000 keep only 6e-5 of it).
        const float ls = std::log(s);
        for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - m) - ls;
      } else {
        const float inv = 1.f / s;
        for (int64_t i = 0; i < C; ++i) yr[i] *= inv;
      }
    }
  });
}

void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t rows, int64_t C,
                           bool log) {
  parallel_for(rows, C, kElemGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict yr = y + r * C;
      const float* __restrict gr = dy + r * C;
      float* __restrict dr = dx + r * C;
      if (log) {
        const float s = row_sum(gr, C);
        for (int64_t i = 0; i < C; ++i) dr[i] = gr[i] - exp_f32(yr[i]) * s;
      } else {
        const float d = row_dot(gr, yr, C);
        for (int64_t i = 0; i < C; ++i) dr[i] = yr[i] * (gr[i] - d);
      }
    }
  });
}

}  // namespace pynn::nn::PYNN_ISA
