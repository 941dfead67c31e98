// Generic build of the activation kernels and the ISA dispatch.
#define PYNN_NN_ISA generic
#include "nn/activations_impl.h"
#undef PYNN_NN_ISA

namespace pynn::nn {

#ifdef PYNN_X86_64
namespace avx2 {
void act_forward(Act a, const float* x, float* y, int64_t n, float alpha);
void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                  float alpha);
}  // namespace avx2
#endif

void act_forward(Act a, const float* x, float* y, int64_t n, float alpha) {
#ifdef PYNN_X86_64
  if (active_isa() == Isa::Avx2) return avx2::act_forward(a, x, y, n, alpha);
#endif
  generic::act_forward(a, x, y, n, alpha);
}

void act_backward(Act a, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                  float alpha) {
#ifdef PYNN_X86_64
  if (active_isa() == Isa::Avx2) return avx2::act_backward(a, x, y, dy, dx, n, alpha);
#endif
  generic::act_backward(a, x, y, dy, dx, n, alpha);
}

}  // namespace pynn::nn
