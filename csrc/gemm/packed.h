// Pre-packed B operands (issue #17): B (k x n, any strides) is packed ONCE into
// the microkernel's NR-panel layout and then multiplied by many A's without
// repacking -- the recurrent kernel across all time steps of a sequence, a
// Dense kernel across predict() batches.
//
// Layout: ceil(n / NR) panels; panel jp (columns [jp*NR, jp*NR + NR)) starts at
// data() + jp * k * NR and holds B(p, jp*NR + q) at [p * NR + q] for p < k,
// q < NR, zero for columns >= n. That is pack_b's layout with KC = all of k, so
// any KC block of a panel is contiguous (offset pc * NR) and every kernel of the
// frame (packed A, unpacked A, edge rows) reads it as it reads pack_b's blocks.
//
// sgemm_packed computes exactly what pynn::sgemm (gemm.h) documents, with B
// given packed: C = act(alpha * A.B + beta * C + bias). The summation order of
// every output element depends only on k and A's layout (KC blocks are a
// function of k alone; tiles never span threads), so the result is the same at
// every thread count and for every column/row sub-block of the same product.
//
// Python (bind_gemm.cpp): _C.PackedMatrix(b) packs a 2-D float32 array (any
// strides), with .shape (k, n) and .nbytes; _C.gemm_packed(a, packed, bias=None,
// activation="linear", act_alpha=0.0, alpha=1.0, beta=0.0, out=None) multiplies.
// A PackedMatrix is a snapshot: it does not see later writes to b (the caller
// repacks when the weights change; pynn.backend.native.core.pack_weight /
// packed_matmul are the Python helpers, and Dense keys its cache on the
// weights' version).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/activation.h"

namespace pynn {

class PackedB {
 public:
  PackedB() = default;
  // Packs B (k x n), element (p, j) at b[p * rs_b + j * cs_b]. Any k, n >= 0.
  // Uses up to num_threads() threads for a large B (one inside a parallel region).
  PackedB(int64_t k, int64_t n, const float* b, int64_t rs_b, int64_t cs_b);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t panels() const { return panels_; }
  size_t nbytes() const { return static_cast<size_t>(panels_ * k_) * kNR * sizeof(float); }
  // Panel jp (k x NR floats).
  const float* panel(int64_t jp) const { return data_.get() + jp * k_ * kNR; }
  static constexpr int kNR = 16;  // == gemm::NR (checked in packed.cpp)

 private:
  struct Free {
    void operator()(float* p) const;
  };
  int64_t k_ = 0, n_ = 0, panels_ = 0;
  std::unique_ptr<float, Free> data_;
};

// C (m x n) = act(alpha * A.B + beta * C + bias) with B = b (k x n) packed.
// A: m x b.k(), strided as in sgemm. bias: b.n() floats or nullptr. beta == 0:
// C not read. Threads: up to num_threads() (1 inside a parallel region), the
// split parameterised by the count. C must not overlap A or bias.
void sgemm_packed(int64_t m, float alpha, const float* a, int64_t rs_a, int64_t cs_a, const PackedB& b, float beta,
                  float* c, int64_t rs_c, int64_t cs_c, const float* bias, Act act, float act_alpha);

// The same on one thread, for column panels [p0, p1) of B only (C and bias then
// start at column p0 * NR: c points at C(0, p0*NR), bias at bias[p0*NR]).
// For callers that deal the columns to their own threads (the RNN time loops).
void sgemm_packed_panels(int64_t m, float alpha, const float* a, int64_t rs_a, int64_t cs_a, const PackedB& b,
                         int64_t p0, int64_t p1, float beta, float* c, int64_t rs_c, int64_t cs_c, const float* bias,
                         Act act, float act_alpha);

}  // namespace pynn
