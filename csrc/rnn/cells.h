// The fused per-step elementwise passes of the recurrent layers ("cells"): gate
// nonlinearities and state update (forward), and their derivatives (BPTT), for
// one row of the batch and a range of units. The activations are chosen once,
// outside the loop, so each (act, recurrent_act) pair gets its own vectorised
// loop; cells_impl.h is compiled per ISA (common/dispatch.h) and these entry
// points dispatch. Activations: those with act_from_output (common/activation.h).
//
// Pointers are already offset to the first unit; gate k of a row lives at
// p + k * gs (gs: the gate stride, = units for the packed layouts here).
// keep == false: a masked step, the state passes through unchanged.
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "common/dispatch.h"

namespace pynn::rnn {

// h = act(xw + rec); rec may be null (then xw already holds the sum).
void simple_fwd(Act a, int64_t len, const float* xw, const float* rec, const float* h_prev, bool keep, float* h);
// dh += dhs; dz = keep ? dh * act'(h) : 0.
void simple_bwd(Act a, int64_t len, const float* h, const float* dhs, bool keep, float* dh, float* dz);

// z = xw + rec (gates i, f, c, o); saves the activated gates; c = f c_prev + i g; h = o act(c).
void lstm_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
              const float* c_prev, const float* h_prev, bool keep, float* gates, int64_t gs_g, float* c, float* h);
// dh += dhs; then (kept rows) dz (pre-activation gate gradients) and dc <- dc_t * f; masked rows: dz = 0.
void lstm_bwd(Act a, Act ra, int64_t len, const float* gates, int64_t gs_g, const float* c, const float* c_prev,
              const float* dhs, bool keep, float* dh, float* dc, float* dz, int64_t gs_z);

// rec = h_prev U + b_rec (z, r, h blocks); saved = [z, r, hh, rec_h]; h = z h_prev + (1 - z) hh.
void gru_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
             const float* h_prev, bool keep, float* saved, int64_t gs_s, float* h);
// dh += dhs; kept rows: dx (input-side gate gradients), drec (recurrent-side), dh <- dh z (the direct path);
// masked rows: dx = drec = 0 and dh passes through.
void gru_bwd(Act a, Act ra, int64_t len, const float* saved, int64_t gs_s, const float* h_prev, const float* dhs,
             bool keep, float* dh, float* dx, int64_t gs_x, float* drec, int64_t gs_r);

// One step's LSTM cell pass over a block of n rows x len units (one chunk of the
// fused time loop): the same math as lstm_fwd / lstm_bwd for every row, in one
// call, so the activation dispatch and the vector constants are set up once per
// block instead of once per row, and the rows a few ahead are prefetched (the
// (N, T, ·) layouts put consecutive rows of one step 2-8 KiB apart: the hardware
// prefetcher does not follow, measured as stalls on the xw / gates loads).
// No mask: every row is updated (the caller restores masked rows). rs_*: row
// strides, gs_*: gate strides (elements). Every element goes through the same
// instructions whatever len and its position in the block (AVX2: the tail is a
// masked vector), so results do not depend on how the units are chunked.
struct LstmFwdBlock {
  int64_t n, len;
  const float* xw;      int64_t rs_x, gs_x;   // input projection (4 gates); null: rec holds the whole sum
  const float* rec;     int64_t rs_r, gs_r;   // h_{t-1} U (4 gates)
  const float* c_prev;  int64_t rs_cp;
  float* gates;         int64_t rs_g, gs_g;   // activated gates for BPTT; null: not saved (inference)
  float* c;             int64_t rs_c;
  float* h;             int64_t rs_h;
};
struct LstmBwdBlock {
  int64_t n, len;
  const float* gates;   int64_t rs_g, gs_g;
  const float* c;       int64_t rs_c;         // c_t
  const float* c_prev;  int64_t rs_cp;
  const float* dhs;     int64_t rs_dhs;       // upstream gradient of h_t
  float* dh;            int64_t rs_dh;        // in: from step t+1; out: dh_t (incl. dhs)
  float* dc;            int64_t rs_dc;        // in: dc from step t+1; out: dc_{t-1} part f·dc_t
  float* dz;            int64_t rs_z, gs_z;   // pre-activation gate gradients
};
void lstm_fwd_block(Act a, Act ra, const LstmFwdBlock& b);
void lstm_bwd_block(Act a, Act ra, const LstmBwdBlock& b);
// Whether lstm_fwd_block may store the gates over xw (b.gates == b.xw, same
// strides): true where the hand-written AVX2 pass runs, which loads a vector's
// four pre-activations before it stores any gate; the auto-vectorised loops
// take __restrict pointers and must not alias.
bool lstm_fwd_block_in_place_ok(Act a, Act ra);

// The per-ISA loops (cells_impl.h), kept rows only.
PYNN_ISA_DECLARE(
    void simple_fwd(Act a, int64_t len, const float* xw, const float* rec, float* h);
    void simple_bwd(Act a, int64_t len, const float* h, const float* dhs, float* dh, float* dz);
    void lstm_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
                  const float* c_prev, float* gates, int64_t gs_g, float* c, float* h);
    void lstm_bwd(Act a, Act ra, int64_t len, const float* gates, int64_t gs_g, const float* c, const float* c_prev,
                  const float* dhs, float* dh, float* dc, float* dz, int64_t gs_z);
    void gru_fwd(Act a, Act ra, int64_t len, const float* xw, int64_t gs_x, const float* rec, int64_t gs_r,
                 const float* h_prev, float* saved, int64_t gs_s, float* h);
    void gru_bwd(Act a, Act ra, int64_t len, const float* saved, int64_t gs_s, const float* h_prev, const float* dhs,
                 float* dh, float* dx, int64_t gs_x, float* drec, int64_t gs_r);
    void lstm_fwd_block(Act a, Act ra, const LstmFwdBlock& b);
    void lstm_bwd_block(Act a, Act ra, const LstmBwdBlock& b);)

}  // namespace pynn::rnn
