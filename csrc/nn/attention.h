// Scaled dot-product attention over heads, forward and backward, fused per (batch, head):
//
//   scores = scale * Q K^T  (masked entries set to -1e9)      T x S
//   P      = softmax(scores) over S                           T x S   (kept for backward)
//   O      = (P * D) V           (D: the dropout multipliers) T x dv
//
// Q, K, V, O and the gradients are (B, T|S, H, d) arrays of any element strides, i.e. the
// (rows, heads * d) output of a projection GEMM read in place: no head transposes, and a
// packed Q|K|V projection is read (and its gradient written) as three strided views.
// P and D are contiguous (B, H, T, S); the mask is bytes (nonzero = may attend) with
// strides, so a (B, S) padding mask or a (T, S) causal triangle broadcasts with stride 0.
#pragma once
#include <cstdint>

namespace pynn::nn {

// A read-only (B, T, H, d) operand: element (b, t, h, j) at p[b*sb + t*st + h*sh + j*sd].
struct HeadView {
  const float* p;
  int64_t sb, st, sh, sd;
};
// A writable one (an output of the backward pass).
struct HeadOut {
  float* p;
  int64_t sb, st, sh, sd;
};
// Mask bytes: (b, h, t, s) at p[b*sb + h*sh + t*st + s*ss]; p == nullptr: no mask.
struct MaskView {
  const uint8_t* p;
  int64_t sb, sh, st, ss;
};

// out: contiguous (B, T, H, dv); weights: contiguous (B, H, T, S), or nullptr when only the
// output is wanted (inference: P then stays in per-thread scratch); drop: contiguous
// (B, H, T, S) multipliers or nullptr. Threads take whole (batch, head) items when
// there are enough of them, else each item's GEMMs and rows are split (same bits
// either way: every item is computed by the same sequence of kernels).
void attention_forward(int64_t B, int64_t H, int64_t T, int64_t S, int64_t dk, int64_t dv, HeadView q, HeadView k,
                       HeadView v, float scale, MaskView mask, const float* drop, float* out, float* weights);

// Gradients of attention_forward for its output gradient dout (B, T, H, dv), given the
// weights it returned. dq, dk, dv must not overlap any input; every element is written.
void attention_backward(int64_t B, int64_t H, int64_t T, int64_t S, int64_t dk, int64_t dv, HeadView dout,
                        HeadView q, HeadView k, HeadView v, const float* weights, float scale, MaskView mask,
                        const float* drop, HeadOut dq, HeadOut dkey, HeadOut dval);

}  // namespace pynn::nn
