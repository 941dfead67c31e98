// The activation is chosen once, outside the loop: each case instantiates its
// own loop over a branch-free lambda, which g++ vectorises (the whole body,
// including exp_f32, is selects and arithmetic). Only GELU calls libm (erfcf)
// and stays scalar in that part.
#include "nn/activations.h"

#include "nn/parallel.h"

namespace pynn::nn {
namespace {

template <class F>
void map1(const float* __restrict x, float* __restrict y, int64_t n, F f) {
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

template <class F>
void map3(const float* __restrict x, const float* __restrict y, const float* __restrict dy,
          float* __restrict dx, int64_t n, F f) {
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = f(x[i], y[i], dy[i]);
  });
}

}  // namespace

void act_forward(Act a, const float* x, float* y, int64_t n, float alpha) {
  switch (a) {
    case Act::Linear: map1(x, y, n, [](float v) { return v; }); break;
    case Act::Relu: map1(x, y, n, [](float v) { return v < 0.f ? 0.f : v; }); break;
    case Act::LeakyRelu: map1(x, y, n, [alpha](float v) { return v < 0.f ? alpha * v : v; }); break;
    case Act::Sigmoid: map1(x, y, n, [](float v) { return sigmoid_f32(v); }); break;
    case Act::Tanh: map1(x, y, n, [](float v) { return tanh_f32(v); }); break;
    case Act::Gelu: map1(x, y, n, [](float v) { return v * normcdf_f32(v); }); break;
    case Act::Elu:
      map1(x, y, n, [alpha](float v) { return v > 0.f ? v : alpha * expm1_f32(v); });
      break;
  }
}

void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                  float alpha) {
  switch (a) {
    case Act::Linear: map3(x, y, dy, dx, n, [](float, float, float g) { return g; }); break;
    case Act::Relu:
      map3(x, y, dy, dx, n, [](float v, float, float g) { return v > 0.f ? g : 0.f; });
      break;
    case Act::LeakyRelu:
      map3(x, y, dy, dx, n, [alpha](float v, float, float g) { return v > 0.f ? g : alpha * g; });
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
           [alpha](float v, float o, float g) { return v > 0.f ? g : g * (o + alpha); });
      break;
  }
}

}  // namespace pynn::nn
