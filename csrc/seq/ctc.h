// CTC negative log-likelihood and its gradient w.r.t. log-probabilities,
// forward-backward with per-step rescaling (probability space, double), one sample per thread.
#pragma once
#include <cstdint>

namespace pynn {

// log_probs (N, T, C) C-contiguous; labels (N, S); lengths already validated
// (1 <= input_lengths[n] <= T, 0 <= label_lengths[n] <= S, labels in [0, C), != blank).
// Writes loss (N) (inf for impossible alignments) and grad (N, T, C): zero past
// each input length and for infinite losses.
void ctc_loss(const float* log_probs, int64_t n, int64_t t, int64_t c, const int64_t* labels, int64_t s,
              const int64_t* input_lengths, const int64_t* label_lengths, int64_t blank, float* loss, float* grad);

}  // namespace pynn
