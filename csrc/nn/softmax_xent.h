// Fused softmax + cross-entropy over rows of logits (rows, C): the loss per row
// and dlogits = softmax(logits) - target, in one sweep per row. Not divided by
// the batch size: the caller scales.
#pragma once
#include <cstdint>

#include "common/dispatch.h"

namespace pynn::nn {

#define PYNN_SOFTMAX_XENT_DECLS                                                                          \
  /* Sparse targets: labels[r] in [0, C) (validated by the caller). */                                   \
  void softmax_xent_sparse(const float* logits, const int64_t* labels, float* loss, float* dlogits,     \
                           int64_t rows, int64_t C);                                                     \
  /* Dense targets (rows, C), e.g. one-hot or smoothed probabilities. */                                 \
  void softmax_xent_dense(const float* logits, const float* targets, float* loss, float* dlogits,       \
                          int64_t rows, int64_t C);
PYNN_SOFTMAX_XENT_DECLS
PYNN_ISA_DECLARE(PYNN_SOFTMAX_XENT_DECLS)
#undef PYNN_SOFTMAX_XENT_DECLS

}  // namespace pynn::nn
