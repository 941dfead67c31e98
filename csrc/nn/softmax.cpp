// Generic build of the softmax kernels and the ISA dispatch.
#define PYNN_ISA generic
#include "nn/softmax_impl.h"
#undef PYNN_ISA

namespace pynn::nn {

void softmax_rows(const float* x, float* y, int64_t rows, int64_t C, bool log) {
  PYNN_ISA_CALL(softmax_rows, x, y, rows, C, log);
}

void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t rows, int64_t C, bool log) {
  PYNN_ISA_CALL(softmax_backward_rows, y, dy, dx, rows, C, log);
}

}  // namespace pynn::nn
