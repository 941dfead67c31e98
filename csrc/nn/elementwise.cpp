// Generic build of the NumPy-compatible kernels, the ISA dispatch and the threading.
// Threads never change a result (elementwise.h): rows, column blocks and elementwise
// blocks are independent, and a single long row is split exactly where NumPy's pairwise
// sum splits it. share_work (common/parallel.h), not an OpenMP team: on the shared
// machine a late helper must not hold the caller up, and these calls are short.
#define PYNN_ISA generic
#include "nn/elementwise_impl.h"
#undef PYNN_ISA

#include "common/parallel.h"

namespace pynn::nn {
namespace {

// Memory-bound passes: a second thread pays only past ~100 us of work. Its wake-up alone
// took tens of microseconds on the shared machine (a 131k-element pass, ~10 us, ran slower
// on 2 threads than on 1), so each thread gets at least 512k elements.
constexpr int64_t kGrain = 1 << 19;
// Reductions split later still: at load 7-11 a 2-thread split of 1M-4M elements ran 0.13-0.9x
// NumPy's single-threaded speed where the same kernel on one thread ran 1.4x (the second thread
// mostly waits for a core; the column walks also compete for bandwidth), so a reduction gets a
// second thread only from 4M elements per thread (pynn.ops routes nothing that large here:
// _dispatch.py; the split stays for direct callers of np_reduce and is tested bit for bit).
constexpr int64_t kReduceGrain = 1 << 22;

template <class T>
void divide_by(T* out, int64_t n, int64_t count) {
  const T d = static_cast<T>(count);  // np.mean: true_divide(sum, count), count cast to the dtype
  for (int64_t i = 0; i < n; ++i) out[i] = out[i] / d;
}

template <class T>
T combine(ReduceOp op, T a, T b) {
  switch (op) {
    case ReduceOp::Max: return (a != a) ? a : (b != b) ? b : (a > b ? a : b);
    case ReduceOp::Min: return (a != a) ? a : (b != b) ? b : (a < b ? a : b);
    default: return a + b;
  }
}

template <class T>
void reduce_last_t(ReduceOp op, const T* x, T* out, int64_t rows, int64_t n) {
  if (rows <= 0) return;
  const int T_ = threads_for(rows * n, kReduceGrain);
  if (rows == 1 && T_ > 1 && n > 128) {
    // One long row: the two halves of NumPy's first pairwise split, one per thread.
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    T part[2];
    const ReduceOp each = op == ReduceOp::Mean ? ReduceOp::Sum : op;
    share_work(2, 1, 2, [&](int64_t lo, int64_t hi) {  // (0, 2) at once when run inline
      for (int64_t h = lo; h < hi; ++h)
        PYNN_ISA_CALL(reduce_rows, each, x + (h == 0 ? 0 : n2), &part[h], 0, 1, h == 0 ? n2 : n - n2);
    });
    // reduce_rows added each half to 0.0, which changes nothing but a -0.0 half; NumPy's
    // 0.0 + (left + right) gives the same bits either way for the sum.
    out[0] = combine(op, part[0], part[1]);
    if (op == ReduceOp::Sum || op == ReduceOp::Mean) out[0] = T(0) + out[0];
  } else {
    share_work(rows, std::max<int64_t>(1, rows / (8 * T_)), T_,
               [&](int64_t r0, int64_t r1) { PYNN_ISA_CALL(reduce_rows, op, x, out, r0, r1, n); });
  }
  if (op == ReduceOp::Mean) divide_by(out, rows, n);
}

template <class T>
void reduce_first_t(ReduceOp op, const T* x, T* out, int64_t rows, int64_t C) {
  if (C <= 0) return;
  if (C == 1) {  // a contiguous column: NumPy sums it as one 1-D run (pairwise)
    reduce_last_t(op, x, out, 1, rows);
    return;
  }
  constexpr int64_t kBlock = 64;  // columns per chunk (whole cache lines)
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  const int T_ = threads_for(rows * C, kReduceGrain);
  share_work(blocks, std::max<int64_t>(1, blocks / (4 * T_)), T_, [&](int64_t b0, int64_t b1) {
    PYNN_ISA_CALL(reduce_cols, op, x, out, rows, C, b0 * kBlock, std::min(C, b1 * kBlock));
  });
  if (op == ReduceOp::Mean) divide_by(out, C, rows);
}

template <class T>
void max_scalar_t(const T* x, T s, T* y, int64_t n, bool is_max, bool scalar_first) {
  const int T_ = threads_for(n, kGrain);
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  share_work(blocks, std::max<int64_t>(1, blocks / (8 * T_)), T_, [&](int64_t b0, int64_t b1) {
    const int64_t e0 = b0 * kBlock, e1 = std::min(n, b1 * kBlock);
    PYNN_ISA_CALL(max_scalar, x + e0, s, y + e0, e1 - e0, is_max, scalar_first);
  });
}

}  // namespace

#define PYNN_EW_PUBLIC_DEF(T)                                                             \
  void reduce_last(ReduceOp op, const T* x, T* out, int64_t rows, int64_t n) {           \
    reduce_last_t<T>(op, x, out, rows, n);                                                \
  }                                                                                       \
  void reduce_first(ReduceOp op, const T* x, T* out, int64_t rows, int64_t C) {          \
    reduce_first_t<T>(op, x, out, rows, C);                                               \
  }                                                                                       \
  void max_scalar(const T* x, T s, T* y, int64_t n, bool is_max, bool scalar_first) {     \
    max_scalar_t<T>(x, s, y, n, is_max, scalar_first);                                    \
  }
PYNN_EW_PUBLIC_DEF(float)
PYNN_EW_PUBLIC_DEF(double)
#undef PYNN_EW_PUBLIC_DEF

}  // namespace pynn::nn
