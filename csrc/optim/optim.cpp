// Multi-tensor drivers: coefficients in double once per call, ISA dispatch,
// and one share_work job (common/parallel.h) over the combined element range of all tensors.
#define PYNN_ISA generic
#include "optim/optim_impl.h"
#undef PYNN_ISA

#include <algorithm>
#include <cmath>

#include "common/parallel.h"

namespace pynn {
namespace optim {
namespace {

// Elements per thread below which one thread does it all (fork/join ~ few us;
// at ~20 GB/s and 28 B/param, 64k params take ~90 us).
constexpr int64_t kGrain = 1 << 16;
// Part boundaries are multiples of 16 floats (64 B) of the tensor they fall in.
constexpr int64_t kAlign = 16;
constexpr int64_t kPartsPerThread = 4;

// Calls f(k, begin, len) for every piece of tensor k that falls in this
// thread's share of the combined range [0, total).
template <class F>
void for_ranges(const std::vector<int64_t>& sizes, F f) {
  const size_t nt = sizes.size();
  std::vector<int64_t> off(nt + 1, 0);
  for (size_t k = 0; k < nt; ++k) off[k + 1] = off[k] + sizes[k];
  const int64_t total = off[nt];
  if (total == 0) return;
  auto run = [&](int64_t lo, int64_t hi) {
    size_t k = static_cast<size_t>(std::upper_bound(off.begin(), off.end(), lo) - off.begin()) - 1;
    for (; k < nt && off[k] < hi; ++k) {
      const int64_t a = std::max(lo, off[k]), b = std::min(hi, off[k + 1]);
      if (b > a) f(k, a - off[k], b - a);
    }
  };
  // kPartsPerThread parts per thread, claimed dynamically (share_work): a helper that starts
  // late (a busy machine) leaves the caller a part or two, not half the step. Every element
  // is updated on its own, so the split never changes a result.
  const int T = threads_for(total, kGrain);
  const int64_t parts = T <= 1 ? 1 : int64_t{T} * kPartsPerThread;
  // Boundaries at multiples of kAlign floats of the tensor they fall in (not of the combined
  // range): each element then takes the same path through the vectorised loop (body, or the
  // tensor's own tail) at any thread count. Boundaries aligned in the combined range instead
  // gave 2 elements in 200k that differed by an ulp between 1 and 2 threads (the compiler's
  // scalar tail and vector body need not contract the same products into FMAs).
  auto bound = [&](int64_t i) {
    if (i >= parts) return total;
    int64_t b = total / parts * i;
    const int64_t k = static_cast<int64_t>(std::upper_bound(off.begin(), off.end(), b) - off.begin()) - 1;
    b -= (b - off[static_cast<size_t>(k)]) % kAlign;
    return b;
  };
  share_work(parts, 1, T, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) run(bound(i), bound(i + 1));
  });
}

inline float* at(const std::vector<float*>& v, size_t k, int64_t off) { return v.empty() ? nullptr : v[k] + off; }

}  // namespace

void sgd_step(const TensorList& t, double lr, double momentum, bool nesterov, double weight_decay) {
  SgdArgs a{static_cast<float>(lr), static_cast<float>(momentum), static_cast<float>(weight_decay),
            nesterov, momentum != 0.0, weight_decay != 0.0};
  auto fn = PYNN_ISA_PICK(sgd_range);
  for_ranges(t.n, [&](size_t k, int64_t o, int64_t len) {
    fn(a, t.p[k] + o, t.g[k] + o, at(t.s0, k, o), len);
  });
}

void adam_step(const TensorList& t, double lr, double beta_1, double beta_2, double epsilon, int64_t step,
               double weight_decay, bool decoupled, bool amsgrad) {
  const double bc1 = 1.0 - std::pow(beta_1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta_2, static_cast<double>(step));
  const bool wd = weight_decay != 0.0;
  AdamArgs a{static_cast<float>(beta_1), static_cast<float>(1.0 - beta_1),
             static_cast<float>(beta_2), static_cast<float>(1.0 - beta_2),
             static_cast<float>(lr / bc1), static_cast<float>(1.0 / std::sqrt(bc2)),
             static_cast<float>(epsilon), static_cast<float>(weight_decay),
             static_cast<float>(1.0 - lr * weight_decay), wd && !decoupled, wd && decoupled, amsgrad};
  auto fn = PYNN_ISA_PICK(adam_range);
  for_ranges(t.n, [&](size_t k, int64_t o, int64_t len) {
    fn(a, t.p[k] + o, t.g[k] + o, t.s0[k] + o, t.s1[k] + o, at(t.s2, k, o), len);
  });
}

void rmsprop_step(const TensorList& t, double lr, double rho, double momentum, double epsilon, bool centered) {
  RmspropArgs a{static_cast<float>(rho), static_cast<float>(1.0 - rho), static_cast<float>(lr),
                static_cast<float>(momentum), static_cast<float>(epsilon), centered, momentum != 0.0};
  auto fn = PYNN_ISA_PICK(rmsprop_range);
  for_ranges(t.n, [&](size_t k, int64_t o, int64_t len) {
    fn(a, t.p[k] + o, t.g[k] + o, t.s0[k] + o, at(t.s1, k, o), at(t.s2, k, o), len);
  });
}

void adagrad_step(const TensorList& t, double lr, double epsilon) {
  AdagradArgs a{static_cast<float>(lr), static_cast<float>(epsilon)};
  auto fn = PYNN_ISA_PICK(adagrad_range);
  for_ranges(t.n, [&](size_t k, int64_t o, int64_t len) { fn(a, t.p[k] + o, t.g[k] + o, t.s0[k] + o, len); });
}

void adadelta_step(const TensorList& t, double lr, double rho, double epsilon) {
  AdadeltaArgs a{static_cast<float>(rho), static_cast<float>(1.0 - rho), static_cast<float>(lr),
                 static_cast<float>(epsilon)};
  auto fn = PYNN_ISA_PICK(adadelta_range);
  for_ranges(t.n, [&](size_t k, int64_t o, int64_t len) {
    fn(a, t.p[k] + o, t.g[k] + o, t.s0[k] + o, t.s1[k] + o, len);
  });
}

}  // namespace optim
}  // namespace pynn
