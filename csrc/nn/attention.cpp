// Fused multi-head attention (see attention.h). Portable frame: the arithmetic is
// pynn::sgemm (AVX2 microkernels behind its own dispatch) and the softmax row kernels
// (nn/softmax.h, dispatched per ISA), so this file has no ISA-specific part.
//
// Why fused: the unfused graph ran ~14 kernel calls and 6 head transposes per layer, and its
// batched GEMMs (128x128x64 per head in the benchmark) sat exactly at the size where
// sgemm_batched split each small product across the threads instead of handing whole
// products to them, forking once per head. Here one pass over the (batch, head) items
// does both products, the mask and the softmax of an item while its T x S score block
// is still in L2 (64 KiB at T = S = 128), and the threads take whole items.
#include "nn/attention.h"

#include <algorithm>
#include <vector>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "gemm/config.h"
#include "gemm/gemm.h"
#include "nn/softmax.h"

namespace pynn::nn {

// The rows' softmax: AVX2 in attention_avx2.cpp; the portable build is softmax_rows.
PYNN_ISA_DECLARE(void attention_softmax_rows(const float* x, float* y, int64_t rows, int64_t S);)
namespace generic {
void attention_softmax_rows(const float* x, float* y, int64_t rows, int64_t S) { softmax_rows(x, y, rows, S, false); }
}  // namespace generic

namespace {

constexpr float kMasked = -1e9f;  // the layer's masked score (attention.py: _NEG), not -inf: a fully
                                  // masked row becomes uniform instead of NaN, as in Keras

// body(i, scratch) for every (batch, head) item i < items. Whole items go to the threads
// when they divide well among them (or there are many); otherwise the items run one after
// another on the caller and each item's GEMMs and softmax rows use the threads inside.
// Either way an item is the same sequence of kernels, and those give the same bits at any
// thread count (gemm.cpp), so the result does not depend on the thread count.
template <class Body>
void for_items(int64_t items, int64_t work_per_item, size_t scratch_floats, Body&& body) {
  const int nt = threads_for(items * work_per_item, gemm::kThreadGrain);
  if (nt > 1 && (items % nt == 0 || items >= 4 * int64_t{nt})) {
    // A few chunks per thread: a helper the scheduler starts late leaves the caller one chunk.
    const int64_t chunk = std::max<int64_t>(1, items / (4 * int64_t{nt}));
    share_work(items, chunk, nt, [&](int64_t lo, int64_t hi) {
      std::vector<float> scratch(scratch_floats);
      for (int64_t i = lo; i < hi; ++i) body(i, scratch.data());
    });
    return;
  }
  std::vector<float> scratch(scratch_floats);
  for (int64_t i = 0; i < items; ++i) body(i, scratch.data());
}

// Entries the mask excludes get `value` (row t of a T x S block, row stride S).
void apply_mask(const MaskView& m, int64_t b, int64_t h, int64_t T, int64_t S, float value, float* x) {
  const uint8_t* mb = m.p + b * m.sb + h * m.sh;
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* mr = mb + t * m.st;
    float* xr = x + t * S;
    for (int64_t s = 0; s < S; ++s)
      if (!mr[s * m.ss]) xr[s] = value;
  }
}

void multiply(const float* __restrict a, const float* __restrict b, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

}  // namespace

void attention_forward(int64_t B, int64_t H, int64_t T, int64_t S, int64_t dk, int64_t dv, HeadView q, HeadView k,
                       HeadView v, float scale, MaskView mask, const float* drop, float* out, float* weights) {
  if (B <= 0 || H <= 0 || T <= 0) return;
  const int64_t TS = T * S;
  // Without a weights array (inference) each item's P lives in the scratch after its scores.
  const size_t scratch = static_cast<size_t>(weights ? TS : 2 * TS);
  for_items(B * H, TS * (dk + dv) + 1, scratch, [&](int64_t i, float* scores) {
    const int64_t b = i / H, h = i % H;
    float* P = weights ? weights + i * TS : scores + TS;
    float* O = out + (b * T * H + h) * dv;  // (B, T, H, dv): rows of this head H * dv apart
    if (S == 0) {  // nothing to attend to: an empty weighted sum
      for (int64_t t = 0; t < T; ++t) std::fill(O + t * H * dv, O + t * H * dv + dv, 0.f);
      return;
    }
    const float* Q = q.p + b * q.sb + h * q.sh;
    const float* K = k.p + b * k.sb + h * k.sh;
    const float* V = v.p + b * v.sb + h * v.sh;
    // scores = scale * Q K^T: K read transposed through its strides.
    sgemm(T, S, dk, scale, Q, q.st, q.sd, K, k.sd, k.st, 0.f, scores, S, 1, nullptr, Act::Linear, 0.f);
    if (mask.p) apply_mask(mask, b, h, T, S, kMasked, scores);
    parallel_for(T, S, kElemGrain, [&](int64_t r0, int64_t r1) {
      PYNN_ISA_CALL(attention_softmax_rows, scores + r0 * S, P + r0 * S, r1 - r0, S);
    });
    const float* A = P;
    if (drop) {  // the scores block is free again: it holds P * D
      multiply(P, drop + i * TS, scores, TS);
      A = scores;
    }
    sgemm(T, dv, S, 1.f, A, S, 1, V, v.st, v.sd, 0.f, O, H * dv, 1, nullptr, Act::Linear, 0.f);
  });
}

void attention_backward(int64_t B, int64_t H, int64_t T, int64_t S, int64_t dk, int64_t dv, HeadView dout,
                        HeadView q, HeadView k, HeadView v, const float* weights, float scale, MaskView mask,
                        const float* drop, HeadOut dq, HeadOut dkey, HeadOut dval) {
  if (B <= 0 || H <= 0) return;
  const int64_t TS = T * S;
  // Two T x S blocks: dP, then dScores (and P * D before it when there is dropout).
  for_items(B * H, TS * (2 * dk + 2 * dv) + 1, static_cast<size_t>(2 * TS), [&](int64_t i, float* scratch) {
    const int64_t b = i / H, h = i % H;
    const float* P = weights + i * TS;
    const float* G = dout.p + b * dout.sb + h * dout.sh;
    const float* Q = q.p + b * q.sb + h * q.sh;
    const float* K = k.p + b * k.sb + h * k.sh;
    const float* V = v.p + b * v.sb + h * v.sh;
    float* dQ = dq.p + b * dq.sb + h * dq.sh;
    float* dK = dkey.p + b * dkey.sb + h * dkey.sh;
    float* dV = dval.p + b * dval.sb + h * dval.sh;
    float* dP = scratch;
    float* dS = scratch + TS;
    // T == 0 or S == 0: sgemm with k == 0 writes zeros (C = 0 * C, never read), so every
    // gradient element is still written.
    // dV = (P * D)^T dO
    const float* A = P;
    if (drop && TS) {
      multiply(P, drop + i * TS, dS, TS);
      A = dS;
    }
    sgemm(S, dv, T, 1.f, A, 1, S, G, dout.st, dout.sd, 0.f, dV, dval.st, dval.sd, nullptr, Act::Linear, 0.f);
    if (TS == 0) {
      sgemm(T, dk, S, scale, dS, S, 1, K, k.st, k.sd, 0.f, dQ, dq.st, dq.sd, nullptr, Act::Linear, 0.f);
      sgemm(S, dk, T, scale, dS, 1, S, Q, q.st, q.sd, 0.f, dK, dkey.st, dkey.sd, nullptr, Act::Linear, 0.f);
      return;
    }
    // dP = (dO V^T) * D
    sgemm(T, S, dv, 1.f, G, dout.st, dout.sd, V, v.sd, v.st, 0.f, dP, S, 1, nullptr, Act::Linear, 0.f);
    if (drop) {
      const float* Dm = drop + i * TS;
      for (int64_t j = 0; j < TS; ++j) dP[j] *= Dm[j];
    }
    // dScores = P (dP - rowsum(dP P)), and 0 where the mask replaced the score by a constant.
    softmax_backward_rows(P, dP, dS, T, S, false);
    if (mask.p) apply_mask(mask, b, h, T, S, 0.f, dS);
    // dQ = scale dS K, dK = scale dS^T Q
    sgemm(T, dk, S, scale, dS, S, 1, K, k.st, k.sd, 0.f, dQ, dq.st, dq.sd, nullptr, Act::Linear, 0.f);
    sgemm(S, dk, T, scale, dS, 1, S, Q, q.st, q.sd, 0.f, dK, dkey.st, dkey.sd, nullptr, Act::Linear, 0.f);
  });
}

}  // namespace pynn::nn
