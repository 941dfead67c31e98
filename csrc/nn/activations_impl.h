// The activation is chosen once, outside the loop: each case instantiates its
// own loop over a branch-free lambda, which g++ vectorises (the whole body,
// including exp_f32 and the erfc of GELU, is bit selects and arithmetic; see
// select_f32 in common/activation.h).
// Included once per ISA: activations.cpp (generic, SSE2) and
// activations_avx2.cpp (-mavx2 -mfma), each with its own PYNN_NN_ISA namespace,
// so the same plain loops are vectorised 4 and 8 wide. No #pragma once.
#include "nn/activations.h"
#include "nn/parallel.h"

#ifndef PYNN_NN_ISA
#error "define PYNN_NN_ISA (generic or avx2) before including this file"
#endif

namespace pynn::nn::PYNN_NN_ISA {
namespace {

// The pointers are copied into restrict locals inside the block body: a
// by-reference capture would let the store y[i] alias the captured pointer.
template <class F>
void map1(const float* x, float* y, int64_t n, F f) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    const float* __restrict xs = x + b;
    float* __restrict ys = y + b;
    const int64_t len = e - b;
    for (int64_t i = 0; i < len; ++i) ys[i] = f(xs[i]);
  });
}

template <class F>
void map3(const float* x, const float* y, const float* dy, float* dx, int64_t n, F f) {
  parallel_for(n, 1, [=](int64_t b, int64_t e) {
    const float* __restrict xs = x + b;
    const float* __restrict ys = y + b;
    const float* __restrict gs = dy + b;
    float* __restrict ds = dx + b;
    const int64_t len = e - b;
    for (int64_t i = 0; i < len; ++i) ds[i] = f(xs[i], ys[i], gs[i]);
  });
}

}  // namespace

void act_forward(Act a, const float* x, float* y, int64_t n, float alpha) {
  switch (a) {
    case Act::Linear: map1(x, y, n, [](float v) { return v; }); break;
    case Act::Relu: map1(x, y, n, [](float v) { return select_f32(v < 0.f, 0.f, v); }); break;
    case Act::LeakyRelu: map1(x, y, n, [alpha](float v) { return select_f32(v < 0.f, alpha * v, v); }); break;
    case Act::Sigmoid: map1(x, y, n, [](float v) { return sigmoid_f32(v); }); break;
    case Act::Tanh: map1(x, y, n, [](float v) { return tanh_f32(v); }); break;
    case Act::Gelu: map1(x, y, n, [](float v) { return v * normcdf_f32(v); }); break;
    case Act::Elu:
      map1(x, y, n, [alpha](float v) { return select_f32(v > 0.f, v, alpha * expm1_f32(v)); });
      break;
  }
}

void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                  float alpha) {
  switch (a) {
    case Act::Linear: map3(x, y, dy, dx, n, [](float, float, float g) { return g; }); break;
    case Act::Relu:
      map3(x, y, dy, dx, n, [](float v, float, float g) { return select_f32(v > 0.f, g, 0.f); });
      break;
    case Act::LeakyRelu:
      map3(x, y, dy, dx, n, [alpha](float v, float, float g) { return select_f32(v > 0.f, g, alpha * g); });
      break;
    case Act::Sigmoid:
      map3(x, y, dy, dx, n, [](float, float s, float g) { return g * (s * (1.f - s)); });
      break;
    case Act::Tanh:
      map3(x, y, dy, dx, n, [](float, float t, float g) { return g * (1.f - t * t); });
      break;
    case Act::Gelu:
      map3(x, y, dy, dx, n,
           [](float v, float, float g) { return g * act_derivative(Act::Gelu, v, 0.f, 0.f); });
      break;
    case Act::Elu:
      map3(x, y, dy, dx, n,
           [alpha](float v, float o, float g) { return select_f32(v > 0.f, g, g * (o + alpha)); });
      break;
  }
}

}  // namespace pynn::nn::PYNN_NN_ISA
