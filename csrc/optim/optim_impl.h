// Element loops of the optimizers, compiled once per ISA (common/dispatch.h):
// optim.cpp (generic) and optim_avx2.cpp. No #pragma once. Flags are template parameters so every
// loop body is branch-free and the compiler vectorises it (8 lanes with AVX2).
#include "optim/optim.h"

#ifndef PYNN_ISA
#error "define PYNN_ISA (common/dispatch.h) before including this file"
#endif

#define PYNN_R __restrict__

namespace pynn::optim::PYNN_ISA {

template <bool WD, bool MOM, bool NEST>
static void sgd_loop(const SgdArgs& a, float* PYNN_R p, const float* PYNN_R g, float* PYNN_R b, int64_t n) {
  const float lr = a.lr, mu = a.momentum, wd = a.wd;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    float gi = g[i];
    if (WD) gi += wd * p[i];
    float upd = gi;
    if (MOM) {
      float bi = mu * b[i] + gi;
      b[i] = bi;
      upd = NEST ? gi + mu * bi : bi;
    }
    p[i] -= lr * upd;
  }
}

void sgd_range(const SgdArgs& a, float* p, const float* g, float* buf, int64_t n) {
  if (a.has_wd) {
    if (!a.has_momentum) sgd_loop<true, false, false>(a, p, g, buf, n);
    else if (a.nesterov) sgd_loop<true, true, true>(a, p, g, buf, n);
    else sgd_loop<true, true, false>(a, p, g, buf, n);
  } else {
    if (!a.has_momentum) sgd_loop<false, false, false>(a, p, g, buf, n);
    else if (a.nesterov) sgd_loop<false, true, true>(a, p, g, buf, n);
    else sgd_loop<false, true, false>(a, p, g, buf, n);
  }
}

template <bool CWD, bool DWD, bool AMS>
static void adam_loop(const AdamArgs& a, float* PYNN_R p, const float* PYNN_R g, float* PYNN_R m, float* PYNN_R v,
                      float* PYNN_R vmax, int64_t n) {
  const float b1 = a.b1, omb1 = a.omb1, b2 = a.b2, omb2 = a.omb2, ss = a.step_size, isb = a.inv_sqrt_bc2,
              eps = a.eps, wd = a.wd, decay = a.decay;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i], gi = g[i];
    if (CWD) gi += wd * pi;
    if (DWD) pi *= decay;
    const float mi = b1 * m[i] + omb1 * gi;
    float vi = b2 * v[i] + omb2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    if (AMS) {
      const float vm = vmax[i];
      vi = vm > vi ? vm : vi;
      vmax[i] = vi;
    }
    const float denom = __builtin_sqrtf(vi) * isb + eps;
    p[i] = pi - ss * (mi / denom);
  }
}

void adam_range(const AdamArgs& a, float* p, const float* g, float* m, float* v, float* vmax, int64_t n) {
  if (a.amsgrad) {
    if (a.coupled_wd) adam_loop<true, false, true>(a, p, g, m, v, vmax, n);
    else if (a.decoupled_wd) adam_loop<false, true, true>(a, p, g, m, v, vmax, n);
    else adam_loop<false, false, true>(a, p, g, m, v, vmax, n);
  } else {
    if (a.coupled_wd) adam_loop<true, false, false>(a, p, g, m, v, vmax, n);
    else if (a.decoupled_wd) adam_loop<false, true, false>(a, p, g, m, v, vmax, n);
    else adam_loop<false, false, false>(a, p, g, m, v, vmax, n);
  }
}

template <bool CENT, bool MOM>
static void rmsprop_loop(const RmspropArgs& a, float* PYNN_R p, const float* PYNN_R g, float* PYNN_R sq,
                         float* PYNN_R mom, float* PYNN_R gavg, int64_t n) {
  const float rho = a.rho, omr = a.omr, lr = a.lr, mu = a.momentum, eps = a.eps;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float s = rho * sq[i] + omr * (gi * gi);
    sq[i] = s;
    float var = s;
    if (CENT) {
      const float av = rho * gavg[i] + omr * gi;
      gavg[i] = av;
      var = s - av * av;
    }
    const float q = gi / (__builtin_sqrtf(var) + eps);
    if (MOM) {
      const float bi = mu * mom[i] + q;
      mom[i] = bi;
      p[i] -= lr * bi;
    } else {
      p[i] -= lr * q;
    }
  }
}

void rmsprop_range(const RmspropArgs& a, float* p, const float* g, float* sq, float* mom, float* gavg, int64_t n) {
  if (a.centered) {
    if (a.has_momentum) rmsprop_loop<true, true>(a, p, g, sq, mom, gavg, n);
    else rmsprop_loop<true, false>(a, p, g, sq, mom, gavg, n);
  } else {
    if (a.has_momentum) rmsprop_loop<false, true>(a, p, g, sq, mom, gavg, n);
    else rmsprop_loop<false, false>(a, p, g, sq, mom, gavg, n);
  }
}

void adagrad_range(const AdagradArgs& a, float* PYNN_R p, const float* PYNN_R g, float* PYNN_R acc, int64_t n) {
  const float lr = a.lr, eps = a.eps;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float s = acc[i] + gi * gi;
    acc[i] = s;
    p[i] -= lr * (gi / (__builtin_sqrtf(s) + eps));
  }
}

void adadelta_range(const AdadeltaArgs& a, float* PYNN_R p, const float* PYNN_R g, float* PYNN_R sq,
                    float* PYNN_R acc_delta, int64_t n) {
  const float rho = a.rho, omr = a.omr, lr = a.lr, eps = a.eps;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float s = rho * sq[i] + omr * (gi * gi);
    sq[i] = s;
    const float d = __builtin_sqrtf(acc_delta[i] + eps) / __builtin_sqrtf(s + eps) * gi;
    acc_delta[i] = rho * acc_delta[i] + omr * (d * d);
    p[i] -= lr * d;
  }
}

}  // namespace pynn::optim::PYNN_ISA

#undef PYNN_R
