// The conv kernels' view of the GEMM: the packed AVX2 SGEMM of csrc/gemm/.
// Until branch `gemm` is merged into this tree its header may be missing; the
// fallback below is the same declaration, copied from the agreed API, so the
// conv code compiles unchanged either way (the symbol itself comes from gemm.cpp).
#pragma once
#if __has_include("gemm/gemm.h")
#include "gemm/gemm.h"
#else
#include <cstdint>

#include "common/activation.h"

namespace pynn {
// C = act(alpha * A·B + beta * C + bias), A m×k, B k×n, C m×n, arbitrary element strides (rs row, cs column).
// bias: n floats or nullptr. beta == 0: C not read. Any m,n,k >= 0.
void sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
           const float* b, int64_t rs_b, int64_t cs_b, float beta, float* c, int64_t rs_c, int64_t cs_c,
           const float* bias, Act act, float act_alpha);
}  // namespace pynn
#endif
