#include "norm/normalization.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"

#define PYNN_ISA generic
#include "norm/normalization_impl.h"
#undef PYNN_ISA

namespace pynn {

// The kernels live in normalization_impl.h, compiled here (generic) and in
// normalization_avx2.cpp (AVX2/FMA); dispatched at run time.
void batch_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  PYNN_ISA_CALL(batch_norm_forward, x, rows, c, gamma, beta, eps, y, mean, inv_std);
}

void batch_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta) {
  PYNN_ISA_CALL(batch_norm_backward, x, dy, rows, c, mean, inv_std, gamma, dx, dgamma, dbeta);
}

void layer_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std) {
  PYNN_ISA_CALL(layer_norm_forward, x, rows, c, gamma, beta, eps, y, mean, inv_std);
}

void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta,
                         float* dx_sum) {
  PYNN_ISA_CALL(layer_norm_backward, x, dy, rows, c, mean, inv_std, gamma, dx, dgamma, dbeta, dx_sum);
}

void add_layer_norm_forward(const float* x, const float* res, int64_t rows, int64_t c, const float* gamma,
                            const float* beta, float eps, float* s, float* y, float* mean, float* inv_std) {
  PYNN_ISA_CALL(add_layer_norm_forward, x, res, rows, c, gamma, beta, eps, s, y, mean, inv_std);
}

}  // namespace pynn
