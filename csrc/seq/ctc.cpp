#include "seq/ctc.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/parallel.h"

namespace pynn {
namespace {

// Probability space with per-step rescaling (Graves et al. 2006, §4.1): α̂_t and
// β̂_t are α_t, β_t divided by their sums over s, and log p = Σ_t log(scale_t).
// The recursions are then plain multiply-adds; the only transcendentals are one
// exp per emission and one log per step (log-space needs ~6 per state and step).
// Emissions at step t are shifted by the step's largest log-probability among
// the label's classes (added back to log p), and everything is in double, so a
// path probability of e^-700 per step still does not underflow.
void ctc_one(const float* lp, int64_t t_len, int64_t c, const int64_t* label, int64_t s_len, int64_t blank,
             float* loss, float* grad) {
  const int64_t sp = 2 * s_len + 1;
  std::vector<int64_t> ext(sp, blank);
  for (int64_t i = 0; i < s_len; ++i) ext[2 * i + 1] = label[i];
  std::vector<char> skip(sp, 0);  // l'(s) may follow l'(s-2): a label different from it
  for (int64_t i = 2; i < sp; ++i) skip[i] = ext[i] != blank && ext[i] != ext[i - 2];

  std::vector<double> y(t_len * sp), alpha(t_len * sp, 0.0), beta(t_len * sp, 0.0);
  double log_shift = 0.0;
  for (int64_t t = 0; t < t_len; ++t) {
    const float* row = lp + t * c;
    float m = row[ext[0]];
    for (int64_t s = 1; s < sp; ++s) m = std::max(m, row[ext[s]]);
    log_shift += m;
    for (int64_t s = 0; s < sp; ++s) y[t * sp + s] = std::exp(static_cast<double>(row[ext[s]] - m));
  }

  double log_p = log_shift;
  bool possible = true;
  alpha[0] = y[0];
  if (sp > 1) alpha[1] = y[1];
  for (int64_t t = 0; t < t_len && possible; ++t) {
    double* cur = &alpha[t * sp];
    if (t > 0) {
      const double* prev = &alpha[(t - 1) * sp];
      const double* yt = &y[t * sp];
      for (int64_t s = 0; s < sp; ++s) {
        double a = prev[s];
        if (s >= 1) a += prev[s - 1];
        if (s >= 2 && skip[s]) a += prev[s - 2];
        cur[s] = a * yt[s];
      }
    }
    double scale = 0.0;
    for (int64_t s = 0; s < sp; ++s) scale += cur[s];
    if (!(scale > 0.0)) possible = false;
    else {
      for (int64_t s = 0; s < sp; ++s) cur[s] /= scale;
      log_p += std::log(scale);
    }
  }
  // The end state: the last blank or the last label at the final step.
  const double* last = &alpha[(t_len - 1) * sp];
  const double end = last[sp - 1] + (sp > 1 ? last[sp - 2] : 0.0);
  std::memset(grad, 0, sizeof(float) * t_len * c);
  if (!possible || !(end > 0.0)) {
    *loss = std::numeric_limits<float>::infinity();  // impossible alignment: inf loss, zero gradient
    return;
  }
  log_p += std::log(end);
  *loss = static_cast<float>(-log_p);

  double* bl = &beta[(t_len - 1) * sp];
  bl[sp - 1] = y[(t_len - 1) * sp + sp - 1];
  if (sp > 1) bl[sp - 2] = y[(t_len - 1) * sp + sp - 2];
  for (int64_t t = t_len - 1; t >= 0; --t) {
    double* cur = &beta[t * sp];
    if (t < t_len - 1) {
      const double* nxt = &beta[(t + 1) * sp];
      const double* yt = &y[t * sp];
      for (int64_t s = 0; s < sp; ++s) {
        double b = nxt[s];
        if (s + 1 < sp) b += nxt[s + 1];
        if (s + 2 < sp && skip[s + 2]) b += nxt[s + 2];
        cur[s] = b * yt[s];
      }
    }
    double scale = 0.0;
    for (int64_t s = 0; s < sp; ++s) scale += cur[s];
    if (scale > 0.0)
      for (int64_t s = 0; s < sp; ++s) cur[s] /= scale;
  }
  // Occupancy of state s at step t: α̂β̂/y normalised over s (the per-step scales
  // cancel); d(−log p)/d lp[t, k] = −Σ_{s: l'(s)=k} occupancy.
  std::vector<double> occ(sp);
  for (int64_t t = 0; t < t_len; ++t) {
    const double *a = &alpha[t * sp], *b = &beta[t * sp], *yt = &y[t * sp];
    double z = 0.0;
    for (int64_t s = 0; s < sp; ++s) {
      occ[s] = yt[s] > 0.0 ? a[s] * b[s] / yt[s] : 0.0;
      z += occ[s];
    }
    if (!(z > 0.0)) continue;
    float* g = grad + t * c;
    for (int64_t s = 0; s < sp; ++s) g[ext[s]] -= static_cast<float>(occ[s] / z);
  }
}

}  // namespace

void ctc_loss(const float* log_probs, int64_t n, int64_t t, int64_t c, const int64_t* labels, int64_t s,
              const int64_t* input_lengths, const int64_t* label_lengths, int64_t blank, float* loss, float* grad) {
  // Samples dealt one at a time (their input lengths differ), no waiting for a late thread.
  share_work(n, 1, threads_for(n * t * c, 1 << 14), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      float* g = grad + i * t * c;
      ctc_one(log_probs + i * t * c, input_lengths[i], c, labels + i * s, label_lengths[i], blank, &loss[i], g);
      std::memset(g + input_lengths[i] * c, 0, sizeof(float) * (t - input_lengths[i]) * c);
    }
  });
}

}  // namespace pynn
