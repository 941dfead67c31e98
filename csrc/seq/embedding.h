// Embedding lookup: gather rows of a (V, D) table; scatter-add gradients back.
#pragma once
#include <cstdint>

namespace pynn {

// out[i, :] = table[ids[i], :] for n ids (validated to lie in [0, V)).
void embedding_gather(const float* table, int64_t d, const int64_t* ids, int64_t n, float* out);
// grad (V, D) zeroed here, then grad[ids[i], :] += dy[i, :]. Threads split the D
// columns, so repeated ids never race and the sum order per row is fixed.
void embedding_scatter_add(const float* dy, int64_t d, const int64_t* ids, int64_t n, int64_t v, float* grad);

}  // namespace pynn
