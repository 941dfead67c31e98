// Generic build of the softmax_xent kernels and the ISA dispatch.
#define PYNN_ISA generic
#include "nn/softmax_xent_impl.h"
#undef PYNN_ISA

namespace pynn::nn {

void softmax_xent_sparse(const float* logits, const int64_t* labels, float* loss, float* dlogits, int64_t rows,
                         int64_t C) {
  PYNN_ISA_CALL(softmax_xent_sparse, logits, labels, loss, dlogits, rows, C);
}

void softmax_xent_dense(const float* logits, const float* targets, float* loss, float* dlogits, int64_t rows,
                        int64_t C) {
  PYNN_ISA_CALL(softmax_xent_dense, logits, targets, loss, dlogits, rows, C);
}

}  // namespace pynn::nn
