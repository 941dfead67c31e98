// Scalar definitions of the activations, shared by the elementwise kernels and
// the GEMM epilogue so both compute exactly the same function. Written as
// plain inline functions the compiler can vectorise inside a loop.
#pragma once
#include <cmath>
#include <cstring>
#include <string>

namespace pynn {

enum class Act : int { Linear = 0, Relu, LeakyRelu, Sigmoid, Tanh, Gelu, Elu };

inline bool parse_act(const std::string& name, Act* out) {
  if (name == "linear" || name == "none" || name.empty()) *out = Act::Linear;
  else if (name == "relu") *out = Act::Relu;
  else if (name == "leaky_relu") *out = Act::LeakyRelu;
  else if (name == "sigmoid") *out = Act::Sigmoid;
  else if (name == "tanh") *out = Act::Tanh;
  else if (name == "gelu") *out = Act::Gelu;
  else if (name == "elu") *out = Act::Elu;
  else return false;
  return true;
}

// alpha: slope for leaky_relu, scale for elu; ignored by the others.
// GELU is the exact erf form (Keras approximate=False, torch's default).
inline float act_forward(Act a, float x, float alpha) {
  switch (a) {
    case Act::Linear: return x;
    case Act::Relu: return x > 0.f ? x : 0.f;
    case Act::LeakyRelu: return x > 0.f ? x : alpha * x;
    case Act::Sigmoid: return 1.f / (1.f + std::exp(-x));
    case Act::Tanh: return std::tanh(x);
    case Act::Gelu: return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f));
    case Act::Elu: return x > 0.f ? x : alpha * (std::exp(x) - 1.f);
  }
  return x;
}

// d act / dx at x (y = act_forward(x) given for the cheap forms).
inline float act_derivative(Act a, float x, float y, float alpha) {
  switch (a) {
    case Act::Linear: return 1.f;
    case Act::Relu: return x > 0.f ? 1.f : 0.f;
    case Act::LeakyRelu: return x > 0.f ? 1.f : alpha;
    case Act::Sigmoid: return y * (1.f - y);
    case Act::Tanh: return 1.f - y * y;
    case Act::Gelu: {
      const float cdf = 0.5f * (1.f + std::erf(x * 0.70710678118654752f));
      const float pdf = 0.39894228040143268f * std::exp(-0.5f * x * x);
      return cdf + x * pdf;
    }
    case Act::Elu: return x > 0.f ? 1.f : y + alpha;
  }
  return 1.f;
}

}  // namespace pynn
