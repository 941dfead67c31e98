// Batch and layer normalisation over channels_last data viewed as rows × C.
// Statistics accumulate in double: a float sum over 10^5 rows loses digits.
#pragma once
#include <cstdint>

#include "common/dispatch.h"

namespace pynn {

// Training-mode batch norm: per-channel mean and biased variance over the rows.
// Writes y = (x − mean)·inv_std·gamma + beta, mean (C) and inv_std (C).
// gamma/beta may be null (scale 1, shift 0). The statistics, and the backward's dgamma and
// dbeta, are the same bits at any thread count (fixed row blocks, common/block_sums.h).
void batch_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std);

// dgamma = Σ dy·x̂, dbeta = Σ dy, dx = gamma·inv_std/R · (R·dy − dbeta − x̂·dgamma).
void batch_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta);

// Layer norm: statistics per row over its C values; mean/inv_std have `rows` entries.
void layer_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std);

// With g = dy·gamma: dx = inv_std/C · (C·g − Σg − x̂·Σ(g·x̂)) per row; dgamma, dbeta summed over rows
// (bitwise the same at any thread count: fixed row blocks). dx_sum (C floats, or nullptr):
// also Σ dx over the rows, the bias gradient of the layer that produced x.
void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta,
                         float* dx_sum = nullptr);

// Post-norm residual: s = x + res, then layer_norm_forward(s) into y, mean, inv_std
// (bitwise an add followed by layer_norm_forward; s is kept for the backward).
void add_layer_norm_forward(const float* x, const float* res, int64_t rows, int64_t c, const float* gamma,
                            const float* beta, float eps, float* s, float* y, float* mean, float* inv_std);

// The per-ISA builds behind the functions above (normalization_impl.h).
PYNN_ISA_DECLARE(
void batch_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std);
void batch_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta);
void layer_norm_forward(const float* x, int64_t rows, int64_t c, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* inv_std);
void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                         const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta,
                         float* dx_sum);
void add_layer_norm_forward(const float* x, const float* res, int64_t rows, int64_t c, const float* gamma,
                            const float* beta, float eps, float* s, float* y, float* mean, float* inv_std);
)

}  // namespace pynn
