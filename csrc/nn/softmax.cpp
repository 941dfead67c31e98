// Generic build of the softmax kernels and the ISA dispatch.
#define PYNN_NN_ISA generic
#include "nn/softmax_impl.h"
#undef PYNN_NN_ISA

namespace pynn::nn {

#ifdef PYNN_X86_64
namespace avx2 {
void softmax_rows(const float* x, float* y, int64_t rows, int64_t C, bool log);
void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t rows, int64_t C, bool log);
}  // namespace avx2
#endif

void softmax_rows(const float* x, float* y, int64_t rows, int64_t C, bool log) {
#ifdef PYNN_X86_64
  if (active_isa() == Isa::Avx2) return avx2::softmax_rows(x, y, rows, C, log);
#endif
  generic::softmax_rows(x, y, rows, C, log);
}

void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t rows, int64_t C, bool log) {
#ifdef PYNN_X86_64
  if (active_isa() == Isa::Avx2) return avx2::softmax_backward_rows(y, dy, dx, rows, C, log);
#endif
  generic::softmax_backward_rows(y, dy, dx, rows, C, log);
}

}  // namespace pynn::nn
