// Bindings of the elementwise and row kernels (csrc/nn/): the activation list,
// activations forward/backward, bias add/grad, softmax, softmax + cross-entropy.
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#else
#include <cfenv>
#endif

#include "common/binding.h"
#include "common/parallel.h"
#include "gemm/config.h"
#include "gemm/gemm.h"
#include "nn/activations.h"
#include "nn/attention.h"
#include "nn/attention_block.h"
#include "nn/bias.h"
#include "nn/elementwise.h"
#include "nn/softmax.h"
#include "nn/softmax_xent.h"

namespace pynn::bind {
namespace {

std::vector<std::string> activation_names() { return {std::begin(kActNames), std::end(kActNames)}; }

bool activation_from_output(const std::string& name) {
  return act_from_output(act_arg("activation_from_output", name));
}

py::array act_forward(py::handle xh, const std::string& name, float alpha) {
  const char* op = "act_forward";
  py::array x = f32c(op, "x", xh);
  const Act a = act_arg(op, name);
  py::array y = empty_like(x);
  const float* xp = cptr(x);
  float* yp = mptr(y);
  const int64_t n = x.size();
  nogil([&] { nn::act_forward(a, xp, yp, n, alpha); });
  return y;
}

py::array act_backward(py::handle xh, py::handle yh, py::handle dyh, const std::string& name, float alpha) {
  const char* op = "act_backward";
  py::array x = f32c(op, "x", xh), y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
  same_shape(op, "x", x, "y", y);
  same_shape(op, "x", x, "dy", dy);
  const Act a = act_arg(op, name);
  py::array dx = empty_like(x);
  const float *xp = cptr(x), *yp = cptr(y), *gp = cptr(dy);
  float* dp = mptr(dx);
  const int64_t n = x.size();
  nogil([&] { nn::act_backward(a, xp, yp, gp, dp, n, alpha); });
  return dx;
}

py::array bias_add(py::handle xh, py::handle bh) {
  const char* op = "bias_add";
  py::array x = f32c(op, "x", xh), b = f32c(op, "b", bh);
  const auto [rows, C] = rows_by_last(op, "x", x);
  if (b.ndim() != 1 || b.shape(0) != C)
    throw py::value_error(std::string(op) + ": b must have shape (" + std::to_string(C) + ",) for x of shape " +
                          shape_str(x) + ", got " + shape_str(b));
  py::array y = empty_like(x);
  const float *xp = cptr(x), *bp = cptr(b);
  float* yp = mptr(y);
  nogil([&, rows = rows, C = C] { nn::bias_add(xp, bp, yp, rows, C); });
  return y;
}

py::array bias_grad(py::handle dyh) {
  const char* op = "bias_grad";
  py::array dy = f32c(op, "dy", dyh);
  const auto [rows, C] = rows_by_last(op, "dy", dy);
  py::array db = empty({C});
  const float* gp = cptr(dy);
  float* dp = mptr(db);
  nogil([&, rows = rows, C = C] { nn::bias_grad(gp, dp, rows, C); });
  return db;
}

py::tuple act_bias_backward(py::handle yh, py::handle dyh, const std::string& name) {
  const char* op = "act_bias_backward";
  py::array y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
  same_shape(op, "y", y, "dy", dy);
  const Act a = act_from_output_arg(op, name);
  const auto [rows, C] = rows_by_last(op, "y", y);
  py::array dz = empty_like(y), db = empty({C});
  const float *yp = cptr(y), *gp = cptr(dy);
  float *zp = mptr(dz), *bp = mptr(db);
  nogil([&, rows = rows, C = C] { nn::act_bias_backward(a, yp, gp, zp, bp, rows, C); });
  return py::make_tuple(dz, db);
}

py::array softmax(py::handle xh, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  py::array x = f32c(op, "x", xh);
  const auto [rows, C] = rows_by_last(op, "x", x);
  py::array y = empty_like(x);
  const float* xp = cptr(x);
  float* yp = mptr(y);
  nogil([&, rows = rows, C = C] { nn::softmax_rows(xp, yp, rows, C, log); });
  return y;
}

py::array softmax_backward(py::handle yh, py::handle dyh, bool log) {
  const char* op = log ? "log_softmax_grad" : "softmax_grad";
  py::array y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
  same_shape(op, "y", y, "dy", dy);
  const auto [rows, C] = rows_by_last(op, "y", y);
  py::array dx = empty_like(y);
  const float *yp = cptr(y), *gp = cptr(dy);
  float* dp = mptr(dx);
  nogil([&, rows = rows, C = C] { nn::softmax_backward_rows(yp, gp, dp, rows, C, log); });
  return dx;
}

// ---- fused multi-head attention (nn/attention.h)
// A float32 (B, T, H, d) array of any strides as the kernel's view; `want` its shape.
template <class View>
View head_view(const char* op, const char* arg, const py::array& a, const std::vector<int64_t>& want) {
  require_shape(op, arg, a, want);
  int64_t s[4];
  for (int d = 0; d < 4; ++d) {
    const py::ssize_t bytes = a.strides(d);
    if (bytes % static_cast<py::ssize_t>(sizeof(float)) != 0)
      throw py::value_error(std::string(op) + ": " + arg + " with shape " + shape_str(a) + " has byte stride " +
                            std::to_string(bytes) + " in dimension " + std::to_string(d) +
                            ", not a multiple of the float32 itemsize 4");
    s[d] = a.shape(d) <= 1 ? 0 : static_cast<int64_t>(bytes / static_cast<py::ssize_t>(sizeof(float)));
  }
  using P = decltype(View::p);
  return View{static_cast<P>(const_cast<void*>(a.data())), s[0], s[1], s[2], s[3]};
}

// [lowest, highest] byte an array's elements occupy (a.size() > 0).
std::pair<const char*, const char*> byte_extent(const py::array& a) {
  const char* lo = static_cast<const char*>(a.data());
  const char* hi = lo;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    (span < 0 ? lo : hi) += span;
  }
  return {lo, hi + a.itemsize() - 1};
}

bool overlap(const py::array& a, const py::array& b) {
  if (a.size() == 0 || b.size() == 0) return false;
  const auto [alo, ahi] = byte_extent(a);
  const auto [blo, bhi] = byte_extent(b);
  return alo <= bhi && blo <= ahi;
}

struct AttnArgs {
  int64_t B, H, T, S, dk, dv;
  py::array q, k, v, mask, drop;  // mask/drop: default (empty) arrays unless given
  bool has_drop = false;
  nn::MaskView m{nullptr, 0, 0, 0, 0};
};

// Shapes of q (B, T, H, dk), k (B, S, H, dk), v (B, S, H, dv); mask None or bool/uint8
// (B, H, T, S) of any strides (a broadcast view is fine); dropout None or float32
// C-contiguous (B, H, T, S) multipliers.
AttnArgs attn_args(const char* op, py::handle qh, py::handle kh, py::handle vh, py::handle mh, py::handle dh) {
  AttnArgs r;
  r.q = f32(op, "q", qh);
  r.k = f32(op, "k", kh);
  r.v = f32(op, "v", vh);
  require_ndim(op, "q", r.q, 4, "4-D (batch, steps, heads, key_dim)");
  require_ndim(op, "k", r.k, 4, "4-D (batch, steps, heads, key_dim)");
  require_ndim(op, "v", r.v, 4, "4-D (batch, steps, heads, value_dim)");
  r.B = r.q.shape(0), r.T = r.q.shape(1), r.H = r.q.shape(2), r.dk = r.q.shape(3);
  r.S = r.k.shape(1), r.dv = r.v.shape(3);
  require_shape(op, "k", r.k, {r.B, r.S, r.H, r.dk});
  require_shape(op, "v", r.v, {r.B, r.S, r.H, r.dv});
  if (!mh.is_none()) {
    if (!py::isinstance<py::array>(mh)) throw py::type_error(std::string(op) + ": mask must be a numpy.ndarray or None");
    r.mask = py::reinterpret_borrow<py::array>(mh);
    const int num = r.mask.dtype().num();
    if (num != py::detail::npy_api::NPY_BOOL_ && num != py::detail::npy_api::NPY_UBYTE_)
      throw py::type_error(std::string(op) + ": mask must be bool or uint8, got " + std::string(py::str(r.mask.dtype())));
    require_shape(op, "mask", r.mask, {r.B, r.H, r.T, r.S});
    int64_t s[4];
    for (int d = 0; d < 4; ++d) s[d] = r.mask.shape(d) <= 1 ? 0 : static_cast<int64_t>(r.mask.strides(d));
    r.m = nn::MaskView{static_cast<const uint8_t*>(r.mask.data()), s[0], s[1], s[2], s[3]};
  }
  if (!dh.is_none()) {
    r.drop = f32c(op, "dropout", dh);
    r.has_drop = true;
    require_shape(op, "dropout", r.drop, {r.B, r.H, r.T, r.S});
  }
  return r;
}

py::tuple attention_forward(py::handle qh, py::handle kh, py::handle vh, float scale, py::handle mh, py::handle dh,
                            bool need_weights) {
  const char* op = "attention";
  AttnArgs a = attn_args(op, qh, kh, vh, mh, dh);
  const auto q = head_view<nn::HeadView>(op, "q", a.q, {a.B, a.T, a.H, a.dk});
  const auto k = head_view<nn::HeadView>(op, "k", a.k, {a.B, a.S, a.H, a.dk});
  const auto v = head_view<nn::HeadView>(op, "v", a.v, {a.B, a.S, a.H, a.dv});
  py::array out = empty({a.B, a.T, a.H, a.dv});
  py::object w = py::none();
  float* wp = nullptr;
  if (need_weights) {
    py::array wa = empty({a.B, a.H, a.T, a.S});
    wp = mptr(wa);
    w = wa;
  }
  const float* drop = a.has_drop ? cptr(a.drop) : nullptr;
  float* op_ = mptr(out);
  nogil([&] { nn::attention_forward(a.B, a.H, a.T, a.S, a.dk, a.dv, q, k, v, scale, a.m, drop, op_, wp); });
  return py::make_tuple(out, w);
}

void attention_backward(py::handle gh, py::handle qh, py::handle kh, py::handle vh, py::handle wh, float scale,
                        py::handle mh, py::handle dh, py::handle dqh, py::handle dkh, py::handle dvh) {
  const char* op = "attention_grad";
  AttnArgs a = attn_args(op, qh, kh, vh, mh, dh);
  py::array g = f32(op, "dout", gh), w = f32c(op, "weights", wh);
  py::array dq = f32(op, "dq", dqh), dk = f32(op, "dk", dkh), dv = f32(op, "dv", dvh);
  const auto G = head_view<nn::HeadView>(op, "dout", g, {a.B, a.T, a.H, a.dv});
  const auto q = head_view<nn::HeadView>(op, "q", a.q, {a.B, a.T, a.H, a.dk});
  const auto k = head_view<nn::HeadView>(op, "k", a.k, {a.B, a.S, a.H, a.dk});
  const auto v = head_view<nn::HeadView>(op, "v", a.v, {a.B, a.S, a.H, a.dv});
  require_shape(op, "weights", w, {a.B, a.H, a.T, a.S});
  const auto DQ = head_view<nn::HeadOut>(op, "dq", dq, {a.B, a.T, a.H, a.dk});
  const auto DK = head_view<nn::HeadOut>(op, "dk", dk, {a.B, a.S, a.H, a.dk});
  const auto DV = head_view<nn::HeadOut>(op, "dv", dv, {a.B, a.S, a.H, a.dv});
  // The gradients are written while the inputs are read: no output may share a byte with an
  // input. (The three outputs may interleave, as views of one packed buffer; each element
  // of each is written once.)
  for (const auto& [name, o] : {std::pair<const char*, py::array*>{"dq", &dq}, {"dk", &dk}, {"dv", &dv}}) {
    require_writeable(op, name, *o);
    for (const py::array* in : {&g, &a.q, &a.k, &a.v, &w, &a.drop, &a.mask})
      if (overlap(*o, *in))
        throw py::value_error(std::string(op) + ": output " + name + " overlaps an input");
  }
  const float* drop = a.has_drop ? cptr(a.drop) : nullptr;
  const float* wp = cptr(w);
  nogil([&] {
    nn::attention_backward(a.B, a.H, a.T, a.S, a.dk, a.dv, G, q, k, v, wp, scale, a.m, drop, DQ, DK, DV);
  });
}

// dz = act'(y) * (g . w^T), db = dz.sum(0) (nn/attention_block.h): g (rows, n), w (k, n), y (rows, k).
py::tuple matmul_act_backward(py::handle gh, py::handle wh, py::handle yh, const std::string& name) {
  const char* op = "matmul_act_backward";
  py::array g = f32c(op, "g", gh), w = f32c(op, "w", wh), y = f32c(op, "y", yh);
  require_ndim(op, "g", g, 2, "2-D (rows, n)");
  require_ndim(op, "w", w, 2, "2-D (k, n)");
  require_ndim(op, "y", y, 2, "2-D (rows, k)");
  const int64_t rows = g.shape(0), n = g.shape(1), k = w.shape(0);
  require_shape(op, "w", w, {k, n});
  require_shape(op, "y", y, {rows, k});
  const Act a = act_from_output_arg(op, name);
  py::array dz = empty({rows, k}), db = empty({k});
  const float *gp = cptr(g), *wp = cptr(w), *yp = cptr(y);
  float *zp = mptr(dz), *bp = mptr(db);
  nogil([&] { nn::matmul_act_backward(rows, n, k, gp, wp, n, yp, a, zp, bp); });
  return py::make_tuple(dz, db);
}

// Column sums of x (rows, C) over fixed row blocks (nn/attention_block.h).
py::array row_block_sums(py::handle xh) {
  const char* op = "row_block_sums";
  py::array x = f32c(op, "x", xh);
  require_ndim(op, "x", x, 2, "2-D (rows, C)");
  const int64_t rows = x.shape(0), C = x.shape(1);
  py::array out = empty({C});
  const float* xp = cptr(x);
  float* op_ = mptr(out);
  nogil([&] { nn::row_block_sums(rows, C, xp, op_); });
  return out;
}

// logits (N, C) float32 for the fused softmax cross-entropy.
py::array logits_arg(const char* op, py::handle h) {
  py::array x = f32c(op, "logits", h);
  require_ndim(op, "logits", x, 2, "2-D (N, C)");
  return x;
}

py::tuple softmax_xent_sparse(py::handle xh, py::handle lh) {
  const char* op = "softmax_cross_entropy";
  py::array x = logits_arg(op, xh);
  if (!py::isinstance<py::array>(lh)) throw py::type_error(std::string(op) + ": labels must be a numpy.ndarray");
  py::array lab = py::reinterpret_borrow<py::array>(lh);
  if (!lab.dtype().is(py::dtype::of<int64_t>()))
    throw py::type_error(std::string(op) + ": labels must be int64, got " + std::string(py::str(lab.dtype())));
  if (!(lab.flags() & py::array::c_style)) throw py::value_error(std::string(op) + ": labels must be C-contiguous");
  const int64_t N = x.shape(0), C = x.shape(1);
  if (lab.ndim() != 1 || lab.shape(0) != N)
    throw py::value_error(std::string(op) + ": labels must have shape (" + std::to_string(N) +
                          ",) for logits of shape " + shape_str(x) + ", got " + shape_str(lab));
  const int64_t* lp = static_cast<const int64_t*>(lab.data());
  for (int64_t i = 0; i < N; ++i)
    if (lp[i] < 0 || lp[i] >= C)
      throw py::value_error(std::string(op) + ": label " + std::to_string(lp[i]) + " at index " + std::to_string(i) +
                            " is out of range [0, " + std::to_string(C) + ") for " + std::to_string(C) + " classes");
  py::array loss = empty({N}), d = empty_like(x);
  const float* xp = cptr(x);
  float *lossp = mptr(loss), *dp = mptr(d);
  nogil([&] { nn::softmax_xent_sparse(xp, lp, lossp, dp, N, C); });
  return py::make_tuple(loss, d);
}

py::tuple softmax_xent_dense(py::handle xh, py::handle th) {
  const char* op = "softmax_cross_entropy";
  py::array x = logits_arg(op, xh), t = f32c(op, "targets", th);
  same_shape(op, "logits", x, "targets", t);
  const int64_t N = x.shape(0), C = x.shape(1);
  py::array loss = empty({N}), d = empty_like(x);
  const float *xp = cptr(x), *tp = cptr(t);
  float *lossp = mptr(loss), *dp = mptr(d);
  nogil([&] { nn::softmax_xent_dense(xp, tp, lossp, dp, N, C); });
  return py::make_tuple(loss, d);
}

// ---- pynn.ops' NumPy face: float32/float64 reductions and maximum/minimum with a scalar.
// A float32 or float64 C-contiguous ndarray of at least one element, or TypeError/ValueError.
py::array np_operand(const char* op, py::handle h, int* type_num) {
  if (!py::isinstance<py::array>(h)) throw py::type_error(std::string(op) + ": x must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(h);
  const int num = a.dtype().num();
  if (num != py::detail::npy_api::NPY_FLOAT_ && num != py::detail::npy_api::NPY_DOUBLE_)
    throw py::type_error(std::string(op) + ": x must be float32 or float64, got " + std::string(py::str(a.dtype())));
  if (a.dtype().byteorder() != '=')
    throw py::type_error(std::string(op) + ": x must be in native byte order, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(op) + ": x must be C-contiguous");
  if (a.size() == 0) throw py::value_error(std::string(op) + ": x must not be empty, got shape " + shape_str(a));
  *type_num = num;
  return a;
}

template <class T>
py::array np_reduce_t(const py::array& x, nn::ReduceOp op, int axis, bool keepdims) {
  const int nd = static_cast<int>(x.ndim());
  std::vector<py::ssize_t> shape;
  int64_t rows, n;
  if (axis == -1) {  // the last axis
    rows = x.size() / x.shape(nd - 1);
    n = x.shape(nd - 1);
    shape.assign(x.shape(), x.shape() + nd - 1);
    if (keepdims) shape.push_back(1);
  } else if (axis == 0) {  // the first axis
    rows = x.shape(0);
    n = x.size() / rows;
    if (keepdims) shape.push_back(1);
    shape.insert(shape.end(), x.shape() + 1, x.shape() + nd);
  } else {  // every axis: one contiguous run
    rows = 1;
    n = x.size();
    if (keepdims) shape.assign(static_cast<size_t>(nd), 1);
  }
  py::array_t<T> out(shape);
  const T* xp = static_cast<const T*>(x.data());
  T* op_ = out.mutable_data();
  if (axis == 0)
    nogil([&] { nn::reduce_first(op, xp, op_, rows, n); });
  else
    nogil([&] { nn::reduce_last(op, xp, op_, rows, n); });
  return out;
}

py::array np_reduce(py::handle xh, int op, int axis, bool keepdims) {
  const char* name = "np_reduce";
  int num = 0;
  py::array x = np_operand(name, xh, &num);
  if (op < 0 || op > 3) throw py::value_error("np_reduce: op must be 0 (sum), 1 (mean), 2 (max) or 3 (min)");
  if (axis != -1 && axis != 0 && axis != 2)
    throw py::value_error("np_reduce: axis must be -1 (last), 0 (first) or 2 (all)");
  if (x.ndim() == 0 && axis != 2) throw py::value_error("np_reduce: a 0-d x has no axis to reduce");
  const auto o = static_cast<nn::ReduceOp>(op);
  return num == py::detail::npy_api::NPY_FLOAT_ ? np_reduce_t<float>(x, o, axis, keepdims)
                                                : np_reduce_t<double>(x, o, axis, keepdims);
}

template <class T>
void np_max_scalar_t(const py::array& x, double s, py::array& y, bool is_max, bool scalar_first) {
  const T* xp = static_cast<const T*>(x.data());
  T* yp = static_cast<T*>(y.mutable_data());
  const int64_t n = x.size();
  const T st = static_cast<T>(s);
  nogil([&] { nn::max_scalar(xp, st, yp, n, is_max, scalar_first); });
}

py::array np_max_scalar(py::handle xh, double s, bool is_max, bool scalar_first, py::handle outh) {
  const char* name = "np_max_scalar";
  int num = 0;
  py::array x = np_operand(name, xh, &num);
  py::array y;
  if (outh.is_none()) {
    y = py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  } else {
    int onum = 0;
    y = np_operand(name, outh, &onum);
    if (onum != num) throw py::type_error("np_max_scalar: out must have x's dtype");
    same_shape(name, "x", x, "out", y);
    require_writeable(name, "out", y);
    // out is x itself or disjoint from it (elementwise: each element is read before written).
    const char *xb = static_cast<const char*>(x.data()), *yb = static_cast<const char*>(y.data());
    const auto bytes = static_cast<py::ssize_t>(x.nbytes());
    if (xb != yb && xb < yb + bytes && yb < xb + bytes)
      throw py::value_error("np_max_scalar: out overlaps x without being x");
  }
  if (num == py::detail::npy_api::NPY_FLOAT_)
    np_max_scalar_t<float>(x, s, y, is_max, scalar_first);
  else
    np_max_scalar_t<double>(x, s, y, is_max, scalar_first);
  return y;
}


// ---- pynn.ops' per-call fast entries. The lecture MLP calls its reductions and relu on
// 32x10 .. 32x128 arrays, where pybind11's argument handling (~0.25 us) and pynn.ops'
// Python-side checks (~0.45 us: dtype, flags object, axis, size, backend) were most of the
// call (ops.sum(x, axis=0) of 32x10 took 0.93 us, the kernel ~0.05 us). These raw
// METH_FASTCALL functions take the NumPy face's own arguments, check them on the array
// struct and either compute NumPy's result with the same kernels as np_reduce /
// np_max_scalar (the same bits) or return None: pynn.ops then takes NumPy's route. The
// routing limits are _dispatch.py's, handed over once by np_fast_limits.
namespace fast {

using npy = py::detail::npy_api;

struct Limits {
  int64_t reduce_small_max = int64_t{1} << 16, reduce_cols_max = int64_t{4} << 20, reduce_cols_min_width = 16,
          reduce_ext_rows_max = int64_t{1} << 22, ext_scalar_min = 1024;
};
Limits g_limits;
// _dispatch.py's GEMM routing limits (np_gemm_limits); never native until they are set.
struct GemmLimits {
  int64_t min_macs = INT64_MAX, min_side = 0, min_n = 0, min_k = 0, colmajor_max_n = 0, colmajor_max_k = 0,
          max_threads = 0, nt_max_macs = 0, nt_min_side = 0, split_min_macs = INT64_MAX;
};
GemmLimits g_gemm;
// NumPy's "not given" default (np._NoValue), pynn.ops' keepdims default: read as keepdims=False.
PyObject* g_novalue = nullptr;

void set_novalue(py::object o) {
  Py_XDECREF(g_novalue);
  g_novalue = o.release().ptr();  // kept for the process's life, like the module's own objects
}
// Up to this many elements the kernel keeps the GIL: releasing and retaking it costs ~0.2 us.
constexpr int64_t kGilFreeSize = int64_t{1} << 16;

void set_limits(int64_t reduce_small_max, int64_t reduce_cols_max, int64_t reduce_cols_min_width,
                int64_t reduce_ext_rows_max, int64_t ext_scalar_min) {
  g_limits = Limits{reduce_small_max, reduce_cols_max, reduce_cols_min_width, reduce_ext_rows_max, ext_scalar_min};
}

// o as an exact ndarray (no subclass: its __array_function__ / __array_wrap__ would be
// skipped), aligned, C-contiguous, float32/float64 in native order, not empty; else nullptr.
py::detail::PyArray_Proxy* operand(PyObject* o, int* num, int64_t* size) {
  const npy& api = npy::get();
  if (Py_TYPE(o) != api.PyArray_Type_) return nullptr;
  auto* p = py::detail::array_proxy(o);
  if ((p->flags & (npy::NPY_ARRAY_C_CONTIGUOUS_ | npy::NPY_ARRAY_ALIGNED_)) !=
      (npy::NPY_ARRAY_C_CONTIGUOUS_ | npy::NPY_ARRAY_ALIGNED_))
    return nullptr;
  auto* d = py::detail::array_descriptor_proxy(p->descr);
  if ((d->type_num != npy::NPY_FLOAT_ && d->type_num != npy::NPY_DOUBLE_) || d->byteorder == '>') return nullptr;
  int64_t n = 1;
  for (int i = 0; i < p->nd; ++i) n *= p->dimensions[i];
  if (n == 0) return nullptr;
  *num = d->type_num;
  *size = n;
  return p;
}

// A new C-contiguous array of dtype num (a new reference, or nullptr with an exception set).
PyObject* new_array(int num, int nd, const py::ssize_t* dims) {
  const npy& api = npy::get();
  PyObject* descr = api.PyArray_DescrFromType_(num);
  if (!descr) return nullptr;
  return api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, const_cast<Py_intptr_t*>(dims), nullptr, nullptr,
                                   0, nullptr);
}

// NumPy's floating-point error handling (np.errstate: divide, over, under, invalid; a
// RuntimeWarning by default, FloatingPointError under "raise") reads the CPU's sticky status
// flags after a loop: np.sum of float32 3e38s warns "overflow encountered in reduce", np.dot
// of an inf and a 0 "invalid value encountered in dot". The fast entries clear the flags
// before a kernel and, when the kernel raised one of those four, drop their result and
// return None: NumPy then recomputes and reports exactly as it would have (a rare slow path
// with a NumPy-sized cost). Only the calling thread's flags are visible here; products that
// may split across threads are also checked for non-finite output (fast_dot below).
#if defined(__x86_64__) || defined(_M_X64)
// MXCSR's exception flags: IE 0x01, DE 0x02 (denormal operand), ZE 0x04, OE 0x08, UE 0x10,
// PE 0x20 (inexact). NumPy checks invalid, divide, overflow, underflow: not DE, not PE.
inline void fp_clear() { _mm_setcsr(_mm_getcsr() & ~0x3Fu); }
inline bool fp_raised() { return (_mm_getcsr() & 0x1Du) != 0; }
#else
inline void fp_clear() { std::feclearexcept(FE_ALL_EXCEPT); }
inline bool fp_raised() { return std::fetestexcept(FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID) != 0; }
#endif

template <class F>
void run(int64_t size, F&& f) {
  if (size <= kGilFreeSize) {
    f();
  } else {
    py::gil_scoped_release release;
    f();
  }
}

// np_fast_reduce(x, op, axis, keepdims): NumPy's sum/mean/max/min (op 0..3) of x, or None.
PyObject* reduce(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 4) {
    PyErr_SetString(PyExc_TypeError, "np_fast_reduce(x, op, axis, keepdims) takes 4 positional arguments");
    return nullptr;
  }
  const long op = PyLong_AsLong(args[1]);
  if (op < 0 || op > 3) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "np_fast_reduce: op must be 0 (sum), 1 (mean), 2 (max) or 3 (min)");
    return nullptr;
  }
  int num = 0;
  int64_t size = 0;
  auto* p = operand(args[0], &num, &size);
  PyObject *axis_o = args[2], *keep_o = args[3];
  if (!p || (keep_o != Py_True && keep_o != Py_False && keep_o != g_novalue)) Py_RETURN_NONE;
  const bool keepdims = keep_o == Py_True;
  const int nd = p->nd;
  int code;  // -1: the last axis, 0: the first, 2: all
  if (axis_o == Py_None) {
    code = 2;
  } else {
    if (!PyLong_CheckExact(axis_o) || nd == 0) Py_RETURN_NONE;
    int overflow = 0;
    long long a = PyLong_AsLongLongAndOverflow(axis_o, &overflow);
    if (overflow || a < -nd || a >= nd) Py_RETURN_NONE;  // NumPy raises its AxisError
    if (a < 0) a += nd;
    if (a == nd - 1) code = -1;
    else if (a == 0) code = 0;
    else Py_RETURN_NONE;
  }
  const Limits& L = g_limits;
  if (size > L.reduce_small_max) {  // beyond the small-call win, only where the kernel itself wins
    if (code == 0) {
      // reduce_cols_max is in bytes: past the caches the column walk and NumPy's row streaming
      // both wait on memory, and NumPy's won (float64 1024x1024, 8 MB: 0.74-0.97x)
      const int64_t bytes = size * (num == npy::NPY_FLOAT_ ? 4 : 8);
      if (bytes > L.reduce_cols_max || p->dimensions[nd - 1] < L.reduce_cols_min_width) Py_RETURN_NONE;
    } else if (op < 2 || size > L.reduce_ext_rows_max) {
      Py_RETURN_NONE;
    }
  }
  py::ssize_t shape[64];
  int out_nd = 0;
  int64_t rows, n;
  if (code == -1) {
    n = p->dimensions[nd - 1];
    rows = size / n;
    for (int i = 0; i < nd - 1; ++i) shape[out_nd++] = p->dimensions[i];
    if (keepdims) shape[out_nd++] = 1;
  } else if (code == 0) {
    rows = p->dimensions[0];
    n = size / rows;
    if (keepdims) shape[out_nd++] = 1;
    for (int i = 1; i < nd; ++i) shape[out_nd++] = p->dimensions[i];
  } else {
    rows = 1;
    n = size;
    if (keepdims)
      for (int i = 0; i < nd; ++i) shape[out_nd++] = 1;
  }
  PyObject* out = new_array(num, out_nd, shape);
  if (!out) return nullptr;
  auto* q = py::detail::array_proxy(out);
  const auto o = static_cast<nn::ReduceOp>(op);
  // The routed sizes reduce on this thread (elementwise.cpp splits only from 4M elements per
  // thread, past every limit above), so its flags are the whole kernel's.
  fp_clear();
  if (num == npy::NPY_FLOAT_) {
    const float* x = reinterpret_cast<const float*>(p->data);
    float* y = reinterpret_cast<float*>(q->data);
    run(size, [&] { code == 0 ? nn::reduce_first(o, x, y, rows, n) : nn::reduce_last(o, x, y, rows, n); });
  } else {
    const double* x = reinterpret_cast<const double*>(p->data);
    double* y = reinterpret_cast<double*>(q->data);
    run(size, [&] { code == 0 ? nn::reduce_first(o, x, y, rows, n) : nn::reduce_last(o, x, y, rows, n); });
  }
  // sum/mean: an overflow (3e38 + 3e38) or an invalid inf - inf is NumPy's warning to give.
  // max/min compare, and NumPy's own max/min loops clear the flags a NaN operand raises: never.
  if (op < 2 && fp_raised()) {
    Py_DECREF(out);
    Py_RETURN_NONE;
  }
  if (out_nd) return out;
  // A reduction to a single value is a NumPy scalar (np.float32 / np.float64), as NumPy returns.
  PyObject* empty = PyTuple_New(0);
  PyObject* scalar = empty ? PyObject_GetItem(out, empty) : nullptr;
  Py_XDECREF(empty);
  Py_DECREF(out);
  return scalar;
}

// np_fast_ext(x1, x2, is_max): NumPy's maximum(x1, x2) (minimum unless is_max) when one operand
// is a fast operand of at least ext_scalar_min elements (not 0-d) and the other a Python int
// (|s| <= 2**53: exact in a double) or float (|s| < 1e38: no float32 overflow), else None.
PyObject* ext_scalar(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "np_fast_ext(x1, x2, is_max) takes 3 positional arguments");
    return nullptr;
  }
  int num = 0;
  int64_t size = 0;
  bool scalar_first = false;
  auto* p = operand(args[0], &num, &size);
  PyObject* so = args[1];
  if (!p) {
    p = operand(args[1], &num, &size);
    so = args[0];
    scalar_first = true;
  }
  if (!p || p->nd == 0 || size < g_limits.ext_scalar_min) Py_RETURN_NONE;
  double s;
  if (PyFloat_CheckExact(so)) {
    s = PyFloat_AS_DOUBLE(so);
    if (!(s > -1e38 && s < 1e38)) Py_RETURN_NONE;
  } else if (PyLong_CheckExact(so)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(so, &overflow);
    constexpr long long kExact = 1LL << 53;
    if (overflow || v > kExact || v < -kExact) Py_RETURN_NONE;
    s = static_cast<double>(v);
  } else {
    Py_RETURN_NONE;
  }
  const bool is_max = args[2] == Py_True;
  PyObject* out = new_array(num, p->nd, p->dimensions);
  if (!out) return nullptr;
  auto* q = py::detail::array_proxy(out);
  if (num == npy::NPY_FLOAT_) {
    const float* x = reinterpret_cast<const float*>(p->data);
    float* y = reinterpret_cast<float*>(q->data);
    const float st = static_cast<float>(s);  // the cast NumPy applies to a weak scalar
    run(size, [&] { nn::max_scalar(x, st, y, size, is_max, scalar_first); });
  } else {
    const double* x = reinterpret_cast<const double*>(p->data);
    double* y = reinterpret_cast<double*>(q->data);
    run(size, [&] { nn::max_scalar(x, s, y, size, is_max, scalar_first); });
  }
  return out;
}

// o as an exact, aligned, native-order 2-D float32 ndarray whose strides are whole floats; else nullptr.
py::detail::PyArray_Proxy* gemm_operand(PyObject* o, int64_t st[2]) {
  const npy& api = npy::get();
  if (Py_TYPE(o) != api.PyArray_Type_) return nullptr;
  auto* p = py::detail::array_proxy(o);
  if (p->nd != 2 || !(p->flags & npy::NPY_ARRAY_ALIGNED_)) return nullptr;
  auto* d = py::detail::array_descriptor_proxy(p->descr);
  if (d->type_num != npy::NPY_FLOAT_ || d->byteorder == '>') return nullptr;
  for (int i = 0; i < 2; ++i) {
    const py::ssize_t bytes = p->strides[i];
    if (bytes % static_cast<py::ssize_t>(sizeof(float)) != 0) return nullptr;
    st[i] = p->dimensions[i] <= 1 ? 0 : bytes / static_cast<py::ssize_t>(sizeof(float));  // never stepped along
  }
  return p;
}

// _dispatch.py's rules (documented and measured there) for an (m, k) @ (k, n) float32 product
// with element strides rs/cs: whether the native SGEMM beats np.dot (OpenBLAS).
bool gemm_native_wins(int64_t m, int64_t k, int64_t n, int64_t rs_a, int64_t cs_a, int64_t rs_b) {
  const GemmLimits& L = g_gemm;
  const int64_t macs = m * k * n;
  if (macs < L.min_macs) {
    // OpenBLAS's small path (one thread at any count), except dX = dY @ W.T (a column-major B,
    // k < min_k) and, with threads, the products the native SGEMM splits across them.
    if (k < L.min_k)
      return macs <= L.nt_max_macs && m >= L.nt_min_side && n >= L.nt_min_side && rs_b == 1;
    return macs >= L.split_min_macs && n >= L.min_n && m >= L.min_side && (cs_a == 1 || rs_a == 1) &&
           num_threads() >= 2;
  }
  if (n < L.min_n || m < L.min_side || k < L.min_k) return false;
  if (cs_a != 1 && !(rs_a == 1 && n <= L.colmajor_max_n && k <= L.colmajor_max_k)) return false;
  return num_threads() <= L.max_threads;
}

// [lo, hi) byte range an array's elements span (any stride signs).
std::pair<const char*, const char*> byte_span(const py::detail::PyArray_Proxy* p) {
  const char* lo = p->data;
  const char* hi = p->data;
  for (int i = 0; i < p->nd; ++i) {
    if (p->dimensions[i] == 0) return {p->data, p->data};
    const py::ssize_t step = p->strides[i] * (p->dimensions[i] - 1);
    (step < 0 ? lo : hi) += step;
  }
  return {lo, hi + sizeof(float)};
}

bool overlaps(const py::detail::PyArray_Proxy* x, const py::detail::PyArray_Proxy* y) {
  const auto [xl, xh] = byte_span(x);
  const auto [yl, yh] = byte_span(y);
  return xl < yh && yl < xh && xl != xh && yl != yh;
}

// np_fast_dot(a, b, out): NumPy's dot/matmul of two 2-D float32 ndarrays on the native SGEMM
// when _dispatch's rules say it wins (into out when out is a usable, disjoint (m, n) float32
// array), else None: NumPy's call, which also reports every error.
PyObject* dot(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "np_fast_dot(a, b, out) takes 3 positional arguments");
    return nullptr;
  }
  int64_t sa[2], sb[2], sc[2];
  auto* pa = gemm_operand(args[0], sa);
  auto* pb = pa ? gemm_operand(args[1], sb) : nullptr;
  if (!pb) Py_RETURN_NONE;
  const int64_t m = pa->dimensions[0], k = pa->dimensions[1], n = pb->dimensions[1];
  if (pb->dimensions[0] != k || m == 0 || n == 0 || !gemm_native_wins(m, k, n, sa[0], sa[1], sb[0]))
    Py_RETURN_NONE;
  PyObject* out = args[2];
  if (out == Py_None) {
    const py::ssize_t dims[2] = {m, n};
    out = new_array(npy::NPY_FLOAT_, 2, dims);
    if (!out) return nullptr;
    sc[0] = n;
    sc[1] = 1;
  } else {
    auto* pc = gemm_operand(out, sc);
    if (!pc || pc->dimensions[0] != m || pc->dimensions[1] != n || !(pc->flags & npy::NPY_ARRAY_WRITEABLE_) ||
        overlaps(pc, pa) || overlaps(pc, pb))
      Py_RETURN_NONE;
    Py_INCREF(out);
  }
  const float* ap = reinterpret_cast<const float*>(pa->data);
  const float* bp = reinterpret_cast<const float*>(pb->data);
  float* cp = reinterpret_cast<float*>(py::detail::array_proxy(out)->data);
  auto product = [&] {
    sgemm(m, n, k, 1.f, ap, sa[0], sa[1], bp, sb[0], sb[1], 0.f, cp, sc[0], sc[1], nullptr, Act::Linear, 0.f);
  };
  fp_clear();
  // Releasing and retaking the GIL (~0.2 us) only past ~5 us of work, as _C.mm does.
  if (m * n * k <= 262144) {
    product();
  } else {
    py::gil_scoped_release release;
    product();
  }
  // NumPy's dot/matmul report the flags OpenBLAS raised (an inf times a 0: "invalid value
  // encountered in dot"; an overflow): when the native product raised one, NumPy recomputes.
  // A product the SGEMM may split (gemm.cpp: from kSingleThreadWork multiply-adds) also ran on
  // helpers whose flags are not visible here: a non-finite element then sends it to NumPy too
  // (the invalid and overflow cases; an underflow on a helper is not seen, which matters only
  // under np.errstate(under=...) -- no routed product splits with _dispatch's defaults).
  bool redo = fp_raised();
  if (!redo && m * n * k >= gemm::kSingleThreadWork && num_threads() > 1) {
    for (int64_t i = 0; i < m && !redo; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (!std::isfinite(cp[i * sc[0] + j * sc[1]])) {
          redo = true;
          break;
        }
  }
  if (redo) {  // a given out= holds the native values until NumPy's call overwrites all of them
    Py_DECREF(out);
    Py_RETURN_NONE;
  }
  return out;
}

bool gemm_route(py::handle a, py::handle b) {
  int64_t sa[2], sb[2];
  auto* pa = gemm_operand(a.ptr(), sa);
  auto* pb = pa ? gemm_operand(b.ptr(), sb) : nullptr;
  if (!pb || pb->dimensions[0] != pa->dimensions[1]) return false;
  return gemm_native_wins(pa->dimensions[0], pa->dimensions[1], pb->dimensions[1], sa[0], sa[1], sb[0]);
}

void set_gemm_limits(int64_t min_macs, int64_t min_side, int64_t min_n, int64_t min_k, int64_t colmajor_max_n,
                     int64_t colmajor_max_k, int64_t max_threads, int64_t nt_max_macs, int64_t nt_min_side,
                     int64_t split_min_macs) {
  g_gemm = GemmLimits{min_macs,    min_side,        min_n, min_k, colmajor_max_n, colmajor_max_k, max_threads,
                      nt_max_macs, nt_min_side, split_min_macs};
}

PyMethodDef kDotDef{"np_fast_dot", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&dot)), METH_FASTCALL,
                    "np_fast_dot(a, b, out) -> numpy.ndarray | None\n\npynn.ops' per-call entry for NumPy's dot/matmul of two 2-D float32 "
                    "ndarrays: the native SGEMM where np_gemm_route says it wins (into out when out is a usable "
                    "(m, n) float32 array disjoint from a and b), else None (NumPy's call)."};
PyMethodDef kReduceDef{"np_fast_reduce", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&reduce)),
                       METH_FASTCALL,
                       "np_fast_reduce(x, op, axis, keepdims) -> numpy.ndarray | numpy scalar | None\n\npynn.ops' per-call entry for NumPy's sum/mean/max/min "
                       "(op 0..3) of an exact C-contiguous float32/float64 ndarray over axis None, 0 or the last, "
                       "with np_reduce's kernels (NumPy's bits); None when the call is NumPy's to make "
                       "(other arguments, layouts or sizes: the limits of np_fast_limits)."};
PyMethodDef kExtDef{"np_fast_ext", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&ext_scalar)),
                    METH_FASTCALL,
                    "np_fast_ext(x1, x2, is_max) -> numpy.ndarray | None\n\npynn.ops' per-call entry for NumPy's maximum/minimum of an exact "
                    "C-contiguous float32/float64 ndarray and a Python int/float (either order), with np_max_scalar's "
                    "kernel; None when the call is NumPy's to make (smaller than the ext_scalar_min limit, other "
                    "operands)."};

}  // namespace fast
}  // namespace

void bind_nn(py::module_& m) {
  m.def("activation_names", &activation_names,
        "The native activations' Keras names, in the order of csrc/common/activation.h.");
  m.def("activation_from_output", &activation_from_output, py::arg("name"),
        "Whether activation `name`'s gradient is read off its output alone (fused backward, recurrences).");
  m.def("act_forward", &act_forward, py::arg("x"), py::arg("name"), py::arg("alpha") = 0.f,
        "y = act(x) elementwise; x C-contiguous float32 of any shape, alpha the activation's alpha.");
  m.def("act_backward", &act_backward, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("name"),
        py::arg("alpha") = 0.f, "dx = act'(x) * dy; y is the forward output. All C-contiguous float32 of one shape.");
  m.def("bias_add", &bias_add, py::arg("x"), py::arg("b"), "x (..., C) + b (C,).");
  m.def("bias_grad", &bias_grad, py::arg("dy"), "Sum of dy (..., C) over every axis but the last -> (C,).");
  m.def("act_bias_backward", &act_bias_backward, py::arg("y"), py::arg("dy"), py::arg("name"),
        "(dz, db): dz = act'(y) * dy read off the output y = act(z) (activation_from_output), db = sum of dz "
        "over every axis but the last; one pass.");
  m.def("softmax", &softmax, py::arg("x"), py::arg("log") = false,
        "softmax (or log_softmax) over the last axis of C-contiguous float32 x.");
  m.def("softmax_backward", &softmax_backward, py::arg("y"), py::arg("dy"), py::arg("log") = false,
        "Gradient of softmax (y = its output) or log_softmax (y = the log-probabilities), last axis.");
  m.def("attention", &attention_forward, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("scale"),
        py::arg("mask") = py::none(), py::arg("dropout") = py::none(), py::arg("need_weights") = true,
        "Fused multi-head attention: q (B, T, H, dk), k (B, S, H, dk), v (B, S, H, dv) float32 of any strides;\n"
        "mask None or bool (B, H, T, S) (False: score -> -1e9), dropout None or (B, H, T, S) multipliers.\n"
        "Returns (out (B, T, H, dv), weights = softmax(scale q k^T) (B, H, T, S), or None unless need_weights).");
  m.def("attention_backward", &attention_backward, py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("weights"), py::arg("scale"), py::arg("mask"), py::arg("dropout"), py::arg("dq"), py::arg("dk"),
        py::arg("dv"),
        "Gradients of attention for dout (B, T, H, dv), written into dq, dk, dv (writable float32 views,\n"
        "not overlapping any input).");
  m.def("matmul_act_backward", &matmul_act_backward, py::arg("g"), py::arg("w"), py::arg("y"), py::arg("activation"),
        "dz = act'(y) * (g @ w.T) and db = dz.sum(0) in one pass over row blocks (the same bits at any\n"
        "thread count): g (rows, n), w (k, n), y (rows, k) float32, activation read off its output y.\n"
        "Returns (dz (rows, k), db (k,)).");
  m.def("row_block_sums", &row_block_sums, py::arg("x"),
        "x.sum(0) for x (rows, C) float32: float partials over 64-row blocks added in double in block\n"
        "order, the same bits at any thread count.");
  m.def("softmax_xent_sparse", &softmax_xent_sparse, py::arg("logits"), py::arg("labels"),
        "Fused softmax cross-entropy, int64 labels (N,): logits (N, C) -> (loss (N,), dlogits (N, C)).");
  m.def("softmax_xent_dense", &softmax_xent_dense, py::arg("logits"), py::arg("targets"),
        "Fused softmax cross-entropy, probability targets (N, C): -> (loss (N,), dlogits (N, C)).");
  m.def("np_reduce", &np_reduce, py::arg("x"), py::arg("op"), py::arg("axis"), py::arg("keepdims") = false,
        "NumPy's sum/mean/max/min (op 0/1/2/3) of a C-contiguous float32/float64 x over its last axis (axis=-1), "
        "first axis (0) or all (2), with NumPy's order of additions (bit for bit; csrc/nn/elementwise.h).");
  m.def("np_max_scalar", &np_max_scalar, py::arg("x"), py::arg("s"), py::arg("is_max") = true,
        py::arg("scalar_first") = false, py::arg("out") = py::none(),
        "NumPy's maximum(x, s) (minimum when is_max is false; maximum(s, x) when scalar_first) of a C-contiguous "
        "float32/float64 x and a scalar cast to x's dtype; out: None, x, or a disjoint array like x.");
  m.def("np_fast_limits", &fast::set_limits, py::arg("reduce_small_max"), py::arg("reduce_cols_max"),
        py::arg("reduce_cols_min_width"), py::arg("reduce_ext_rows_max"), py::arg("ext_scalar_min"),
        "The routing limits of np_fast_reduce / np_fast_ext (pynn.ops._dispatch's, set once on import).");
  m.def("np_gemm_limits", &fast::set_gemm_limits, py::arg("min_macs"), py::arg("min_side"), py::arg("min_n"),
        py::arg("min_k"), py::arg("colmajor_max_n"), py::arg("colmajor_max_k"), py::arg("max_threads"),
        py::arg("nt_max_macs"), py::arg("nt_min_side"), py::arg("split_min_macs"),
        "The GEMM routing limits of np_fast_dot / np_gemm_route (pynn.ops._dispatch's, set once on import).");
  m.def("np_fast_novalue", &fast::set_novalue, py::arg("sentinel"),
        "The object np_fast_reduce reads as keepdims=False (numpy._NoValue, pynn.ops' default; set once on import).");
  m.def("np_gemm_route", &fast::gemm_route, py::arg("a"), py::arg("b"),
        "Whether np_fast_dot would run a @ b natively (2-D float32 ndarrays; _dispatch.py's rules).");
  for (PyMethodDef* def : {&fast::kReduceDef, &fast::kExtDef, &fast::kDotDef}) {
    PyObject* f = PyCFunction_NewEx(def, nullptr, m.ptr());
    if (!f) throw py::error_already_set();
    m.add_object(def->ml_name, py::reinterpret_steal<py::object>(f));
  }
}

}  // namespace pynn::bind
