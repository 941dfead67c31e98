// The activations, listed once. PYNN_ACTIVATIONS is an X-macro: one row per
// activation, by its Keras name, with
//   from_output  its gradient is readable from the output y alone (the backward
//                of a fused act(x·W + b) and the recurrent cells need only y);
//   forward      act(x), an expression in x and a (= act_alpha: the leaky_relu
//                slope, the elu scale; ignored by the others);
//   backward     dx = act'(x)·g, an expression in x, y = act(x), g (the upstream
//                gradient) and a. Rows with from_output == true read only y, g, a.
// Everything below is generated from it: the Act enum, parse_act and the names,
// act_forward / act_backward, and with_act, the one dispatcher that turns a
// run-time Act into a template argument. Every epilogue (GEMM tile, implicit-GEMM
// conv, elementwise kernels, recurrent cells) is instantiated through with_act, so
// a new row here is all the C++ a new activation needs.
//
// The expressions are branch-free (select_f32, common/vmath.h), so a loop over
// them vectorises. Gradients follow torch / JAX at the kinks: relu'(0) = 0,
// relu6 and hard_sigmoid have zero slope at both corners, leaky_relu'(0) = a.
#pragma once
#include <string>
#include <type_traits>

#include "common/vmath.h"

namespace pynn {

// SELU's fixed constants (Klambauer et al.; Keras and torch use the same digits).
constexpr float kSeluScale = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;

// relu with relu(NaN) = NaN (the comparison is written so NaN falls through to x).
PYNN_INLINE float relu_f32(float x) { return select_f32(x < 0.f, 0.f, x); }
PYNN_INLINE float relu6_f32(float x) {
  const float r = relu_f32(x);
  return select_f32(r > 6.f, 6.f, r);
}
PYNN_INLINE float elu_f32(float x, float a) { return select_f32(x > 0.f, x, a * expm1_f32(x)); }
// Keras 3 (and torch): relu6(x + 3) / 6, not Keras 2's 0.2 x + 0.5.
PYNN_INLINE float hard_sigmoid_f32(float x) { return relu6_f32(x + 3.f) / 6.f; }

// GELU, exact: x Phi(x); Phi' is the normal density.
PYNN_INLINE float gelu_grad_f32(float x) {
  return normcdf_f32(x) + x * (0.39894228040143268f * exp_f32(-0.5f * x * x));
}
// GELU, tanh form (Keras approximate=True, torch approximate='tanh'):
// 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); the
// sigmoid form keeps relative accuracy in the left tail where 1 + tanh cancels.
PYNN_INLINE float gelu_tanh_f32(float x) {
  const float u2 = 1.5957691216057308f * (x + 0.044715f * x * x * x);
  return x * sigmoid_f32(u2);
}
// d/dx = s + x s (1 - s) 2u'. |x| is capped at 20 in the second term, where
// s (1 - s) is already exactly 0 in float32, so that x^2 cannot overflow to inf * 0.
PYNN_INLINE float gelu_tanh_grad_f32(float x) {
  const float xc = select_f32(x > 20.f, 20.f, select_f32(x < -20.f, -20.f, x));
  const float s = sigmoid_f32(1.5957691216057308f * (x + 0.044715f * x * x * x));
  const float du2 = 1.5957691216057308f * (1.f + 0.134145f * xc * xc);
  return s + xc * (s * (1.f - s)) * du2;
}
PYNN_INLINE float softsign_grad_f32(float x) {
  const float d = 1.f + std::fabs(x);
  return 1.f / (d * d);
}
PYNN_INLINE float silu_grad_f32(float x) {
  const float s = sigmoid_f32(x);
  return s * (1.f + x * (1.f - s));
}
// x relu6(x + 3) / 6: (relu6(x + 3) + x [-3 < x < 3]) / 6 by the product rule.
PYNN_INLINE float hard_silu_grad_f32(float x) {
  return (relu6_f32(x + 3.f) + select_f32((x > -3.f) & (x < 3.f), x, 0.f)) / 6.f;
}
// mish = x tanh(softplus(x)), with tanh(log(1 + e^x)) = n / (n + 2), n = e^x (e^x + 2):
// accurate in both tails; x is capped at 20, where the ratio is already 1 in float32.
// d/dx = t + x sigmoid(x) (1 - t^2), 1 - t^2 = (4n + 4) / (n + 2)^2.
PYNN_INLINE float mish_ratio_f32(float xc, float* n_out) {
  const float e = exp_f32(xc);
  const float n = e * (e + 2.f);
  *n_out = n;
  return n / (n + 2.f);
}
PYNN_INLINE float mish_f32(float x) {
  float n;
  return x * mish_ratio_f32(select_f32(x > 20.f, 20.f, x), &n);
}
PYNN_INLINE float mish_grad_f32(float x) {
  const float xc = select_f32(x > 20.f, 20.f, x);
  float n;
  const float t = mish_ratio_f32(xc, &n);
  const float d = n + 2.f;
  return t + xc * sigmoid_f32(xc) * ((4.f * n + 4.f) / (d * d));
}

// X(Id, "keras name", from_output, forward(x, a), backward(x, y, g, a))
#define PYNN_ACTIVATIONS(X)                                                                                  \
  X(Linear, "linear", true, x, g)                                                                            \
  X(Relu, "relu", true, relu_f32(x), select_f32(y > 0.f, g, 0.f))                                            \
  X(LeakyRelu, "leaky_relu", false, select_f32(x < 0.f, a * x, x), select_f32(x > 0.f, g, a * g))            \
  X(Sigmoid, "sigmoid", true, sigmoid_f32(x), g * (y * (1.f - y)))                                           \
  X(Tanh, "tanh", true, tanh_f32(x), g * (1.f - y * y))                                                      \
  X(Gelu, "gelu", false, x * normcdf_f32(x), g * gelu_grad_f32(x))                                           \
  X(GeluTanh, "gelu_tanh", false, gelu_tanh_f32(x), g * gelu_tanh_grad_f32(x))                               \
  X(Elu, "elu", false, elu_f32(x, a), select_f32(x > 0.f, g, g * (y + a)))                                   \
  X(Selu, "selu", true, kSeluScale * elu_f32(x, kSeluAlpha),                                                 \
    select_f32(y > 0.f, g * kSeluScale, g * (y + kSeluScale * kSeluAlpha)))                                  \
  X(Softplus, "softplus", true, softplus_f32(x), g * -expm1_f32(-y))                                         \
  X(Softsign, "softsign", false, x / (1.f + std::fabs(x)), g * softsign_grad_f32(x))                         \
  X(Exponential, "exponential", true, exp_f32(x), g * y)                                                     \
  X(Relu6, "relu6", true, relu6_f32(x), select_f32((y > 0.f) & (y < 6.f), g, 0.f))                           \
  X(Silu, "silu", false, x * sigmoid_f32(x), g * silu_grad_f32(x))                                           \
  X(HardSilu, "hard_silu", false, x * relu6_f32(x + 3.f) / 6.f, g * hard_silu_grad_f32(x))                   \
  X(HardSigmoid, "hard_sigmoid", true, hard_sigmoid_f32(x), select_f32((y > 0.f) & (y < 1.f), g / 6.f, 0.f)) \
  X(Mish, "mish", false, mish_f32(x), g * mish_grad_f32(x))

// ------------------------------------------------------------ generated
enum class Act : int {
#define PYNN_ACT_ENUM(id, ...) id,
  PYNN_ACTIVATIONS(PYNN_ACT_ENUM)
#undef PYNN_ACT_ENUM
};

// Keras names in list order (the index is the Act value).
constexpr const char* kActNames[] = {
#define PYNN_ACT_NAME(id, name, ...) name,
    PYNN_ACTIVATIONS(PYNN_ACT_NAME)
#undef PYNN_ACT_NAME
};
constexpr int kNumActs = static_cast<int>(sizeof(kActNames) / sizeof(kActNames[0]));

static constexpr bool act_from_output(Act act) {
  switch (act) {
#define PYNN_ACT_FROM_Y(id, name, from_y, ...) \
  case Act::id:                                \
    return from_y;
    PYNN_ACTIVATIONS(PYNN_ACT_FROM_Y)
#undef PYNN_ACT_FROM_Y
  }
  return false;
}

// The Act of a Keras name; false for an unknown name (aliases such as swish are
// the Python layer's business).
static inline bool parse_act(const std::string& name, Act* out) {
  for (int i = 0; i < kNumActs; ++i)
    if (name == kActNames[i]) {
      *out = static_cast<Act>(i);
      return true;
    }
  return false;
}

// act(x). With `act` a compile-time constant (the A of with_act) the switch folds
// away and only the row's expression is left in the loop.
PYNN_INLINE float act_forward(Act act, float x, float a) {
  switch (act) {
#define PYNN_ACT_FWD(id, name, from_y, fwd, ...) \
  case Act::id:                                  \
    return fwd;
    PYNN_ACTIVATIONS(PYNN_ACT_FWD)
#undef PYNN_ACT_FWD
  }
  return x;
}

// dx = act'(x) g, with y = act(x). For from_output activations x is not read.
PYNN_INLINE float act_backward(Act act, float x, float y, float g, float a) {
  switch (act) {
#define PYNN_ACT_BWD(id, name, from_y, fwd, bwd) \
  case Act::id:                                  \
    return bwd;
    PYNN_ACTIVATIONS(PYNN_ACT_BWD)
#undef PYNN_ACT_BWD
  }
  return g;
}

// act'(x) read off y = act(x) (from_output activations only).
PYNN_INLINE float act_derivative_from_output(Act act, float y, float a) { return act_backward(act, y, y, 1.f, a); }

template <Act A>
using ActC = std::integral_constant<Act, A>;

// The dispatcher: f(ActC<A>{}) with A == act, so f's loop is compiled once per
// activation with the activation fixed. Callers compiled per ISA must live in an
// ISA-named or anonymous namespace (common/dispatch.h), so that the instantiations
// of different ISAs never merge at link time.
template <class F>
void with_act(Act act, F&& f) {
  switch (act) {
#define PYNN_ACT_CASE(id, ...) \
  case Act::id:                \
    f(ActC<Act::id>{});        \
    return;
    PYNN_ACTIVATIONS(PYNN_ACT_CASE)
#undef PYNN_ACT_CASE
  }
}

// The same over the from_output activations only (others: nothing is called; the
// bindings reject them first). Keeps the recurrent cells' (act x recurrent_act)
// instantiations to the activations they can differentiate.
template <class F>
void with_act_from_output(Act act, F&& f) {
  with_act(act, [&](auto A) {
    if constexpr (act_from_output(decltype(A)::value)) f(A);
  });
}

}  // namespace pynn
