// Body of the recurrent cells (see cells.h), compiled once per ISA
// (common/dispatch.h: cells.cpp generic, cells_avx2.cpp avx2). No #pragma once.
// Each loop runs over units with the activations fixed at compile time (A, R
// template arguments, from with_act_from_output), on __restrict pointers, so g++
// vectorises it whole: the activations of common/activation.h are branch-free.
// The backward reads each derivative off the saved activation (from_output).
#include "rnn/cells.h"

#include <vector>

#ifndef PYNN_ISA
#error "define PYNN_ISA (common/dispatch.h) before including this file"
#endif

namespace pynn::rnn::PYNN_ISA {
namespace {

// Forced inline (as common/activation.h does): under -flto g++ otherwise
// outlines these, and a call per element stops the loops from vectorising
// (measured: the LSTM cell pass 2.5x slower than the GEMMs it follows).
template <Act A>
PYNN_INLINE float fw(float x) { return act_forward(A, x, 0.f); }
// derivative read off the output y
template <Act A>
PYNN_INLINE float dv(float y) { return act_derivative_from_output(A, y, 0.f); }

template <Act A>
void simple_fwd_t(int64_t len, const float* __restrict xw, const float* __restrict rec, float* __restrict h) {
  if (rec)
    for (int64_t j = 0; j < len; ++j) h[j] = fw<A>(xw[j] + rec[j]);
  else
    for (int64_t j = 0; j < len; ++j) h[j] = fw<A>(xw[j]);
}

template <Act A>
void simple_bwd_t(int64_t len, const float* __restrict h, const float* __restrict dhs, float* __restrict dh,
                  float* __restrict dz) {
  for (int64_t j = 0; j < len; ++j) {
    const float g = dh[j] + dhs[j];
    dh[j] = g;
    dz[j] = g * dv<A>(h[j]);
  }
}

template <Act A, Act R, bool Save = true>
void lstm_fwd_t(int64_t len, const float* __restrict xi, const float* __restrict xf, const float* __restrict xg,
                const float* __restrict xo, const float* __restrict ri, const float* __restrict rf,
                const float* __restrict rg, const float* __restrict ro, const float* __restrict c_prev,
                float* __restrict gi, float* __restrict gf, float* __restrict gg, float* __restrict go,
                float* __restrict c, float* __restrict h) {
  for (int64_t j = 0; j < len; ++j) {
    const float i = fw<R>(xi[j] + ri[j]), f = fw<R>(xf[j] + rf[j]);
    const float g = fw<A>(xg[j] + rg[j]), o = fw<R>(xo[j] + ro[j]);
    if constexpr (Save) {
      gi[j] = i;
      gf[j] = f;
      gg[j] = g;
      go[j] = o;
    }
    const float cn = f * c_prev[j] + i * g;
    c[j] = cn;
    h[j] = o * fw<A>(cn);
  }
}

template <Act A, Act R>
void lstm_bwd_t(int64_t len, const float* __restrict gi, const float* __restrict gf, const float* __restrict gg,
                const float* __restrict go, const float* __restrict c, const float* __restrict c_prev,
                const float* __restrict dhs, float* __restrict dh, float* __restrict dc, float* __restrict di,
                float* __restrict df, float* __restrict dg, float* __restrict dout) {
  for (int64_t j = 0; j < len; ++j) {
    const float dhj = dh[j] + dhs[j];
    dh[j] = dhj;
    const float i = gi[j], f = gf[j], g = gg[j], o = go[j];
    const float tc = fw<A>(c[j]);
    const float dct = dc[j] + dhj * o * dv<A>(tc);
    di[j] = dct * g * dv<R>(i);
    df[j] = dct * c_prev[j] * dv<R>(f);
    dg[j] = dct * i * dv<A>(g);
    dout[j] = dhj * tc * dv<R>(o);
    dc[j] = dct * f;
  }
}

template <Act A, Act R>
void gru_fwd_t(int64_t len, const float* __restrict xz, const float* __restrict xr, const float* __restrict xh,
               const float* __restrict rz, const float* __restrict rr, const float* __restrict rh,
               const float* __restrict h_prev, float* __restrict sz, float* __restrict sr, float* __restrict sh,
               float* __restrict srh, float* __restrict h) {
  for (int64_t j = 0; j < len; ++j) {
    const float z = fw<R>(xz[j] + rz[j]);
    const float r = fw<R>(xr[j] + rr[j]);
    const float hh = fw<A>(xh[j] + r * rh[j]);
    sz[j] = z;
    sr[j] = r;
    sh[j] = hh;
    srh[j] = rh[j];
    h[j] = z * h_prev[j] + (1.f - z) * hh;
  }
}

template <Act A, Act R>
void gru_bwd_t(int64_t len, const float* __restrict sz, const float* __restrict sr, const float* __restrict sh,
               const float* __restrict srh, const float* __restrict h_prev, const float* __restrict dhs,
               float* __restrict dh, float* __restrict dxz, float* __restrict dxr, float* __restrict dxh,
               float* __restrict drz, float* __restrict drr, float* __restrict drh) {
  for (int64_t j = 0; j < len; ++j) {
    const float dhj = dh[j] + dhs[j];
    const float z = sz[j], r = sr[j], hh = sh[j];
    const float dhh = dhj * (1.f - z) * dv<A>(hh);
    const float dzp = dhj * (h_prev[j] - hh) * dv<R>(z);
    const float drp = dhh * srh[j] * dv<R>(r);
    dxz[j] = dzp;
    drz[j] = dzp;
    dxr[j] = drp;
    drr[j] = drp;
    dxh[j] = dhh;
    drh[j] = dhh * r;
    dh[j] = dhj * z;
  }
}

// f(A, R) with the activation pair fixed at compile time (integral constants of
// with_act_from_output): one instantiation of the loops per pair.
template <class F>
inline void with_acts(Act a, Act ra, F&& f) {
  with_act_from_output(a, [&](auto A) { with_act_from_output(ra, [&](auto R) { f(A, R); }); });
}

}  // namespace

#ifdef PYNN_RNN_LSTM_BLOCK_FAST
// The ISA file supplies hand-vectorised blocks for the default activations
// (tanh, sigmoid); they return false for any other pair.
bool lstm_fwd_block_fast(Act a, Act ra, const LstmFwdBlock& b);
bool lstm_bwd_block_fast(Act a, Act ra, const LstmBwdBlock& b);
#endif

void lstm_fwd_block(Act a, Act ra, const LstmFwdBlock& b) {
#ifdef PYNN_RNN_LSTM_BLOCK_FAST
  if (lstm_fwd_block_fast(a, ra, b)) return;
#endif
  // No xw (lstm_forward_x): rec holds the whole pre-activation; it is added to zeros.
  const std::vector<float> zeros(b.xw ? 0 : static_cast<size_t>(4 * b.len), 0.f);
  with_acts(a, ra, [&](auto A, auto R) {
    constexpr Act kA = decltype(A)::value, kR = decltype(R)::value;
    for (int64_t r = 0; r < b.n; ++r) {
      const float* x = b.xw ? b.xw + r * b.rs_x : zeros.data();
      const int64_t gs_x = b.xw ? b.gs_x : b.len;
      const float* rc = b.rec + r * b.rs_r;
      float* g = b.gates ? b.gates + r * b.rs_g : nullptr;
      if (g)
        lstm_fwd_t<kA, kR, true>(b.len, x, x + gs_x, x + 2 * gs_x, x + 3 * gs_x, rc, rc + b.gs_r,
                                 rc + 2 * b.gs_r, rc + 3 * b.gs_r, b.c_prev + r * b.rs_cp, g, g + b.gs_g,
                                 g + 2 * b.gs_g, g + 3 * b.gs_g, b.c + r * b.rs_c, b.h + r * b.rs_h);
      else
        lstm_fwd_t<kA, kR, false>(b.len, x, x + gs_x, x + 2 * gs_x, x + 3 * gs_x, rc, rc + b.gs_r,
                                  rc + 2 * b.gs_r, rc + 3 * b.gs_r, b.c_prev + r * b.rs_cp, nullptr, nullptr,
                                  nullptr, nullptr, b.c + r * b.rs_c, b.h + r * b.rs_h);
    }
  });
}

void lstm_bwd_block(Act a, Act ra, const LstmBwdBlock& b) {
#ifdef PYNN_RNN_LSTM_BLOCK_FAST
  if (lstm_bwd_block_fast(a, ra, b)) return;
#endif
  with_acts(a, ra, [&](auto A, auto R) {
    for (int64_t r = 0; r < b.n; ++r) {
      const float* g = b.gates + r * b.rs_g;
      float* z = b.dz + r * b.rs_z;
      lstm_bwd_t<decltype(A)::value, decltype(R)::value>(
          b.len, g, g + b.gs_g, g + 2 * b.gs_g, g + 3 * b.gs_g, b.c + r * b.rs_c, b.c_prev + r * b.rs_cp,
          b.dhs + r * b.rs_dhs, b.dh + r * b.rs_dh, b.dc + r * b.rs_dc, z, z + b.gs_z, z + 2 * b.gs_z,
          z + 3 * b.gs_z);
    }
  });
}

void simple_fwd(Act a, int64_t len, const float* xw, const float* rec, float* h) {
  with_act_from_output(a, [&](auto A) { simple_fwd_t<decltype(A)::value>(len, xw, rec, h); });
}

void simple_bwd(Act a, int64_t len, const float* h, const float* dhs, float* dh, float* dz) {
  with_act_from_output(a, [&](auto A) { simple_bwd_t<decltype(A)::value>(len, h, dhs, dh, dz); });
}

void lstm_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
              const float* c_prev, float* gates, int64_t gs_g, float* c, float* h) {
  with_acts(a, ra, [&](auto A, auto R) {
    lstm_fwd_t<decltype(A)::value, decltype(R)::value>(len, xw, xw + gs_x, xw + 2 * gs_x, xw + 3 * gs_x, rec,
                                                       rec + gs_r, rec + 2 * gs_r, rec + 3 * gs_r, c_prev, gates,
                                                       gates + gs_g, gates + 2 * gs_g, gates + 3 * gs_g, c, h);
  });
}

void lstm_bwd(Act a, Act ra, int64_t len, const float* gates, int64_t gs_g, const float* c, const float* c_prev,
              const float* dhs, float* dh, float* dc, float* dz, int64_t gs_z) {
  with_acts(a, ra, [&](auto A, auto R) {
    lstm_bwd_t<decltype(A)::value, decltype(R)::value>(len, gates, gates + gs_g, gates + 2 * gs_g, gates + 3 * gs_g,
                                                       c, c_prev, dhs, dh, dc, dz, dz + gs_z, dz + 2 * gs_z,
                                                       dz + 3 * gs_z);
  });
}

void gru_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
             const float* h_prev, float* saved, int64_t gs_s, float* h) {
  with_acts(a, ra, [&](auto A, auto R) {
    gru_fwd_t<decltype(A)::value, decltype(R)::value>(len, xw, xw + gs_x, xw + 2 * gs_x, rec, rec + gs_r,
                                                      rec + 2 * gs_r, h_prev, saved, saved + gs_s, saved + 2 * gs_s,
                                                      saved + 3 * gs_s, h);
  });
}

void gru_bwd(Act a, Act ra, int64_t len, const float* saved, int64_t gs_s, const float* h_prev, const float* dhs,
             float* dh, float* dx, int64_t gs_x, float* drec, int64_t gs_r) {
  with_acts(a, ra, [&](auto A, auto R) {
    gru_bwd_t<decltype(A)::value, decltype(R)::value>(len, saved, saved + gs_s, saved + 2 * gs_s, saved + 3 * gs_s,
                                                      h_prev, dhs, dh, dx, dx + gs_x, dx + 2 * gs_x, drec,
                                                      drec + gs_r, drec + 2 * gs_r);
  });
}

}  // namespace pynn::rnn::PYNN_ISA
