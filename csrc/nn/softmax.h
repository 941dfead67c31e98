// Softmax / log-softmax over the last axis of a contiguous (rows, C) float32
// buffer, and their gradients. Max-subtracted: stable for logits of +-1000.
#pragma once
#include <cstdint>

#include "common/dispatch.h"

namespace pynn::nn {

#define PYNN_SOFTMAX_DECLS                                                           \
  /* y = softmax(x) row-wise, or log_softmax(x) when log is true. */                 \
  void softmax_rows(const float* x, float* y, int64_t rows, int64_t C, bool log);   \
  /* softmax: dx = y (dy - sum(dy y)); log_softmax: dx = dy - exp(y) sum(dy) */      \
  void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t rows, int64_t C, bool log);
PYNN_SOFTMAX_DECLS
PYNN_ISA_DECLARE(PYNN_SOFTMAX_DECLS)
#undef PYNN_SOFTMAX_DECLS

}  // namespace pynn::nn
