#include "rnn/recurrent.h"

#include <cstring>
#include <vector>

#include "common/runtime.h"
#include "gemm/gemm.h"

namespace pynn {
namespace {

constexpr int64_t kGrain = 1 << 14;

inline bool keep(const uint8_t* mask, int64_t row, int64_t t_len, int64_t t) { return !mask || mask[row * t_len + t]; }

// Per-element derivative from the activation's output y (every activation here allows it).
// (relu reads y > 0, which is x > 0; tanh/sigmoid/linear use y alone).
inline float dact(Act a, float y) { return act_derivative(a, y, y, 0.f); }

// rows of the batch in parallel for the fused elementwise passes
template <class F>
void rows(int64_t n, int64_t width, F f) {
  const int nt = threads_for(n * width, kGrain);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t r = 0; r < n; ++r) f(r);
}

// z (n x G·U, row stride rs_z) = beta·z + h U (+ bias): the step's recurrent GEMM.
// With recurrent dropout gate block k sees h ⊙ m_k instead, so it becomes G
// GEMMs of n x U x U over a masked copy hd (n x G·U) of h; hd is left filled
// (the backward's dU needs the same products).
void rec_forward(int64_t n, int64_t units, int64_t g, const float* h, int64_t rs_h, const float* u, const float* rmask,
                 float* hd, float beta, float* z, int64_t rs_z, const float* bias) {
  const int64_t gu = g * units;
  if (!rmask) {
    sgemm(n, gu, units, 1.f, h, rs_h, 1, u, gu, 1, beta, z, rs_z, 1, bias, Act::Linear, 0.f);
    return;
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < g; ++k)
      for (int64_t j = 0; j < units; ++j) hd[r * gu + k * units + j] = h[r * rs_h + j] * rmask[r * gu + k * units + j];
  for (int64_t k = 0; k < g; ++k)
    sgemm(n, units, units, 1.f, hd + k * units, gu, 1, u + k * units, gu, 1, beta, z + k * units, rs_z, 1,
          bias ? bias + k * units : nullptr, Act::Linear, 0.f);
}

// Backward of rec_forward for one step, given dz (n x G·U, row stride rs_dz):
// du += (h or hd)ᵀ dz, and dh (n x U) = dz Uᵀ, or Σ_k (dz_k U_kᵀ) ⊙ m_k with dropout
// (buf: n x G·U scratch).
void rec_backward(int64_t n, int64_t units, int64_t g, const float* h, int64_t rs_h, const float* dz, int64_t rs_dz,
                  const float* u, const float* rmask, float* hd, float* buf, float* du, float* dh) {
  const int64_t gu = g * units;
  if (!rmask) {
    sgemm(units, gu, n, 1.f, h, 1, rs_h, dz, rs_dz, 1, 1.f, du, gu, 1, nullptr, Act::Linear, 0.f);  // dU += hᵀ dz
    sgemm(n, units, gu, 1.f, dz, rs_dz, 1, u, 1, gu, 0.f, dh, units, 1, nullptr, Act::Linear, 0.f);  // dz Uᵀ
    return;
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < g; ++k)
      for (int64_t j = 0; j < units; ++j) hd[r * gu + k * units + j] = h[r * rs_h + j] * rmask[r * gu + k * units + j];
  for (int64_t k = 0; k < g; ++k) {
    sgemm(units, units, n, 1.f, hd + k * units, 1, gu, dz + k * units, rs_dz, 1, 1.f, du + k * units, gu, 1, nullptr,
          Act::Linear, 0.f);
    sgemm(n, units, units, 1.f, dz + k * units, rs_dz, 1, u + k * units, 1, gu, 0.f, buf + k * units, gu, 1, nullptr,
          Act::Linear, 0.f);
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < units; ++j) {
      float acc = 0.f;
      for (int64_t k = 0; k < g; ++k) acc += buf[r * gu + k * units + j] * rmask[r * gu + k * units + j];
      dh[r * units + j] = acc;
    }
}

}  // namespace

// ---------------------------------------------------------------- SimpleRNN
void simple_rnn_forward(const float* xw, const float* h0, const float* u, const uint8_t* mask, const float* rmask,
                        int64_t n, int64_t t_len, int64_t units, Act act, float* hs) {
  const int64_t rs = t_len * units;  // row stride of (N, T, U) arrays
  std::vector<float> z(n * units), hd(rmask ? n * units : 0);
  for (int64_t t = 0; t < t_len; ++t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    for (int64_t r = 0; r < n; ++r) std::memcpy(&z[r * units], xw + r * rs + t * units, sizeof(float) * units);
    rec_forward(n, units, 1, hp, rs_hp, u, rmask, hd.data(), 1.f, z.data(), units, nullptr);
    rows(n, units, [&](int64_t r) {
      float* h = hs + r * rs + t * units;
      const float* prev = hp + r * rs_hp;
      const bool k = keep(mask, r, t_len, t);
      for (int64_t j = 0; j < units; ++j) h[j] = k ? act_forward(act, z[r * units + j], 0.f) : prev[j];
    });
  }
}

void simple_rnn_backward(const float* dhs, const float* h0, const float* hs, const float* u, const uint8_t* mask,
                         const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, float* dxw, float* dh0,
                         float* du) {
  const int64_t rs = t_len * units;
  std::vector<float> dh(n * units, 0.f), tmp(n * units), hd(rmask ? n * units : 0), buf(rmask ? n * units : 0);
  std::memset(du, 0, sizeof(float) * units * units);
  for (int64_t t = t_len - 1; t >= 0; --t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    float* dz = dxw + t * units;
    rows(n, units, [&](int64_t r) {
      const bool k = keep(mask, r, t_len, t);
      const float* y = hs + r * rs + t * units;
      for (int64_t j = 0; j < units; ++j) {
        float& g = dh[r * units + j];
        g += dhs[r * rs + t * units + j];
        dz[r * rs + j] = k ? g * dact(act, y[j]) : 0.f;
      }
    });
    rec_backward(n, units, 1, hp, rs_hp, dz, rs, u, rmask, hd.data(), buf.data(), du, tmp.data());
    rows(n, units, [&](int64_t r) {
      if (!keep(mask, r, t_len, t)) return;  // a masked step passed dh through unchanged
      std::memcpy(&dh[r * units], &tmp[r * units], sizeof(float) * units);
    });
  }
  std::memcpy(dh0, dh.data(), sizeof(float) * n * units);
}

// ---------------------------------------------------------------- LSTM
void lstm_forward(const float* xw, const float* h0, const float* c0, const float* u, const uint8_t* mask,
                  const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs, float* cs,
                  float* gates) {
  const int64_t g4 = 4 * units, rs = t_len * units, rs_g = t_len * g4;
  std::vector<float> hd(rmask ? n * g4 : 0);
  for (int64_t t = 0; t < t_len; ++t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const float* cp = t ? cs + (t - 1) * units : c0;
    const int64_t rs_hp = t ? rs : units;
    float* z = gates + t * g4;  // pre-activations land in the saved-gates slot, then get activated in place
    for (int64_t r = 0; r < n; ++r) std::memcpy(z + r * rs_g, xw + r * rs_g + t * g4, sizeof(float) * g4);
    rec_forward(n, units, 4, hp, rs_hp, u, rmask, hd.data(), 1.f, z, rs_g, nullptr);
    rows(n, g4, [&](int64_t r) {
      float* zr = z + r * rs_g;
      const float* c_prev = cp + r * rs_hp;
      const float* h_prev = hp + r * rs_hp;
      float* h = hs + r * rs + t * units;
      float* c = cs + r * rs + t * units;
      const bool k = keep(mask, r, t_len, t);
      for (int64_t j = 0; j < units; ++j) {
        const float i = act_forward(ract, zr[j], 0.f), f = act_forward(ract, zr[units + j], 0.f);
        const float g = act_forward(act, zr[2 * units + j], 0.f), o = act_forward(ract, zr[3 * units + j], 0.f);
        zr[j] = i;
        zr[units + j] = f;
        zr[2 * units + j] = g;
        zr[3 * units + j] = o;
        const float c_new = f * c_prev[j] + i * g;
        c[j] = k ? c_new : c_prev[j];
        h[j] = k ? o * act_forward(act, c_new, 0.f) : h_prev[j];
      }
    });
  }
}

void lstm_backward(const float* dhs, const float* dc_last, const float* h0, const float* c0, const float* hs,
                   const float* cs, const float* gates, const float* u, const uint8_t* mask, const float* rmask,
                   int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* dxw, float* dh0, float* dc0,
                   float* du) {
  const int64_t g4 = 4 * units, rs = t_len * units, rs_g = t_len * g4;
  std::vector<float> dh(n * units, 0.f), dc(dc_last, dc_last + n * units), tmp(n * units);
  std::vector<float> hd(rmask ? n * g4 : 0), buf(rmask ? n * g4 : 0);
  std::memset(du, 0, sizeof(float) * units * g4);
  for (int64_t t = t_len - 1; t >= 0; --t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const float* cp = t ? cs + (t - 1) * units : c0;
    const int64_t rs_hp = t ? rs : units;
    float* dz = dxw + t * g4;
    rows(n, g4, [&](int64_t r) {
      const float* gr = gates + r * rs_g + t * g4;
      const float* c = cs + r * rs + t * units;
      const float* c_prev = cp + r * rs_hp;
      float* dzr = dz + r * rs_g;
      const bool k = keep(mask, r, t_len, t);
      for (int64_t j = 0; j < units; ++j) {
        float& dhj = dh[r * units + j];
        float& dcj = dc[r * units + j];
        dhj += dhs[r * rs + t * units + j];
        if (!k) {  // the state passed through this step unchanged: so do its gradients
          dzr[j] = dzr[units + j] = dzr[2 * units + j] = dzr[3 * units + j] = 0.f;
          continue;
        }
        const float i = gr[j], f = gr[units + j], g = gr[2 * units + j], o = gr[3 * units + j];
        const float tc = act_forward(act, c[j], 0.f);
        const float dct = dcj + dhj * o * dact(act, tc);
        dzr[j] = dct * g * dact(ract, i);
        dzr[units + j] = dct * c_prev[j] * dact(ract, f);
        dzr[2 * units + j] = dct * i * dact(act, g);
        dzr[3 * units + j] = dhj * tc * dact(ract, o);
        dcj = dct * f;
      }
    });
    rec_backward(n, units, 4, hp, rs_hp, dz, rs_g, u, rmask, hd.data(), buf.data(), du, tmp.data());
    rows(n, units, [&](int64_t r) {
      if (!keep(mask, r, t_len, t)) return;
      std::memcpy(&dh[r * units], &tmp[r * units], sizeof(float) * units);
    });
  }
  std::memcpy(dh0, dh.data(), sizeof(float) * n * units);
  std::memcpy(dc0, dc.data(), sizeof(float) * n * units);
}

// ---------------------------------------------------------------- GRU (reset_after)
void gru_forward(const float* xw, const float* h0, const float* u, const float* rbias, const uint8_t* mask,
                 const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs,
                 float* saved) {
  const int64_t g3 = 3 * units, rs = t_len * units, rs_x = t_len * g3, rs_s = t_len * 4 * units;
  std::vector<float> rec(n * g3), hd(rmask ? n * g3 : 0);
  for (int64_t t = 0; t < t_len; ++t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    rec_forward(n, units, 3, hp, rs_hp, u, rmask, hd.data(), 0.f, rec.data(), g3, rbias);
    rows(n, g3, [&](int64_t r) {
      const float* x = xw + r * rs_x + t * g3;
      const float* rr = rec.data() + r * g3;
      const float* h_prev = hp + r * rs_hp;
      float* h = hs + r * rs + t * units;
      float* s = saved + r * rs_s + t * 4 * units;
      const bool k = keep(mask, r, t_len, t);
      for (int64_t j = 0; j < units; ++j) {
        const float z = act_forward(ract, x[j] + rr[j], 0.f);
        const float rg = act_forward(ract, x[units + j] + rr[units + j], 0.f);
        const float hh = act_forward(act, x[2 * units + j] + rg * rr[2 * units + j], 0.f);
        s[j] = z;
        s[units + j] = rg;
        s[2 * units + j] = hh;
        s[3 * units + j] = rr[2 * units + j];
        h[j] = k ? z * h_prev[j] + (1.f - z) * hh : h_prev[j];
      }
    });
  }
}

void gru_backward(const float* dhs, const float* h0, const float* hs, const float* saved, const float* u,
                  const uint8_t* mask, const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract,
                  float* dxw, float* dh0, float* du, float* drbias) {
  const int64_t g3 = 3 * units, rs = t_len * units, rs_x = t_len * g3, rs_s = t_len * 4 * units;
  std::vector<float> dh(n * units, 0.f), drec(n * g3), tmp(n * units);
  std::vector<float> hd(rmask ? n * g3 : 0), buf(rmask ? n * g3 : 0);
  std::memset(du, 0, sizeof(float) * units * g3);
  std::memset(drbias, 0, sizeof(float) * g3);
  for (int64_t t = t_len - 1; t >= 0; --t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    float* dx = dxw + t * g3;
    rows(n, g3, [&](int64_t r) {
      const float* s = saved + r * rs_s + t * 4 * units;
      const float* h_prev = hp + r * rs_hp;
      float* dxr = dx + r * rs_x;
      float* dr = drec.data() + r * g3;
      const bool k = keep(mask, r, t_len, t);
      for (int64_t j = 0; j < units; ++j) {
        float& dhj = dh[r * units + j];
        dhj += dhs[r * rs + t * units + j];
        if (!k) {
          dxr[j] = dxr[units + j] = dxr[2 * units + j] = 0.f;
          dr[j] = dr[units + j] = dr[2 * units + j] = 0.f;
          continue;
        }
        const float z = s[j], rg = s[units + j], hh = s[2 * units + j], rh = s[3 * units + j];
        const float dhh = dhj * (1.f - z) * dact(act, hh);
        const float dzp = dhj * (h_prev[j] - hh) * dact(ract, z);
        const float drp = dhh * rh * dact(ract, rg);
        dxr[j] = dr[j] = dzp;
        dxr[units + j] = dr[units + j] = drp;
        dxr[2 * units + j] = dhh;
        dr[2 * units + j] = dhh * rg;
        dhj *= z;  // the direct path h_{t-1} -> h_t; the recurrent GEMM adds the rest below
      }
    });
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < g3; ++j) drbias[j] += drec[r * g3 + j];
    rec_backward(n, units, 3, hp, rs_hp, drec.data(), g3, u, rmask, hd.data(), buf.data(), du, tmp.data());
    rows(n, units, [&](int64_t r) {
      if (!keep(mask, r, t_len, t)) return;
      for (int64_t j = 0; j < units; ++j) dh[r * units + j] += tmp[r * units + j];
    });
  }
  std::memcpy(dh0, dh.data(), sizeof(float) * n * units);
}

}  // namespace pynn
