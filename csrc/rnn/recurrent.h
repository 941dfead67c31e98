// Recurrent layers' time loops in C++: per step one recurrent GEMM (sgemm, with
// the precomputed input projection as its beta=1 addend) and one fused pass for
// the gate nonlinearities and state update; backward runs BPTT the same way.
// Layouts and gate orders are Keras' (LSTM i,f,c,o; GRU z,r,h with reset_after).
// Shapes: xw (N, T, G·U), states (N, U), recurrent kernel (U, G·U), mask (N, T)
// bytes or null (a masked step keeps the previous state). All C-contiguous.
// rmask (N, G·U) or null: recurrent dropout, gate block k multiplies h_{t-1}
// where it enters gate k's recurrent kernel (Keras' per-gate masks, fixed over
// time, already scaled); the state itself is never masked.
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "gemm/packed.h"

namespace pynn {

// Where element (row r, step t) of an (N, T, W) sequence array starts: r * rs + t * ts.
// Batch-major (C order, the API's default): rs = T·W, ts = W. Time-major ((T, N, W) in memory):
// rs = W, ts = N·W -- the LSTM training path's layout (lstm_forward_x, lstm_backward), where a
// step's rows for a row group are one contiguous block: the per-step cell passes then stream
// 2-8 KiB runs instead of one 0.5-2 KiB piece per row, 25-100 KiB apart, that the hardware
// prefetcher did not follow (profile: the BPTT's cell pass stalled on its gate loads).
struct SeqLayout {
  int64_t rs, ts;
  SeqLayout(int64_t n, int64_t t, int64_t w, bool time_major)
      : rs(time_major ? w : t * w), ts(time_major ? n * w : w) {}
};

// The recurrent kernel U (units x G·units, Keras' gate blocks) packed for the
// forward time loops below, in the column order they use (gate blocks
// interleaved per 16 units, so any chunking of the units maps to whole panels):
// the same pack serves every batch size and thread count. The loops pack U
// once per call themselves when packed_u is null; a caller running many
// sequences against unchanged weights (inference) packs once and passes it.
// A snapshot: later writes to u are not seen.
PackedB pack_recurrent(const float* u, int64_t units, int64_t gates);
// The same column order for any (rows x G·units) matrix: the input kernel W (F x 4U) for lstm_forward_x.
PackedB pack_gate_blocks(const float* m, int64_t rows, int64_t units, int64_t gates);

void simple_rnn_forward(const float* xw, const float* h0, const float* u, const uint8_t* mask, const float* rmask, int64_t n,
                        int64_t t, int64_t units, Act act, float* hs, const PackedB* packed_u = nullptr);
void simple_rnn_backward(const float* dhs, const float* h0, const float* hs, const float* u, const uint8_t* mask, const float* rmask,
                         int64_t n, int64_t t, int64_t units, Act act, float* dxw, float* dh0, float* du);

// packed_u: pack_recurrent(u, units, G) or null; ignored with rmask (never both: the bindings refuse).
// gates (N, T, 4U) for the BPTT; may be null without rmask (inference: not saved),
// and may be xw itself (stored in place, xw then lost) without rmask when
// rnn::lstm_fwd_block_in_place_ok(act, ract).
void lstm_forward(const float* xw, const float* h0, const float* c0, const float* u, const uint8_t* mask, const float* rmask, int64_t n,
                  int64_t t, int64_t units, Act act, Act ract, float* hs, float* cs, float* gates,
                  const PackedB* packed_u = nullptr);
// lstm_forward with the input projection inside the time loop: x (N, T, F), wp = pack_gate_blocks(W, F, U, 4),
// bias (4U, Keras order) or null. Each step's chunk starts its pre-activations as x_t W + b for its own columns
// and the recurrent GEMM adds h_{t-1} U onto them, so no (N, T, 4U) xw is written and read back (inference
// and training forward alike; gates then go to their own buffer, or nowhere). No recurrent dropout here.
// time_major: hs, cs (T, N, U) and gates (T, N, 4U) in memory (SeqLayout) instead of (N, T, ·).
void lstm_forward_x(const float* x, int64_t features, const PackedB& wp, const float* bias, const float* h0,
                    const float* c0, const float* u, const uint8_t* mask, int64_t n, int64_t t, int64_t units, Act act,
                    Act ract, float* hs, float* cs, float* gates, const PackedB* packed_u = nullptr,
                    bool time_major = false);
void lstm_backward(const float* dhs, const float* dc_last, const float* h0, const float* c0, const float* hs,
                   const float* cs, const float* gates, const float* u, const uint8_t* mask, const float* rmask, int64_t n, int64_t t,
                   int64_t units, Act act, Act ract, float* dxw, float* dh0, float* dc0, float* du,
                   float* db = nullptr,  // db (4U) or null: Σ_{n,t} dxw, the input bias's gradient
                   bool time_major = false);  // dhs, hs, cs, gates and dxw time-major (SeqLayout); not with rmask

// Row groups the LSTM loops (forward without recurrent dropout, and BPTT) split a batch of n
// into at the current thread count: each group runs its rows' whole recurrence on one
// thread at a time, with no exchange between groups; 0 = the units are split instead
// (small batches, one thread). The results are the same bits either way.
int64_t lstm_row_groups(int64_t n, int64_t units);

void gru_forward(const float* xw, const float* h0, const float* u, const float* rbias, const uint8_t* mask, const float* rmask, int64_t n,
                 int64_t t, int64_t units, Act act, Act ract, float* hs, float* saved,
                 const PackedB* packed_u = nullptr);
void gru_backward(const float* dhs, const float* h0, const float* hs, const float* saved, const float* u,
                  const uint8_t* mask, const float* rmask, int64_t n, int64_t t, int64_t units, Act act, Act ract, float* dxw,
                  float* dh0, float* du, float* drbias);

}  // namespace pynn
