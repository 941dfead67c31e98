// Generic build of the activation kernels and the ISA dispatch.
#define PYNN_ISA generic
#include "nn/activations_impl.h"
#undef PYNN_ISA

namespace pynn::nn {

void act_forward(Act a, const float* x, float* y, int64_t n, float alpha) {
  PYNN_ISA_CALL(act_forward, a, x, y, n, alpha);
}

void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n, float alpha) {
  PYNN_ISA_CALL(act_backward, a, x, y, dy, dx, n, alpha);
}

}  // namespace pynn::nn
