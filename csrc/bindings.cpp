// The only file that knows pybind11. Each binding validates shapes, dtypes and
// contiguity *before* touching memory (kernels trust their arguments), then
// releases the GIL for the computation. Errors are ValueError/TypeError whose
// message names the op and the expected and actual shapes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/activation.h"
#include "common/runtime.h"
#include "conv/conv2d.h"
#include "conv/geometry.h"
#include "gemm/gemm.h"
#include "nn/activations.h"
#include "nn/bias.h"
#include "nn/softmax.h"
#include "nn/softmax_xent.h"
#include "norm/normalization.h"
#include "optim/optim.h"
#include "pool/pool.h"
#include "rnn/recurrent.h"
#include "rnn/weight_grad.h"
#include "seq/ctc.h"
#include "seq/embedding.h"

namespace py = pybind11;
using namespace pynn;

namespace {

// ---------------------------------------------------------------- validation
std::string shape_str(const py::array& a) {
  std::ostringstream os;
  os << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) os << (i ? ", " : "") << a.shape(i) << (a.ndim() == 1 ? "," : "");
  os << ")";
  return os.str();
}

// A float32 array, or TypeError naming the op and argument. No silent casts:
// the native backend computes in float32 only (DESIGN.md §2).
py::array f32(const char* op, const char* arg, const py::handle& h) {
  if (!py::isinstance<py::array>(h))
    throw py::type_error(std::string(op) + ": " + arg + " must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(h);
  // equal(), not is(): equal dtypes may be distinct objects (e.g. after a deepcopy).
  if (!a.dtype().equal(py::dtype::of<float>()))
    throw py::type_error(std::string(op) + ": " + arg + " must be float32, got " +
                         std::string(py::str(a.dtype())) + " with shape " + shape_str(a));
  return a;
}

// C-contiguous float32, or ValueError (the Python backend copies when it must).
py::array f32c(const char* op, const char* arg, const py::handle& h) {
  py::array a = f32(op, arg, h);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + arg + " must be C-contiguous, got strides for shape " + shape_str(a));
  return a;
}

void require_writeable(const char* op, const char* arg, const py::array& a) {
  if (!a.writeable()) throw py::value_error(std::string(op) + ": " + arg + " is read-only");
}

// ---------------------------------------------------------------- runtime
void bind_runtime(py::module_& m) {
  m.def("num_threads", &num_threads, "Threads the native kernels use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("cpu_has_avx2_fma", &cpu_has_avx2_fma);
  m.def("isa", [] { return std::string(isa_name(active_isa())); }, "ISA the kernels dispatch to.");
  m.def("set_isa", [](const std::string& name) {
    if (name == "generic") set_isa(Isa::Generic);
    else if (name == "avx2") set_isa(Isa::Avx2);
    else throw py::value_error("set_isa: expected 'generic' or 'avx2', got '" + name + "'");
  }, py::arg("name"));
#ifdef PYNN_OPENMP
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
}

// ---------------------------------------------------------------- gemm
// (csrc/gemm/) matmul with strides, alpha/beta, fused bias + activation epilogue.
// Element stride of dimension `dim` (numpy gives bytes). A dimension of extent
// <= 1 is never stepped along, so its stride is irrelevant and becomes 0.
int64_t elem_stride(const char* op, const char* arg, const py::array& x, py::ssize_t dim) {
  if (x.shape(dim) <= 1) return 0;
  const py::ssize_t s = x.strides(dim);
  if (s % static_cast<py::ssize_t>(sizeof(float)) != 0) {
    std::ostringstream os;
    os << op << ": " << arg << " with shape " << shape_str(x) << " has byte stride " << s
       << " in dimension " << dim << ", not a multiple of the float32 itemsize 4";
    throw py::value_error(os.str());
  }
  return static_cast<int64_t>(s / static_cast<py::ssize_t>(sizeof(float)));
}

py::array require_ndim(const char* op, const char* arg, const py::handle& h, int ndim) {
  py::array x = f32(op, arg, h);
  if (x.ndim() != ndim)
    throw py::value_error(std::string(op) + ": " + arg + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_str(x));
  return x;
}

Act act_arg(const char* op, const std::string& name) {
  Act act;
  if (!parse_act(name, &act))
    throw py::value_error(std::string(op) + ": unknown activation '" + name +
                          "' (expected linear, relu, leaky_relu, sigmoid, tanh, gelu or elu)");
  return act;
}

// bias: None, or n float32 values (any stride); returned contiguous (a copy only
// when the view is strided). `keep` owns the memory while the kernel runs.
const float* bias_arg(const char* op, const py::object& h, int64_t n, py::array* keep) {
  if (h.is_none()) return nullptr;
  py::array bias = f32(op, "bias", h);
  if (bias.ndim() != 1 || bias.shape(0) != n)
    throw py::value_error(std::string(op) + ": bias must have shape (" + std::to_string(n) +
                          ",) to match the output columns, got " + shape_str(bias));
  if (n > 1 && bias.strides(0) != static_cast<py::ssize_t>(sizeof(float)))
    bias = py::array_t<float, py::array::c_style>(bias);  // contiguous copy
  *keep = bias;
  return static_cast<const float*>(bias.data());
}

void bind_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](py::handle a_h, py::handle b_h, py::object c_h, float alpha, float beta, py::object bias_h,
         const std::string& activation, float act_alpha) -> py::array {
        const char* op = "gemm";
        py::array a = require_ndim(op, "a", a_h, 2);
        py::array b = require_ndim(op, "b", b_h, 2);
        const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
        if (b.shape(0) != K) {
          std::ostringstream os;
          os << op << ": a has shape " << shape_str(a) << " but b has shape " << shape_str(b)
             << ": inner dimensions " << K << " and " << b.shape(0) << " differ";
          throw py::value_error(os.str());
        }
        const int64_t rs_a = elem_stride(op, "a", a, 0), cs_a = elem_stride(op, "a", a, 1);
        const int64_t rs_b = elem_stride(op, "b", b, 0), cs_b = elem_stride(op, "b", b, 1);
        py::array c;
        if (c_h.is_none()) {
          c = py::array_t<float>({M, N});
          beta = 0.f;  // fresh output: nothing to accumulate into
        } else {
          c = require_ndim(op, "c", c_h, 2);
          if (c.shape(0) != M || c.shape(1) != N) {
            std::ostringstream os;
            os << op << ": c must have shape (" << M << ", " << N << ") for a " << shape_str(a)
               << " and b " << shape_str(b) << ", got " << shape_str(c);
            throw py::value_error(os.str());
          }
          require_writeable(op, "c", c);
        }
        const int64_t rs_c = elem_stride(op, "c", c, 0), cs_c = elem_stride(op, "c", c, 1);
        py::array bias_keep;
        const float* bias = bias_arg(op, bias_h, N, &bias_keep);
        const Act act = act_arg(op, activation);
        const float* pa = static_cast<const float*>(a.data());
        const float* pb = static_cast<const float*>(b.data());
        float* pc = static_cast<float*>(c.mutable_data());
        {
          py::gil_scoped_release nogil;
          sgemm(M, N, K, alpha, pa, rs_a, cs_a, pb, rs_b, cs_b, beta, pc, rs_c, cs_c, bias, act, act_alpha);
        }
        return c;
      },
      py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("alpha") = 1.0f,
      py::arg("beta") = 0.0f, py::arg("bias") = py::none(), py::arg("activation") = "linear",
      py::arg("act_alpha") = 0.0f,
      "c = act(alpha * a @ b + beta * c + bias) for 2-D float32 arrays of any strides.\n"
      "a (m, k), b (k, n), c (m, n) or None (allocated; beta then ignored), bias (n,) or None.\n"
      "Returns c.");

  m.def(
      "bmm",
      [](py::handle a_h, py::handle b_h, py::object bias_h, const std::string& activation,
         float act_alpha) -> py::array {
        const char* op = "bmm";
        py::array a = require_ndim(op, "a", a_h, 3);
        py::array b = require_ndim(op, "b", b_h, 3);
        const int64_t Ba = a.shape(0), M = a.shape(1), K = a.shape(2);
        const int64_t Bb = b.shape(0), N = b.shape(2);
        if (b.shape(1) != K || (Ba != Bb && Ba != 1 && Bb != 1)) {
          std::ostringstream os;
          os << op << ": a has shape " << shape_str(a) << " but b has shape " << shape_str(b) << ": ";
          if (b.shape(1) != K) os << "inner dimensions " << K << " and " << b.shape(1) << " differ";
          else os << "batch dimensions " << Ba << " and " << Bb << " differ";
          throw py::value_error(os.str());
        }
        const int64_t B = std::max(Ba, Bb);
        // A batch of one broadcasts (stride 0), like a stride-0 numpy view does.
        const int64_t bs_a = Ba == 1 ? 0 : elem_stride(op, "a", a, 0);
        const int64_t bs_b = Bb == 1 ? 0 : elem_stride(op, "b", b, 0);
        const int64_t rs_a = elem_stride(op, "a", a, 1), cs_a = elem_stride(op, "a", a, 2);
        const int64_t rs_b = elem_stride(op, "b", b, 1), cs_b = elem_stride(op, "b", b, 2);
        py::array_t<float> c({B, M, N});
        py::array bias_keep;
        const float* bias = bias_arg(op, bias_h, N, &bias_keep);
        const Act act = act_arg(op, activation);
        const float* pa = static_cast<const float*>(a.data());
        const float* pb = static_cast<const float*>(b.data());
        float* pc = c.mutable_data();
        {
          py::gil_scoped_release nogil;
          sgemm_batched(B, M, N, K, 1.f, pa, bs_a, rs_a, cs_a, pb, bs_b, rs_b, cs_b,
                        0.f, pc, M * N, N, 1, bias, act, act_alpha);
        }
        return std::move(c);
      },
      py::arg("a"), py::arg("b"), py::arg("bias") = py::none(), py::arg("activation") = "linear",
      py::arg("act_alpha") = 0.0f,
      "Batched act(a @ b + bias): a (B, m, k), b (B, k, n) float32 of any strides, a batch\n"
      "of 1 (or batch stride 0) broadcasts. Returns a new C-contiguous (B, m, n) array.");
}

// ---------------------------------------------------------------- nn
// (csrc/nn/) activations forward/backward, bias add, softmax, softmax + cross-entropy.
void bind_nn(py::module_& m) {
  // A new float32 array of a's shape.
  auto like = [](const py::array& a) {
    return py::array_t<float>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  };
  auto fptr = [](const py::array& a) { return static_cast<const float*>(a.data()); };
  auto mptr = [](py::array& a) { return static_cast<float*>(a.mutable_data()); };
  auto same_shape = [](const char* op, const char* an, const py::array& a, const char* bn,
                       const py::array& b) {
    bool ok = a.ndim() == b.ndim();
    for (py::ssize_t i = 0; ok && i < a.ndim(); ++i) ok = a.shape(i) == b.shape(i);
    if (!ok)
      throw py::value_error(std::string(op) + ": " + bn + " must have the shape of " + an + " " +
                            shape_str(a) + ", got " + shape_str(b));
  };
  auto act_of = [](const char* op, const std::string& name) {
    Act a;
    if (!parse_act(name, &a))
      throw py::value_error(std::string(op) + ": unknown activation '" + name +
                            "' (expected linear, relu, leaky_relu, sigmoid, tanh, gelu, elu)");
    return a;
  };
  // (rows, C) view of a contiguous array whose last axis is C; ndim >= 1.
  auto rows_of = [](const char* op, const char* arg, const py::array& a) {
    if (a.ndim() < 1)
      throw py::value_error(std::string(op) + ": " + arg + " must have at least 1 dimension, got shape ()");
    const int64_t C = a.shape(a.ndim() - 1);
    return std::make_pair(C > 0 ? static_cast<int64_t>(a.size()) / C : int64_t{0}, C);
  };

  m.def("act_forward", [=](py::handle xh, const std::string& name, float alpha) {
    const char* op = "act_forward";
    py::array x = f32c(op, "x", xh);
    const Act a = act_of(op, name);
    py::array y = like(x);
    const float* xp = fptr(x);
    float* yp = mptr(y);
    const int64_t n = x.size();
    {
      py::gil_scoped_release nogil;
      nn::act_forward(a, xp, yp, n, alpha);
    }
    return y;
  }, py::arg("x"), py::arg("name"), py::arg("alpha") = 0.f,
     "y = act(x) elementwise; x C-contiguous float32 of any shape.");

  m.def("act_backward", [=](py::handle xh, py::handle yh, py::handle dyh, const std::string& name,
                            float alpha) {
    const char* op = "act_backward";
    py::array x = f32c(op, "x", xh), y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
    same_shape(op, "x", x, "y", y);
    same_shape(op, "x", x, "dy", dy);
    const Act a = act_of(op, name);
    py::array dx = like(x);
    const float *xp = fptr(x), *yp = fptr(y), *gp = fptr(dy);
    float* dp = mptr(dx);
    const int64_t n = x.size();
    {
      py::gil_scoped_release nogil;
      nn::act_backward(a, xp, yp, gp, dp, n, alpha);
    }
    return dx;
  }, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("name"), py::arg("alpha") = 0.f,
     "dx = act'(x) * dy; y is the forward output. All C-contiguous float32 of one shape.");

  m.def("bias_add", [=](py::handle xh, py::handle bh) {
    const char* op = "bias_add";
    py::array x = f32c(op, "x", xh), b = f32c(op, "b", bh);
    auto [rows, C] = rows_of(op, "x", x);
    if (b.ndim() != 1 || b.shape(0) != C)
      throw py::value_error(std::string(op) + ": b must have shape (" + std::to_string(C) +
                            ",) for x of shape " + shape_str(x) + ", got " + shape_str(b));
    py::array y = like(x);
    const float *xp = fptr(x), *bp = fptr(b);
    float* yp = mptr(y);
    {
      py::gil_scoped_release nogil;
      nn::bias_add(xp, bp, yp, rows, C);
    }
    return y;
  }, py::arg("x"), py::arg("b"), "x (..., C) + b (C,).");

  m.def("bias_grad", [=](py::handle dyh) {
    const char* op = "bias_grad";
    py::array dy = f32c(op, "dy", dyh);
    auto [rows, C] = rows_of(op, "dy", dy);
    py::array_t<float> db(std::vector<py::ssize_t>{static_cast<py::ssize_t>(C)});
    const float* gp = fptr(dy);
    float* dp = db.mutable_data();
    {
      py::gil_scoped_release nogil;
      nn::bias_grad(gp, dp, rows, C);
    }
    return db;
  }, py::arg("dy"), "Sum of dy (..., C) over every axis but the last -> (C,).");

  m.def("act_bias_backward", [=](py::handle yh, py::handle dyh, const std::string& name) {
    const char* op = "act_bias_backward";
    py::array y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
    same_shape(op, "y", y, "dy", dy);
    const Act a = act_of(op, name);
    if (a != Act::Linear && a != Act::Relu && a != Act::Sigmoid && a != Act::Tanh)
      throw py::value_error(std::string(op) + ": activation '" + name +
                            "' cannot be differentiated from its output; expected linear, relu, sigmoid or tanh");
    auto [rows, C] = rows_of(op, "y", y);
    py::array dz = like(y);
    py::array_t<float> db(std::vector<py::ssize_t>{static_cast<py::ssize_t>(C)});
    const float *yp = fptr(y), *gp = fptr(dy);
    float *zp = mptr(dz), *bp = db.mutable_data();
    {
      py::gil_scoped_release nogil;
      nn::act_bias_backward(a, yp, gp, zp, bp, rows, C);
    }
    return py::make_tuple(dz, db);
  }, py::arg("y"), py::arg("dy"), py::arg("name"),
     "(dz, db) with dz = act'(y) * dy read off the output y = act(z) (linear/relu/sigmoid/tanh) and "
     "db = sum of dz over every axis but the last; one pass.");

  m.def("softmax", [=](py::handle xh, bool log) {
    const char* op = log ? "log_softmax" : "softmax";
    py::array x = f32c(op, "x", xh);
    auto [rows, C] = rows_of(op, "x", x);
    py::array y = like(x);
    const float* xp = fptr(x);
    float* yp = mptr(y);
    {
      py::gil_scoped_release nogil;
      nn::softmax_rows(xp, yp, rows, C, log);
    }
    return y;
  }, py::arg("x"), py::arg("log") = false,
     "softmax (or log_softmax) over the last axis of C-contiguous float32 x.");

  m.def("softmax_backward", [=](py::handle yh, py::handle dyh, bool log) {
    const char* op = log ? "log_softmax_grad" : "softmax_grad";
    py::array y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
    same_shape(op, "y", y, "dy", dy);
    auto [rows, C] = rows_of(op, "y", y);
    py::array dx = like(y);
    const float *yp = fptr(y), *gp = fptr(dy);
    float* dp = mptr(dx);
    {
      py::gil_scoped_release nogil;
      nn::softmax_backward_rows(yp, gp, dp, rows, C, log);
    }
    return dx;
  }, py::arg("y"), py::arg("dy"), py::arg("log") = false,
     "Gradient of softmax (y = its output) or log_softmax (y = the log-probabilities), last axis.");

  m.def("softmax_xent_sparse", [=](py::handle xh, py::handle lh) {
    const char* op = "softmax_cross_entropy";
    py::array x = f32c(op, "logits", xh);
    if (x.ndim() != 2)
      throw py::value_error(std::string(op) + ": logits must be 2-D (N, C), got " + shape_str(x));
    if (!py::isinstance<py::array>(lh))
      throw py::type_error(std::string(op) + ": labels must be a numpy.ndarray");
    py::array lab = py::reinterpret_borrow<py::array>(lh);
    if (!lab.dtype().is(py::dtype::of<int64_t>()))
      throw py::type_error(std::string(op) + ": labels must be int64, got " +
                           std::string(py::str(lab.dtype())));
    if (!(lab.flags() & py::array::c_style))
      throw py::value_error(std::string(op) + ": labels must be C-contiguous");
    const int64_t N = x.shape(0), C = x.shape(1);
    if (lab.ndim() != 1 || lab.shape(0) != N)
      throw py::value_error(std::string(op) + ": labels must have shape (" + std::to_string(N) +
                            ",) for logits of shape " + shape_str(x) + ", got " + shape_str(lab));
    const int64_t* lp = static_cast<const int64_t*>(lab.data());
    for (int64_t i = 0; i < N; ++i)
      if (lp[i] < 0 || lp[i] >= C)
        throw py::value_error(std::string(op) + ": label " + std::to_string(lp[i]) + " at index " +
                              std::to_string(i) + " is out of range [0, " + std::to_string(C) +
                              ") for " + std::to_string(C) + " classes");
    py::array_t<float> loss(std::vector<py::ssize_t>{static_cast<py::ssize_t>(N)});
    py::array d = like(x);
    const float* xp = fptr(x);
    float *lossp = loss.mutable_data(), *dp = mptr(d);
    {
      py::gil_scoped_release nogil;
      nn::softmax_xent_sparse(xp, lp, lossp, dp, N, C);
    }
    return py::make_tuple(loss, d);
  }, py::arg("logits"), py::arg("labels"),
     "Fused softmax cross-entropy, integer labels: logits (N, C) float32, labels (N,) int64 "
     "-> (loss (N,), dlogits (N, C)).");

  m.def("softmax_xent_dense", [=](py::handle xh, py::handle th) {
    const char* op = "softmax_cross_entropy";
    py::array x = f32c(op, "logits", xh), t = f32c(op, "targets", th);
    if (x.ndim() != 2)
      throw py::value_error(std::string(op) + ": logits must be 2-D (N, C), got " + shape_str(x));
    same_shape(op, "logits", x, "targets", t);
    const int64_t N = x.shape(0), C = x.shape(1);
    py::array_t<float> loss(std::vector<py::ssize_t>{static_cast<py::ssize_t>(N)});
    py::array d = like(x);
    const float *xp = fptr(x), *tp = fptr(t);
    float *lossp = loss.mutable_data(), *dp = mptr(d);
    {
      py::gil_scoped_release nogil;
      nn::softmax_xent_dense(xp, tp, lossp, dp, N, C);
    }
    return py::make_tuple(loss, d);
  }, py::arg("logits"), py::arg("targets"),
     "Fused softmax cross-entropy, probability targets: logits and targets (N, C) float32 "
     "-> (loss (N,), dlogits (N, C)).");
}

// ---------------------------------------------------------------- conv
// (csrc/conv/, csrc/pool/) NHWC convolution forward/backward, pooling.
void bind_conv(py::module_& m) {
  using Pair = std::array<int64_t, 2>;
  using Shape4 = std::array<int64_t, 4>;
  auto shape4 = [](const Shape4& s) {
    std::ostringstream os;
    os << "(" << s[0] << ", " << s[1] << ", " << s[2] << ", " << s[3] << ")";
    return os.str();
  };
  auto require_ndim = [](const char* op, const char* arg, const py::array& a, int nd, const char* layout) {
    if (a.ndim() != nd)
      throw py::value_error(std::string(op) + ": " + arg + " must be " + layout + ", got shape " + shape_str(a));
  };
  auto require_shape = [&](const char* op, const char* arg, const py::array& a, const std::vector<int64_t>& want) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
    for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(i) == want[i];
    if (!ok) {
      std::ostringstream os;
      os << "(";
      for (size_t i = 0; i < want.size(); ++i) os << (i ? ", " : "") << want[i] << (want.size() == 1 ? "," : "");
      os << ")";
      throw py::value_error(std::string(op) + ": " + arg + " must have shape " + os.str() + ", got " + shape_str(a));
    }
  };
  auto nonneg = [&](const char* op, const Shape4& s) {
    for (int64_t d : s)
      if (d < 0) throw py::value_error(std::string(op) + ": negative dimension in shape " + shape4(s));
  };
  // Geometry of a conv from x's and w's shapes (validates C_in, window fit, padding).
  auto conv_geom = [&](const char* op, const Shape4& xs, const Shape4& ws, const Pair& s, const std::string& padding,
                       const Pair& d) {
    nonneg(op, xs);
    nonneg(op, ws);
    const std::string shapes = "input shape " + shape4(xs) + ", kernel shape " + shape4(ws);
    if (xs[3] != ws[2])
      throw py::value_error(std::string(op) + ": input has " + std::to_string(xs[3]) +
                            " channels but the kernel (kh, kw, C_in, C_out) expects " + std::to_string(ws[2]) + "; " +
                            shapes);
    WindowGeom g;
    g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.c = xs[3];
    g.kh = ws[0]; g.kw = ws[1]; g.oc = ws[3];
    g.sh = s[0]; g.sw = s[1]; g.dh = d[0]; g.dw = d[1];
    window_geometry(op, padding, shapes, g);
    return g;
  };
  auto pool_geom = [&](const char* op, const Shape4& xs, const Pair& k, const Pair& s, const std::string& padding) {
    nonneg(op, xs);
    WindowGeom g;
    g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.c = g.oc = xs[3];
    g.kh = k[0]; g.kw = k[1]; g.sh = s[0]; g.sw = s[1];
    window_geometry(op, padding, "input shape " + shape4(xs) + ", pool_size (" + std::to_string(k[0]) + ", " +
                                     std::to_string(k[1]) + ")", g);
    return g;
  };
  auto dims4 = [](const py::array& a) { return Shape4{a.shape(0), a.shape(1), a.shape(2), a.shape(3)}; };
  auto out4 = [](int64_t a, int64_t b, int64_t c, int64_t d) { return py::array_t<float>({a, b, c, d}); };
  auto fptr = [](py::array& a) { return static_cast<float*>(a.mutable_data()); };
  auto cptr = [](const py::array& a) { return static_cast<const float*>(a.data()); };

  m.def("conv2d", [=](const py::handle& xh, const py::handle& wh, const py::handle& bh, const Pair& strides,
                      const std::string& padding, const Pair& dilation, const py::handle& acth) {
    const char* op = "conv2d";
    py::array x = f32c(op, "x", xh), w = f32c(op, "w", wh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    require_ndim(op, "w", w, 4, "4-D (kh, kw, C_in, C_out)");
    WindowGeom g = conv_geom(op, dims4(x), dims4(w), strides, padding, dilation);
    py::array b;
    if (!bh.is_none()) {
      b = f32c(op, "b", bh);
      require_shape(op, "b", b, {g.oc});
    }
    Act act = Act::Linear;
    if (!acth.is_none()) {
      const std::string name = py::cast<std::string>(acth);
      if (!parse_act(name, &act) || (act != Act::Linear && act != Act::Relu && act != Act::Sigmoid && act != Act::Tanh))
        throw py::value_error("conv2d: activation '" + name + "' cannot be fused; use linear/relu/sigmoid/tanh");
    }
    py::array y = out4(g.n, g.oh, g.ow, g.oc);
    const float* bp = bh.is_none() ? nullptr : cptr(b);
    {
      py::gil_scoped_release nogil;
      conv2d_forward(g, cptr(x), cptr(w), bp, fptr(y), act, 0.f);
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b") = py::none(), py::arg("strides") = Pair{1, 1},
     py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1}, py::arg("activation") = py::none(),
     "NHWC conv: x (N,H,W,C), w (kh,kw,C,OC), b (OC,) -> act(conv + b) (N,OH,OW,OC). Implicit GEMM "
     "(AVX2), else im2col blocks + sgemm; 1x1 stride 1: one sgemm.");

  m.def("conv2d_backward_input", [=](const py::handle& dyh, const py::handle& wh, const Shape4& xs,
                                     const Pair& strides, const std::string& padding, const Pair& dilation) {
    const char* op = "conv2d_backward_input";
    py::array dy = f32c(op, "dy", dyh), w = f32c(op, "w", wh);
    require_ndim(op, "w", w, 4, "4-D (kh, kw, C_in, C_out)");
    WindowGeom g = conv_geom(op, xs, dims4(w), strides, padding, dilation);
    require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.oc});
    py::array dx = out4(g.n, g.h, g.w, g.c);
    {
      py::gil_scoped_release nogil;
      conv2d_backward_input(g, cptr(dy), cptr(w), fptr(dx));
    }
    return dx;
  }, py::arg("dy"), py::arg("w"), py::arg("x_shape"), py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid",
     py::arg("dilation") = Pair{1, 1}, "dx (x_shape) of conv2d: col2im(dY · Wᵀ).");

  m.def("conv2d_backward_kernel", [=](const py::handle& xh, const py::handle& dyh, const Shape4& ws,
                                      const Pair& strides, const std::string& padding, const Pair& dilation) {
    const char* op = "conv2d_backward_kernel";
    py::array x = f32c(op, "x", xh), dy = f32c(op, "dy", dyh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    WindowGeom g = conv_geom(op, dims4(x), ws, strides, padding, dilation);
    require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.oc});
    py::array dw = out4(ws[0], ws[1], ws[2], ws[3]);
    {
      py::gil_scoped_release nogil;
      conv2d_backward_kernel(g, cptr(x), cptr(dy), fptr(dw));
    }
    return dw;
  }, py::arg("x"), py::arg("dy"), py::arg("w_shape"), py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid",
     py::arg("dilation") = Pair{1, 1}, "dw (kh,kw,C,OC) of conv2d: Σ im2col(x)ᵀ · dY over pixel blocks.");

  m.def("conv2d_backward_bias", [=](const py::handle& dyh) {
    const char* op = "conv2d_backward_bias";
    py::array dy = f32c(op, "dy", dyh);
    require_ndim(op, "dy", dy, 4, "4-D NHWC (N, OH, OW, C_out)");
    const int64_t oc = dy.shape(3), rows = dy.shape(0) * dy.shape(1) * dy.shape(2);
    py::array db = py::array_t<float>({oc});
    {
      py::gil_scoped_release nogil;
      conv2d_backward_bias(cptr(dy), rows, oc, fptr(db));
    }
    return db;
  }, py::arg("dy"), "db (C_out,) = Σ dy over batch and space.");

  m.def("conv_block_rows", &conv_block_rows, py::arg("patch"),
        "Rows of the per-thread im2col scratch block for a patch of kh·kw·C floats.");
  m.attr("conv_col_block_bytes") = kColBlockBytes;

  // ---- pooling
  m.def("max_pool2d", [=](const py::handle& xh, const Pair& k, const Pair& s, const std::string& padding) {
    const char* op = "max_pool2d";
    py::array x = f32c(op, "x", xh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    WindowGeom g = pool_geom(op, dims4(x), k, s, padding);
    py::array y = out4(g.n, g.oh, g.ow, g.c);
    {
      py::gil_scoped_release nogil;
      max_pool2d_forward(g, cptr(x), fptr(y));
    }
    return y;
  }, py::arg("x"), py::arg("pool_size"), py::arg("strides"), py::arg("padding") = "valid");

  m.def("max_pool2d_backward", [=](const py::handle& xh, const py::handle& yh, const py::handle& dyh, const Pair& k,
                                   const Pair& s, const std::string& padding) {
    const char* op = "max_pool2d_backward";
    py::array x = f32c(op, "x", xh), y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    WindowGeom g = pool_geom(op, dims4(x), k, s, padding);
    require_shape(op, "y", y, {g.n, g.oh, g.ow, g.c});
    require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.c});
    py::array dx = out4(g.n, g.h, g.w, g.c);
    {
      py::gil_scoped_release nogil;
      max_pool2d_backward(g, cptr(x), cptr(y), cptr(dy), fptr(dx));
    }
    return dx;
  }, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("pool_size"), py::arg("strides"), py::arg("padding") = "valid");

  m.def("avg_pool2d", [=](const py::handle& xh, const Pair& k, const Pair& s, const std::string& padding) {
    const char* op = "avg_pool2d";
    py::array x = f32c(op, "x", xh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    WindowGeom g = pool_geom(op, dims4(x), k, s, padding);
    py::array y = out4(g.n, g.oh, g.ow, g.c);
    {
      py::gil_scoped_release nogil;
      avg_pool2d_forward(g, cptr(x), fptr(y));
    }
    return y;
  }, py::arg("x"), py::arg("pool_size"), py::arg("strides"), py::arg("padding") = "valid");

  m.def("avg_pool2d_backward", [=](const py::handle& dyh, const Shape4& xs, const Pair& k, const Pair& s,
                                   const std::string& padding) {
    const char* op = "avg_pool2d_backward";
    py::array dy = f32c(op, "dy", dyh);
    WindowGeom g = pool_geom(op, xs, k, s, padding);
    require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.c});
    py::array dx = out4(g.n, g.h, g.w, g.c);
    {
      py::gil_scoped_release nogil;
      avg_pool2d_backward(g, cptr(dy), fptr(dx));
    }
    return dx;
  }, py::arg("dy"), py::arg("x_shape"), py::arg("pool_size"), py::arg("strides"), py::arg("padding") = "valid");

  m.def("global_avg_pool2d", [=](const py::handle& xh) {
    const char* op = "global_avg_pool2d";
    py::array x = f32c(op, "x", xh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
    py::array y = py::array_t<float>({n, c});
    {
      py::gil_scoped_release nogil;
      global_avg_pool2d_forward(n, hw, c, cptr(x), fptr(y));
    }
    return y;
  }, py::arg("x"));

  m.def("global_avg_pool2d_backward", [=](const py::handle& dyh, const Shape4& xs) {
    const char* op = "global_avg_pool2d_backward";
    py::array dy = f32c(op, "dy", dyh);
    nonneg(op, xs);
    require_shape(op, "dy", dy, {xs[0], xs[3]});
    py::array dx = out4(xs[0], xs[1], xs[2], xs[3]);
    {
      py::gil_scoped_release nogil;
      global_avg_pool2d_backward(xs[0], xs[1] * xs[2], xs[3], cptr(dy), fptr(dx));
    }
    return dx;
  }, py::arg("dy"), py::arg("x_shape"));

  m.def("global_max_pool2d", [=](const py::handle& xh) {
    const char* op = "global_max_pool2d";
    py::array x = f32c(op, "x", xh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
    if (hw == 0) throw py::value_error("global_max_pool2d: empty spatial extent, input shape " + shape_str(x));
    py::array y = py::array_t<float>({n, c});
    {
      py::gil_scoped_release nogil;
      global_max_pool2d_forward(n, hw, c, cptr(x), fptr(y));
    }
    return y;
  }, py::arg("x"));

  m.def("global_max_pool2d_backward", [=](const py::handle& xh, const py::handle& yh, const py::handle& dyh) {
    const char* op = "global_max_pool2d_backward";
    py::array x = f32c(op, "x", xh), y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
    require_ndim(op, "x", x, 4, "4-D NHWC (N, H, W, C)");
    const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
    require_shape(op, "y", y, {n, c});
    require_shape(op, "dy", dy, {n, c});
    py::array dx = out4(x.shape(0), x.shape(1), x.shape(2), c);
    {
      py::gil_scoped_release nogil;
      global_max_pool2d_backward(n, hw, c, cptr(x), cptr(y), cptr(dy), fptr(dx));
    }
    return dx;
  }, py::arg("x"), py::arg("y"), py::arg("dy"));
}

// ---------------------------------------------------------------- optim
// (csrc/optim/) fused optimizer update steps, multi-tensor.
void bind_optim(py::module_& m) {
  struct OptimSlot {
    const char* name;
    py::handle seq;
    bool used;
  };
  struct V {
    // Every list must have one entry per parameter (an unused state list may be
    // empty); every array float32, C-contiguous, of the parameter's shape, and
    // writeable unless it is a gradient. All checked before any memory is touched.
    static py::sequence list(const char* op, const char* arg, py::handle h) {
      if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h))
        throw py::type_error(std::string(op) + ": " + arg + " must be a list or tuple of numpy.ndarray");
      return py::reinterpret_borrow<py::sequence>(h);
    }

    static optim::TensorList collect(const char* op, py::handle params_h, py::handle grads_h,
                                    std::initializer_list<OptimSlot> slots, std::vector<py::array>& keep) {
      py::sequence params = list(op, "params", params_h), grads = list(op, "grads", grads_h);
      const size_t n = params.size();
      if (grads.size() != n)
        throw py::value_error(std::string(op) + ": got " + std::to_string(n) + " params but " +
                              std::to_string(grads.size()) + " grads");
      for (const OptimSlot& s : slots) {
        if (!s.used) continue;
        py::sequence sq = list(op, s.name, s.seq);
        if (sq.size() != n)
          throw py::value_error(std::string(op) + ": got " + std::to_string(n) + " params but " +
                                std::to_string(sq.size()) + " " + s.name);
      }
      optim::TensorList t;
      t.p.reserve(n); t.g.reserve(n); t.n.reserve(n);
      std::vector<float*>* outs[3] = {&t.s0, &t.s1, &t.s2};
      auto same_shape = [](const py::array& a, const py::array& b) {
        if (a.ndim() != b.ndim()) return false;
        for (py::ssize_t d = 0; d < a.ndim(); ++d)
          if (a.shape(d) != b.shape(d)) return false;
        return true;
      };
      for (size_t i = 0; i < n; ++i) {
        const std::string idx = "[" + std::to_string(i) + "]";
        const std::string pn = "params" + idx, gn = "grads" + idx;
        py::array p = f32c(op, pn.c_str(), params[i]);
        require_writeable(op, pn.c_str(), p);
        py::array g = f32c(op, gn.c_str(), grads[i]);
        if (!same_shape(p, g))
          throw py::value_error(std::string(op) + ": " + gn + " has shape " + shape_str(g) + " but " + pn +
                                " has shape " + shape_str(p));
        t.p.push_back(static_cast<float*>(p.mutable_data()));
        t.g.push_back(static_cast<const float*>(g.data()));
        t.n.push_back(static_cast<int64_t>(p.size()));
        keep.push_back(p);
        keep.push_back(g);
        int k = 0;
        for (const OptimSlot& s : slots) {
          if (s.used) {
            const std::string sn = std::string(s.name) + idx;
            py::array a = f32c(op, sn.c_str(), py::reinterpret_borrow<py::sequence>(s.seq)[i]);
            require_writeable(op, sn.c_str(), a);
            if (!same_shape(p, a))
              throw py::value_error(std::string(op) + ": " + sn + " has shape " + shape_str(a) + " but " + pn +
                                    " has shape " + shape_str(p));
            outs[k]->push_back(static_cast<float*>(a.mutable_data()));
            keep.push_back(a);
          }
          ++k;
        }
      }
      return t;
    }

  };
  m.def("sgd_step", [](py::object params, py::object grads, py::object bufs, double lr, double momentum,
                       bool nesterov, double weight_decay) {
    std::vector<py::array> keep;
    auto t = V::collect("sgd_step", params, grads, {{"bufs", bufs, momentum != 0.0}}, keep);
    py::gil_scoped_release nogil;
    optim::sgd_step(t, lr, momentum, nesterov, weight_decay);
  }, py::arg("params"), py::arg("grads"), py::arg("bufs"), py::arg("lr"), py::arg("momentum"),
     py::arg("nesterov"), py::arg("weight_decay"),
     "Multi-tensor SGD (torch formulation), in place: buf = mu*buf + g; p -= lr*(nesterov ? g + mu*buf : buf).");

  m.def("adam_step", [](py::object params, py::object grads, py::object mm, py::object v, py::object vmax,
                        double lr, double beta_1, double beta_2, double epsilon, int64_t step,
                        double weight_decay, bool decoupled, bool amsgrad) {
    if (step < 1) throw py::value_error("adam_step: step must be >= 1, got " + std::to_string(step));
    std::vector<py::array> keep;
    auto t = V::collect("adam_step", params, grads,
                           {{"m", mm, true}, {"v", v, true}, {"vmax", vmax, amsgrad}}, keep);
    py::gil_scoped_release nogil;
    optim::adam_step(t, lr, beta_1, beta_2, epsilon, step, weight_decay, decoupled, amsgrad);
  }, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("vmax"), py::arg("lr"),
     py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"), py::arg("step"), py::arg("weight_decay"),
     py::arg("decoupled"), py::arg("amsgrad"), "Multi-tensor fused Adam/AdamW (torch formulation), in place.");

  m.def("rmsprop_step", [](py::object params, py::object grads, py::object sq, py::object mom, py::object gavg,
                           double lr, double rho, double momentum, double epsilon, bool centered) {
    std::vector<py::array> keep;
    auto t = V::collect("rmsprop_step", params, grads,
                           {{"sq", sq, true}, {"mom", mom, momentum != 0.0}, {"gavg", gavg, centered}}, keep);
    py::gil_scoped_release nogil;
    optim::rmsprop_step(t, lr, rho, momentum, epsilon, centered);
  }, py::arg("params"), py::arg("grads"), py::arg("sq"), py::arg("mom"), py::arg("gavg"), py::arg("lr"),
     py::arg("rho"), py::arg("momentum"), py::arg("epsilon"), py::arg("centered"),
     "Multi-tensor fused RMSprop (torch formulation), in place.");

  m.def("adagrad_step", [](py::object params, py::object grads, py::object acc, double lr, double epsilon) {
    std::vector<py::array> keep;
    auto t = V::collect("adagrad_step", params, grads, {{"acc", acc, true}}, keep);
    py::gil_scoped_release nogil;
    optim::adagrad_step(t, lr, epsilon);
  }, py::arg("params"), py::arg("grads"), py::arg("acc"), py::arg("lr"), py::arg("epsilon"),
     "Multi-tensor fused Adagrad (torch formulation), in place.");

  m.def("adadelta_step", [](py::object params, py::object grads, py::object sq, py::object acc_delta, double lr,
                            double rho, double epsilon) {
    std::vector<py::array> keep;
    auto t = V::collect("adadelta_step", params, grads, {{"sq", sq, true}, {"acc_delta", acc_delta, true}}, keep);
    py::gil_scoped_release nogil;
    optim::adadelta_step(t, lr, rho, epsilon);
  }, py::arg("params"), py::arg("grads"), py::arg("sq"), py::arg("acc_delta"), py::arg("lr"), py::arg("rho"),
     py::arg("epsilon"), "Multi-tensor fused Adadelta, in place.");
}

}  // namespace

// ---------------------------------------------------------------- norm
// (csrc/norm/) batch and layer normalisation, forward and backward, on (rows, C).
namespace {

const float* optional_vec(const char* op, const char* arg, const py::object& h, int64_t c, py::array* keep) {
  if (h.is_none()) return nullptr;
  *keep = f32c(op, arg, h);
  if (keep->ndim() != 1 || keep->shape(0) != c)
    throw py::value_error(std::string(op) + ": " + arg + " must have shape (" + std::to_string(c) + ",), got " +
                          shape_str(*keep));
  return static_cast<const float*>(keep->data());
}

py::array rows_by_c(const char* op, const char* arg, const py::handle& h) {
  py::array a = f32c(op, arg, h);
  if (a.ndim() != 2) throw py::value_error(std::string(op) + ": " + arg + " must be 2-D (rows, C), got " + shape_str(a));
  return a;
}

void same_shape(const char* op, const py::array& a, const char* an, const py::array& b, const char* bn) {
  if (a.ndim() != b.ndim() || a.shape(0) != b.shape(0) || a.shape(1) != b.shape(1))
    throw py::value_error(std::string(op) + ": " + an + " has shape " + shape_str(a) + " but " + bn + " has shape " +
                          shape_str(b));
}

using NormForward = void (*)(const float*, int64_t, int64_t, const float*, const float*, float, float*, float*,
                             float*);
using NormBackward = void (*)(const float*, const float*, int64_t, int64_t, const float*, const float*,
                              const float*, float*, float*, float*);

// stats_per_row: layer norm keeps one mean/inv_std per row, batch norm one per channel.
py::tuple norm_forward(const char* op, NormForward fn, bool stats_per_row, const py::handle& xh,
                       const py::object& gh, const py::object& bh, float eps) {
  py::array x = rows_by_c(op, "x", xh);
  const int64_t rows = x.shape(0), c = x.shape(1);
  py::array gk, bk;
  const float* g = optional_vec(op, "gamma", gh, c, &gk);
  const float* b = optional_vec(op, "beta", bh, c, &bk);
  if (!(eps >= 0.f)) throw py::value_error(std::string(op) + ": epsilon must be >= 0");
  py::array_t<float> y({rows, c}), mean(stats_per_row ? rows : c), inv(stats_per_row ? rows : c);
  const float* xp = static_cast<const float*>(x.data());
  float *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = inv.mutable_data();
  {
    py::gil_scoped_release release;
    fn(xp, rows, c, g, b, eps, yp, mp, ip);
  }
  return py::make_tuple(y, mean, inv);
}

py::tuple norm_backward(const char* op, NormBackward fn, bool stats_per_row, const py::handle& xh,
                        const py::handle& dyh, const py::handle& mh, const py::handle& ih, const py::object& gh) {
  py::array x = rows_by_c(op, "x", xh), dy = rows_by_c(op, "dy", dyh);
  same_shape(op, x, "x", dy, "dy");
  const int64_t rows = x.shape(0), c = x.shape(1), n_stats = stats_per_row ? rows : c;
  py::array mk, ik, gk;
  const float* m = optional_vec(op, "mean", py::reinterpret_borrow<py::object>(mh), n_stats, &mk);
  const float* iv = optional_vec(op, "inv_std", py::reinterpret_borrow<py::object>(ih), n_stats, &ik);
  if (!m || !iv) throw py::value_error(std::string(op) + ": mean and inv_std are required");
  const float* g = optional_vec(op, "gamma", gh, c, &gk);
  py::array_t<float> dx({rows, c}), dgamma(c), dbeta(c);
  const float *xp = static_cast<const float*>(x.data()), *dyp = static_cast<const float*>(dy.data());
  float *dxp = dx.mutable_data(), *dgp = dgamma.mutable_data(), *dbp = dbeta.mutable_data();
  {
    py::gil_scoped_release release;
    fn(xp, dyp, rows, c, m, iv, g, dxp, dgp, dbp);
  }
  return py::make_tuple(dx, dgamma, dbeta);
}

void bind_norm(py::module_& m) {
  m.def("batch_norm_forward", [](py::handle x, py::object g, py::object b, float eps) {
    return norm_forward("batch_norm", &batch_norm_forward, false, x, g, b, eps);
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("epsilon"),
     "Training-mode batch norm of x (rows, C): returns (y, mean (C,), inv_std (C,)).");
  m.def("batch_norm_backward", [](py::handle x, py::handle dy, py::handle mean, py::handle inv, py::object g) {
    return norm_backward("batch_norm_grad", &batch_norm_backward, false, x, dy, mean, inv, g);
  }, py::arg("x"), py::arg("dy"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"),
     "Returns (dx, dgamma, dbeta).");
  m.def("layer_norm_forward", [](py::handle x, py::object g, py::object b, float eps) {
    return norm_forward("layer_norm", &layer_norm_forward, true, x, g, b, eps);
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("epsilon"),
     "Layer norm over the last axis of x (rows, C): returns (y, mean (rows,), inv_std (rows,)).");
  m.def("layer_norm_backward", [](py::handle x, py::handle dy, py::handle mean, py::handle inv, py::object g) {
    return norm_backward("layer_norm_grad", &layer_norm_backward, true, x, dy, mean, inv, g);
  }, py::arg("x"), py::arg("dy"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"),
     "Returns (dx, dgamma, dbeta).");
}

// ---------------------------------------------------------------- seq
// (csrc/seq/) sequence kernels: CTC, embedding gather/scatter.
py::array_t<int64_t> checked_ids(const char* op, py::handle h, int64_t v) {
  auto ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(h);
  if (!ids) throw py::type_error(std::string(op) + ": ids must be an integer array");
  const int64_t* p = ids.data();
  for (py::ssize_t i = 0; i < ids.size(); ++i)
    if (p[i] < 0 || p[i] >= v)
      throw py::value_error(std::string(op) + ": index " + std::to_string(p[i]) +
                            " is out of range for an embedding table of " + std::to_string(v) + " rows");
  return ids;
}

void bind_seq(py::module_& m) {
  m.def("embedding_gather", [](py::handle th, py::handle idh) {
    py::array table = f32c("embedding", "table", th);
    if (table.ndim() != 2) throw py::value_error("embedding: table must be 2-D (V, D), got " + shape_str(table));
    const int64_t v = table.shape(0), d = table.shape(1);
    auto ids = checked_ids("embedding", idh, v);
    std::vector<py::ssize_t> shape(ids.shape(), ids.shape() + ids.ndim());
    shape.push_back(d);
    py::array_t<float> out(shape);
    const float* tp = static_cast<const float*>(table.data());
    const int64_t* ip = ids.data();
    float* op = out.mutable_data();
    const int64_t n = ids.size();
    {
      py::gil_scoped_release release;
      embedding_gather(tp, d, ip, n, op);
    }
    return out;
  }, py::arg("table"), py::arg("ids"), "table[ids] for a (V, D) table: (..., D).");

  m.def("embedding_scatter_add", [](py::handle idh, py::handle dyh, int64_t v) {
    py::array dy = f32c("embedding_grad", "dy", dyh);
    auto ids = checked_ids("embedding_grad", idh, v);
    const int64_t n = ids.size();
    if (dy.ndim() < 1 || (n && dy.size() % n) || dy.ndim() != ids.ndim() + 1)
      throw py::value_error("embedding_grad: dy has shape " + shape_str(dy) + " for ids of shape " + shape_str(ids));
    const int64_t d = dy.shape(dy.ndim() - 1);
    py::array_t<float> grad({v, d});
    const float* dp = static_cast<const float*>(dy.data());
    const int64_t* ip = ids.data();
    float* gp = grad.mutable_data();
    {
      py::gil_scoped_release release;
      embedding_scatter_add(dp, d, ip, n, v, gp);
    }
    return grad;
  }, py::arg("ids"), py::arg("dy"), py::arg("input_dim"), "The (V, D) table gradient: dy summed per id.");

  m.def("ctc_loss", [](py::handle lph, py::handle labh, py::handle ilh, py::handle llh, int64_t blank) {
    const char* op = "ctc_loss";
    py::array lp = f32c(op, "log_probs", lph);
    if (lp.ndim() != 3) throw py::value_error("ctc_loss: log_probs must be (N, T, C), got " + shape_str(lp));
    const int64_t n = lp.shape(0), t = lp.shape(1), c = lp.shape(2);
    auto ints = [&](const char* arg, py::handle h) {
      auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(h);
      if (!a) throw py::type_error(std::string(op) + ": " + arg + " must be an integer array");
      return a;
    };
    auto labels = ints("labels", labh), il = ints("input_lengths", ilh), ll = ints("label_lengths", llh);
    if (labels.ndim() != 2 || labels.shape(0) != n)
      throw py::value_error("ctc_loss: labels must be (N, S) with N = " + std::to_string(n) + ", got " +
                            shape_str(labels));
    if (il.ndim() != 1 || il.shape(0) != n || ll.ndim() != 1 || ll.shape(0) != n)
      throw py::value_error("ctc_loss: input_lengths and label_lengths must have shape (" + std::to_string(n) + ",)");
    const int64_t s = labels.shape(1);
    if (blank < 0 || blank >= c) throw py::value_error("ctc_loss: blank is not a class of log_probs");
    const int64_t *lab = labels.data(), *ilp = il.data(), *llp = ll.data();
    for (int64_t i = 0; i < n; ++i) {  // everything the kernel indexes with is checked here
      if (ilp[i] < 1 || ilp[i] > t) throw py::value_error("ctc_loss: input_lengths must be in [1, T]");
      if (llp[i] < 0 || llp[i] > s) throw py::value_error("ctc_loss: label_lengths must be in [0, S]");
      for (int64_t j = 0; j < llp[i]; ++j)
        if (lab[i * s + j] < 0 || lab[i * s + j] >= c || lab[i * s + j] == blank)
          throw py::value_error("ctc_loss: labels must be classes other than the blank");
    }
    py::array_t<float> loss(n), grad({n, t, c});
    const float* lpp = static_cast<const float*>(lp.data());
    float *lo = loss.mutable_data(), *gr = grad.mutable_data();
    {
      py::gil_scoped_release release;
      ctc_loss(lpp, n, t, c, lab, s, ilp, llp, blank, lo, gr);
    }
    return py::make_tuple(loss, grad);
  }, py::arg("log_probs"), py::arg("labels"), py::arg("input_lengths"), py::arg("label_lengths"), py::arg("blank"),
     "Per-sample CTC loss and its gradient w.r.t. log_probs (N, T, C).");
}

// ---------------------------------------------------------------- rnn
// (csrc/rnn/) SimpleRNN/LSTM/GRU time loops, forward and BPTT.
struct RnnShape {
  int64_t n, t, units;
};

py::array rnn_f32(const char* op, const char* arg, py::handle h, std::initializer_list<int64_t> shape) {
  py::array a = f32c(op, arg, h);
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  int i = 0;
  for (int64_t d : shape) ok = ok && a.shape(i++) == d;
  if (!ok) {
    std::string want = "(";
    for (int64_t d : shape) want += std::to_string(d) + ", ";
    want = want.substr(0, want.size() - 2) + ")";
    throw py::value_error(std::string(op) + ": " + arg + " must have shape " + want + ", got " + shape_str(a));
  }
  return a;
}

const uint8_t* rnn_mask(const char* op, const py::object& h, int64_t n, int64_t t, py::array* keep) {
  if (h.is_none()) return nullptr;
  auto m = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(h);
  if (!m || m.ndim() != 2 || m.shape(0) != n || m.shape(1) != t)
    throw py::value_error(std::string(op) + ": mask must have shape (" + std::to_string(n) + ", " +
                          std::to_string(t) + ")");
  *keep = m;
  return m.data();
}

Act rnn_act(const char* op, const std::string& name) {
  Act a;
  if (!parse_act(name, &a) || !(a == Act::Tanh || a == Act::Sigmoid || a == Act::Relu || a == Act::Linear))
    throw py::value_error(std::string(op) + ": native recurrences support tanh, sigmoid, relu, linear; got '" +
                          name + "'");
  return a;
}

inline const float* P(const py::array& a) { return static_cast<const float*>(a.data()); }

// Recurrent-dropout mask (N, G·U) float32, or null.
const float* rnn_rmask(const char* op, const py::object& h, int64_t n, int64_t gu, py::array* keep) {
  if (h.is_none()) return nullptr;
  *keep = rnn_f32(op, "recurrent_mask", h, {n, gu});
  return P(*keep);
}

void bind_rnn(py::module_& m) {
  m.def("weight_grad", [](py::handle xh, py::handle dyh) {
    const char* op = "weight_grad";
    py::array x = f32c(op, "x", xh), dy = f32c(op, "dy", dyh);
    if (x.ndim() != 2 || dy.ndim() != 2 || x.shape(0) != dy.shape(0))
      throw py::value_error("weight_grad: expected x (K, M) and dy (K, N) with the same K, got x " + shape_str(x) +
                            " and dy " + shape_str(dy));
    const int64_t k = x.shape(0), mm = x.shape(1), nn = dy.shape(1);
    py::array_t<float> out({mm, nn});
    float* o = out.mutable_data();
    if (k == 0) {
      std::fill(o, o + mm * nn, 0.f);
      return out;
    }
    {
      py::gil_scoped_release release;
      weight_grad(mm, nn, k, P(x), mm, P(dy), nn, o, nn);
    }
    return out;
  }, py::arg("x"), py::arg("dy"), "x^T dy for x (K, M), dy (K, N): weight gradient over K rows, K split across threads.");
  m.def("simple_rnn_forward", [](py::handle xwh, py::handle h0h, py::handle uh, py::object mh, const std::string& act,
                                 py::object rmh) {
    const char* op = "simple_rnn";
    py::array xw = f32c(op, "xw", xwh);
    if (xw.ndim() != 3) throw py::value_error("simple_rnn: xw must be (N, T, U), got " + shape_str(xw));
    const int64_t n = xw.shape(0), t = xw.shape(1), u = xw.shape(2);
    py::array h0 = rnn_f32(op, "h0", h0h, {n, u}), uk = rnn_f32(op, "recurrent_kernel", uh, {u, u}), mk;
    const uint8_t* mask = rnn_mask(op, mh, n, t, &mk);
    const Act a = rnn_act(op, act);
    py::array rk;
    const float* rmask = rnn_rmask(op, rmh, n, u, &rk);
    py::array_t<float> hs({n, t, u});
    float* hp = hs.mutable_data();
    {
      py::gil_scoped_release release;
      simple_rnn_forward(P(xw), P(h0), P(uk), mask, rmask, n, t, u, a, hp);
    }
    return hs;
  });
  m.def("simple_rnn_backward", [](py::handle dhsh, py::handle h0h, py::handle hsh, py::handle uh, py::object mh,
                                  const std::string& act, py::object rmh) {
    const char* op = "simple_rnn_grad";
    py::array hs = f32c(op, "hs", hsh);
    if (hs.ndim() != 3) throw py::value_error("simple_rnn_grad: hs must be (N, T, U), got " + shape_str(hs));
    const int64_t n = hs.shape(0), t = hs.shape(1), u = hs.shape(2);
    py::array dhs = rnn_f32(op, "dhs", dhsh, {n, t, u}), h0 = rnn_f32(op, "h0", h0h, {n, u});
    py::array uk = rnn_f32(op, "recurrent_kernel", uh, {u, u}), mk;
    const uint8_t* mask = rnn_mask(op, mh, n, t, &mk);
    const Act a = rnn_act(op, act);
    py::array rk;
    const float* rmask = rnn_rmask(op, rmh, n, u, &rk);
    py::array_t<float> dxw({n, t, u}), dh0({n, u}), du({u, u});
    float *p1 = dxw.mutable_data(), *p2 = dh0.mutable_data(), *p3 = du.mutable_data();
    {
      py::gil_scoped_release release;
      simple_rnn_backward(P(dhs), P(h0), P(hs), P(uk), mask, rmask, n, t, u, a, p1, p2, p3);
    }
    return py::make_tuple(dxw, dh0, du);
  });
  m.def("lstm_forward", [](py::handle xwh, py::handle h0h, py::handle c0h, py::handle uh, py::object mh,
                           const std::string& act, const std::string& ract, py::object rmh) {
    const char* op = "lstm";
    py::array xw = f32c(op, "xw", xwh);
    if (xw.ndim() != 3 || xw.shape(2) % 4) throw py::value_error("lstm: xw must be (N, T, 4U), got " + shape_str(xw));
    const int64_t n = xw.shape(0), t = xw.shape(1), u = xw.shape(2) / 4;
    py::array h0 = rnn_f32(op, "h0", h0h, {n, u}), c0 = rnn_f32(op, "c0", c0h, {n, u});
    py::array uk = rnn_f32(op, "recurrent_kernel", uh, {u, 4 * u}), mk;
    const uint8_t* mask = rnn_mask(op, mh, n, t, &mk);
    const Act a = rnn_act(op, act), ra = rnn_act(op, ract);
    py::array rk;
    const float* rmask = rnn_rmask(op, rmh, n, 4 * u, &rk);
    py::array_t<float> hs({n, t, u}), cs({n, t, u}), gates({n, t, 4 * u});
    float *p1 = hs.mutable_data(), *p2 = cs.mutable_data(), *p3 = gates.mutable_data();
    {
      py::gil_scoped_release release;
      lstm_forward(P(xw), P(h0), P(c0), P(uk), mask, rmask, n, t, u, a, ra, p1, p2, p3);
    }
    return py::make_tuple(hs, cs, gates);
  });
  m.def("lstm_backward", [](py::handle dhsh, py::handle dch, py::handle h0h, py::handle c0h, py::handle hsh,
                            py::handle csh, py::handle gh, py::handle uh, py::object mh, const std::string& act,
                            const std::string& ract, py::object rmh) {
    const char* op = "lstm_grad";
    py::array hs = f32c(op, "hs", hsh);
    if (hs.ndim() != 3) throw py::value_error("lstm_grad: hs must be (N, T, U), got " + shape_str(hs));
    const int64_t n = hs.shape(0), t = hs.shape(1), u = hs.shape(2);
    py::array dhs = rnn_f32(op, "dhs", dhsh, {n, t, u}), dc = rnn_f32(op, "dc_last", dch, {n, u});
    py::array h0 = rnn_f32(op, "h0", h0h, {n, u}), c0 = rnn_f32(op, "c0", c0h, {n, u});
    py::array cs = rnn_f32(op, "cs", csh, {n, t, u}), gates = rnn_f32(op, "gates", gh, {n, t, 4 * u});
    py::array uk = rnn_f32(op, "recurrent_kernel", uh, {u, 4 * u}), mk;
    const uint8_t* mask = rnn_mask(op, mh, n, t, &mk);
    const Act a = rnn_act(op, act), ra = rnn_act(op, ract);
    py::array rk;
    const float* rmask = rnn_rmask(op, rmh, n, 4 * u, &rk);
    py::array_t<float> dxw({n, t, 4 * u}), dh0({n, u}), dc0({n, u}), du({u, 4 * u});
    float *p1 = dxw.mutable_data(), *p2 = dh0.mutable_data(), *p3 = dc0.mutable_data(), *p4 = du.mutable_data();
    {
      py::gil_scoped_release release;
      lstm_backward(P(dhs), P(dc), P(h0), P(c0), P(hs), P(cs), P(gates), P(uk), mask, rmask, n, t, u, a, ra, p1, p2,
                    p3, p4);
    }
    return py::make_tuple(dxw, dh0, dc0, du);
  });
  m.def("gru_forward", [](py::handle xwh, py::handle h0h, py::handle uh, py::handle bh, py::object mh,
                          const std::string& act, const std::string& ract, py::object rmh) {
    const char* op = "gru";
    py::array xw = f32c(op, "xw", xwh);
    if (xw.ndim() != 3 || xw.shape(2) % 3) throw py::value_error("gru: xw must be (N, T, 3U), got " + shape_str(xw));
    const int64_t n = xw.shape(0), t = xw.shape(1), u = xw.shape(2) / 3;
    py::array h0 = rnn_f32(op, "h0", h0h, {n, u}), uk = rnn_f32(op, "recurrent_kernel", uh, {u, 3 * u});
    py::array rb = rnn_f32(op, "recurrent_bias", bh, {3 * u}), mk;
    const uint8_t* mask = rnn_mask(op, mh, n, t, &mk);
    const Act a = rnn_act(op, act), ra = rnn_act(op, ract);
    py::array rk;
    const float* rmask = rnn_rmask(op, rmh, n, 3 * u, &rk);
    py::array_t<float> hs({n, t, u}), saved({n, t, 4 * u});
    float *p1 = hs.mutable_data(), *p2 = saved.mutable_data();
    {
      py::gil_scoped_release release;
      gru_forward(P(xw), P(h0), P(uk), P(rb), mask, rmask, n, t, u, a, ra, p1, p2);
    }
    return py::make_tuple(hs, saved);
  });
  m.def("gru_backward", [](py::handle dhsh, py::handle h0h, py::handle hsh, py::handle sh, py::handle uh,
                           py::object mh, const std::string& act, const std::string& ract, py::object rmh) {
    const char* op = "gru_grad";
    py::array hs = f32c(op, "hs", hsh);
    if (hs.ndim() != 3) throw py::value_error("gru_grad: hs must be (N, T, U), got " + shape_str(hs));
    const int64_t n = hs.shape(0), t = hs.shape(1), u = hs.shape(2);
    py::array dhs = rnn_f32(op, "dhs", dhsh, {n, t, u}), h0 = rnn_f32(op, "h0", h0h, {n, u});
    py::array saved = rnn_f32(op, "saved", sh, {n, t, 4 * u}), uk = rnn_f32(op, "recurrent_kernel", uh, {u, 3 * u});
    py::array mk;
    const uint8_t* mask = rnn_mask(op, mh, n, t, &mk);
    const Act a = rnn_act(op, act), ra = rnn_act(op, ract);
    py::array rk;
    const float* rmask = rnn_rmask(op, rmh, n, 3 * u, &rk);
    py::array_t<float> dxw({n, t, 3 * u}), dh0({n, u}), du({u, 3 * u}), db(3 * u);
    float *p1 = dxw.mutable_data(), *p2 = dh0.mutable_data(), *p3 = du.mutable_data(), *p4 = db.mutable_data();
    {
      py::gil_scoped_release release;
      gru_backward(P(dhs), P(h0), P(hs), P(saved), P(uk), mask, rmask, n, t, u, a, ra, p1, p2, p3, p4);
    }
    return py::make_tuple(dxw, dh0, du, db);
  });
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pynn native kernels (C++17, OpenMP, AVX2 with runtime dispatch).";
  bind_runtime(m);
  bind_gemm(m);
  bind_nn(m);
  bind_conv(m);
  bind_optim(m);
  bind_norm(m);
  bind_seq(m);
  bind_rnn(m);
}
