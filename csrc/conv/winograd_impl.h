// The Winograd F(2x2, 3x3) transforms (conv/winograd.h), compiled once per ISA
// (common/dispatch.h): winograd.cpp (generic) and winograd_avx2.cpp. Each loops over the
// channels, contiguous in NHWC, so the compiler vectorises it (8 channels per ymm with AVX2);
// the 4x4 tile arithmetic is the same on every lane. No #pragma once.
//
//   Bᵀ = | 1  0 -1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |         | 1/2  1/2  1/2|          | 0  1 -1 -1 |
//        | 0 -1  1  0 |         | 1/2 -1/2  1/2|
//        | 0  1  0 -1 |         | 0    0    1  |
#include "conv/winograd.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (generic or avx2) before including this file"
#endif

namespace pynn::winograd::PYNN_ISA {

void input_tile(int64_t C, const float* const* src, float* v, int64_t vs) {
  const float* __restrict s[16];
  for (int k = 0; k < 16; ++k) s[k] = src[k];
  float* __restrict o = v;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    float t[4][4];  // t = Bᵀ d: columns of d combined
    for (int j = 0; j < 4; ++j) {
      const float d0 = s[j][c], d1 = s[4 + j][c], d2 = s[8 + j][c], d3 = s[12 + j][c];
      t[0][j] = d0 - d2;
      t[1][j] = d1 + d2;
      t[2][j] = d2 - d1;
      t[3][j] = d1 - d3;
    }
    for (int i = 0; i < 4; ++i) {  // (Bᵀ d) B: rows combined
      o[(4 * i + 0) * vs + c] = t[i][0] - t[i][2];
      o[(4 * i + 1) * vs + c] = t[i][1] + t[i][2];
      o[(4 * i + 2) * vs + c] = t[i][2] - t[i][1];
      o[(4 * i + 3) * vs + c] = t[i][1] - t[i][3];
    }
  }
}

void output_tile(int64_t OC, const float* mt, int64_t ms, const float* bias, float* const* dst, Act act,
                 float act_alpha) {
  const float* __restrict m = mt;
  const float* __restrict b = bias;
  float* __restrict y0 = dst[0];
  float* __restrict y1 = dst[1];
  float* __restrict y2 = dst[2];
  float* __restrict y3 = dst[3];
  with_act(act, [&](auto A) {
#pragma omp simd
    for (int64_t o = 0; o < OC; ++o) {
      float r[4][2];  // r = m A: rows of m combined
      for (int i = 0; i < 4; ++i) {
        const float m0 = m[(4 * i) * ms + o], m1 = m[(4 * i + 1) * ms + o];
        const float m2 = m[(4 * i + 2) * ms + o], m3 = m[(4 * i + 3) * ms + o];
        r[i][0] = m0 + m1 + m2;
        r[i][1] = m1 - m2 - m3;
      }
      const float bo = b[o];
      y0[o] = act_forward(A.value, r[0][0] + r[1][0] + r[2][0] + bo, act_alpha);
      y1[o] = act_forward(A.value, r[0][1] + r[1][1] + r[2][1] + bo, act_alpha);
      y2[o] = act_forward(A.value, r[1][0] - r[2][0] - r[3][0] + bo, act_alpha);
      y3[o] = act_forward(A.value, r[1][1] - r[2][1] - r[3][1] + bo, act_alpha);
    }
  });
}

}  // namespace pynn::winograd::PYNN_ISA
