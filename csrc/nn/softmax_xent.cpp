// Generic build of the softmax_xent kernels and the ISA dispatch.
#define PYNN_NN_ISA generic
#include "nn/softmax_xent_impl.h"
#undef PYNN_NN_ISA

namespace pynn::nn {

#ifdef PYNN_X86_64
namespace avx2 {
void softmax_xent_sparse(const float* logits, const int64_t* labels, float* loss, float* dlogits, int64_t rows, int64_t C);
void softmax_xent_dense(const float* logits, const float* targets, float* loss, float* dlogits, int64_t rows, int64_t C);
}  // namespace avx2
#endif

void softmax_xent_sparse(const float* logits, const int64_t* labels, float* loss, float* dlogits, int64_t rows, int64_t C) {
#ifdef PYNN_X86_64
  if (active_isa() == Isa::Avx2) return avx2::softmax_xent_sparse(logits, labels, loss, dlogits, rows, C);
#endif
  generic::softmax_xent_sparse(logits, labels, loss, dlogits, rows, C);
}

void softmax_xent_dense(const float* logits, const float* targets, float* loss, float* dlogits, int64_t rows, int64_t C) {
#ifdef PYNN_X86_64
  if (active_isa() == Isa::Avx2) return avx2::softmax_xent_dense(logits, targets, loss, dlogits, rows, C);
#endif
  generic::softmax_xent_dense(logits, targets, loss, dlogits, rows, C);
}

}  // namespace pynn::nn
