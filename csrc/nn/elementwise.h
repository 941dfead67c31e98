// NumPy-compatible reductions and elementwise kernels for pynn.ops (the NumPy face),
// float32 and float64 over C-contiguous buffers.
//
// Bit-compatibility with NumPy (what pynn.ops promises; tests/test_ops_native.py pins it):
//   sum / mean over the last axis (or a whole contiguous buffer): NumPy's pairwise
//     summation (numpy/_core/src/umath/loops_utils.h.src: blocks of 128, 8 accumulators)
//     added to 0.0 as NumPy's add.reduce does -- bit for bit, at any thread count
//     (threads take whole rows, or the two halves of NumPy's own pairwise split).
//   sum / mean over the first axis: NumPy adds row by row (out = out + x[r]); so does this,
//     vectorised over the columns and split by columns across threads: bit for bit. A
//     single column (C == 1) is a contiguous 1-D sum, which NumPy sums pairwise: so do we.
//     mean = that sum / count in the array's dtype, as np.mean divides.
//   max / min: NaN propagates. Over the first axis out = maximum(out, x[r]) as NumPy's
//     binary loop does (ties keep the second operand): bit for bit, sign of zero included.
//     Over the last axis NumPy's SIMD reduction order is its own, so a row whose extreme
//     is both +0.0 and -0.0 may give the other zero (they compare equal); which NaN (of
//     several payloads) comes back is likewise unspecified.
//   maximum / minimum with a scalar: NumPy's maximum(a, b) = a if a is NaN, else
//     (a > b ? a : b), operands in the caller's order: bit for bit.
#pragma once
#include <cstdint>

#include "common/dispatch.h"

namespace pynn::nn {

enum class ReduceOp : int { Sum = 0, Mean = 1, Max = 2, Min = 3 };

#define PYNN_EW_PUBLIC(T)                                                                  \
  /* out[r] = op(x[r, 0..n)) for r < rows (x is rows x n, row-major). */                   \
  void reduce_last(ReduceOp op, const T* x, T* out, int64_t rows, int64_t n);           \
  /* out[c] = op(x[0..rows), c) for c < C (x is rows x C, row-major). */                   \
  void reduce_first(ReduceOp op, const T* x, T* out, int64_t rows, int64_t C);          \
  /* y[i] = maximum(x[i], s) (maximum(s, x[i]) when scalar_first; minimum when !is_max). */ \
  void max_scalar(const T* x, T s, T* y, int64_t n, bool is_max, bool scalar_first);
PYNN_EW_PUBLIC(float)
PYNN_EW_PUBLIC(double)
#undef PYNN_EW_PUBLIC

// The per-ISA pieces the public functions above split across threads.
#define PYNN_EW_ISA(T)                                                                     \
  /* rows [r0, r1) of reduce_last (Mean: not divided here). */                             \
  void reduce_rows(ReduceOp op, const T* x, T* out, int64_t r0, int64_t r1, int64_t n);  \
  /* columns [c0, c1) of reduce_first (Mean: not divided here). */                         \
  void reduce_cols(ReduceOp op, const T* x, T* out, int64_t rows, int64_t C, int64_t c0, int64_t c1); \
  void max_scalar(const T* x, T s, T* y, int64_t n, bool is_max, bool scalar_first);
PYNN_ISA_DECLARE(PYNN_EW_ISA(float) PYNN_EW_ISA(double))
#undef PYNN_EW_ISA

}  // namespace pynn::nn
