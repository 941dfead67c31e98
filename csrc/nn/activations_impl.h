// The elementwise activation loops, once per activation through with_act (the
// activation is fixed inside each loop, so g++ vectorises the whole body: exp_f32,
// the erfc of GELU etc. are bit selects and arithmetic, see common/vmath.h).
// Included once per ISA (common/dispatch.h): activations.cpp and activations_avx2.cpp.
// No #pragma once.
#include "common/parallel.h"
#include "nn/activations.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (generic or avx2) before including this file"
#endif

namespace pynn::nn::PYNN_ISA {

#ifdef PYNN_ACT_GELU_VEC
// Hand-vectorised GELU (activations_avx2.cpp, defined before this include).
void gelu_forward_vec(const float* x, float* y, int64_t n);
void gelu_backward_vec(const float* x, const float* dy, float* dx, int64_t n);
void gelu_tanh_forward_vec(const float* x, float* y, int64_t n);
void gelu_tanh_backward_vec(const float* x, const float* dy, float* dx, int64_t n);
void sigmoid_forward_vec(const float* x, float* y, int64_t n);
#endif

// The pointers are copied into restrict locals inside the block body: a
// by-reference capture would let the store y[i] alias the captured pointer.
void act_forward(Act act, const float* x, float* y, int64_t n, float alpha) {
#ifdef PYNN_ACT_GELU_VEC
  if (act == Act::Gelu) return gelu_forward_vec(x, y, n);
  if (act == Act::GeluTanh) return gelu_tanh_forward_vec(x, y, n);
  if (act == Act::Sigmoid) return sigmoid_forward_vec(x, y, n);
#endif
  with_act(act, [=](auto A) {
    parallel_for(n, 1, kElemGrain, [=](int64_t b, int64_t e) {
      const float* __restrict xs = x + b;
      float* __restrict ys = y + b;
      const int64_t len = e - b;
      for (int64_t i = 0; i < len; ++i) ys[i] = ::pynn::act_forward(A.value, xs[i], alpha);
    });
  });
}

void act_backward(Act act, const float* x, const float* y, const float* dy, float* dx, int64_t n, float alpha) {
#ifdef PYNN_ACT_GELU_VEC
  if (act == Act::Gelu) return gelu_backward_vec(x, dy, dx, n);
  if (act == Act::GeluTanh) return gelu_tanh_backward_vec(x, dy, dx, n);
#endif
  with_act(act, [=](auto A) {
    parallel_for(n, 1, kElemGrain, [=](int64_t b, int64_t e) {
      const float* __restrict xs = x + b;
      const float* __restrict ys = y + b;
      const float* __restrict gs = dy + b;
      float* __restrict ds = dx + b;
      const int64_t len = e - b;
      for (int64_t i = 0; i < len; ++i) ds[i] = ::pynn::act_backward(A.value, xs[i], ys[i], gs[i], alpha);
    });
  });
}

}  // namespace pynn::nn::PYNN_ISA
