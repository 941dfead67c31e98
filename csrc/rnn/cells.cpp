// Generic build of the recurrent cells and the ISA dispatch (see cells.h).
// The keep == false (masked step) cases are handled here, once for every ISA.
#include <cstring>

#define PYNN_ISA generic
#include "rnn/cells_impl.h"
#undef PYNN_ISA

namespace pynn::rnn {

namespace {
void copy(float* dst, const float* src, int64_t len) { std::memcpy(dst, src, sizeof(float) * len); }
void zero(float* dst, int64_t len) { std::memset(dst, 0, sizeof(float) * len); }
void add(float* dst, const float* src, int64_t len) {
  for (int64_t j = 0; j < len; ++j) dst[j] += src[j];
}
}  // namespace

void simple_fwd(Act a, int64_t len, const float* xw, const float* rec, const float* h_prev, bool keep, float* h) {
  if (!keep) return copy(h, h_prev, len);
  PYNN_ISA_CALL(simple_fwd, a, len, xw, rec, h);
}

void simple_bwd(Act a, int64_t len, const float* h, const float* dhs, bool keep, float* dh, float* dz) {
  if (!keep) {
    add(dh, dhs, len);
    return zero(dz, len);
  }
  PYNN_ISA_CALL(simple_bwd, a, len, h, dhs, dh, dz);
}

// Masked rows still compute and save their gates (deterministic saved buffers);
// only the state is carried over.
void lstm_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
              const float* c_prev, const float* h_prev, bool keep, float* gates, int64_t gs_g, float* c, float* h) {
  PYNN_ISA_CALL(lstm_fwd, a, ra, len, xw, gs_x, rec, gs_r, c_prev, gates, gs_g, c, h);
  if (!keep) {
    copy(c, c_prev, len);
    copy(h, h_prev, len);
  }
}

void lstm_bwd(Act a, Act ra, int64_t len, const float* gates, int64_t gs_g, const float* c, const float* c_prev,
              const float* dhs, bool keep, float* dh, float* dc, float* dz, int64_t gs_z) {
  if (!keep) {  // the state passed through this step unchanged: so do its gradients
    add(dh, dhs, len);
    for (int k = 0; k < 4; ++k) zero(dz + k * gs_z, len);
    return;
  }
  PYNN_ISA_CALL(lstm_bwd, a, ra, len, gates, gs_g, c, c_prev, dhs, dh, dc, dz, gs_z);
}

void lstm_fwd_block(Act a, Act ra, const LstmFwdBlock& b) { PYNN_ISA_CALL(lstm_fwd_block, a, ra, b); }
void lstm_bwd_block(Act a, Act ra, const LstmBwdBlock& b) { PYNN_ISA_CALL(lstm_bwd_block, a, ra, b); }

// The condition under which avx2::lstm_fwd_block_fast (cells_avx2.cpp) takes the block.
bool lstm_fwd_block_in_place_ok(Act a, Act ra) { return use_avx2() && a == Act::Tanh && ra == Act::Sigmoid; }

void gru_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
             const float* h_prev, bool keep, float* saved, int64_t gs_s, float* h) {
  PYNN_ISA_CALL(gru_fwd, a, ra, len, xw, gs_x, rec, gs_r, h_prev, saved, gs_s, h);
  if (!keep) copy(h, h_prev, len);
}

void gru_bwd(Act a, Act ra, int64_t len, const float* saved, int64_t gs_s, const float* h_prev, const float* dhs,
             bool keep, float* dh, float* dx, int64_t gs_x, float* drec, int64_t gs_r) {
  if (!keep) {
    add(dh, dhs, len);
    for (int k = 0; k < 3; ++k) {
      zero(dx + k * gs_x, len);
      zero(drec + k * gs_r, len);
    }
    return;
  }
  PYNN_ISA_CALL(gru_bwd, a, ra, len, saved, gs_s, h_prev, dhs, dh, dx, gs_x, drec, gs_r);
}

}  // namespace pynn::rnn
