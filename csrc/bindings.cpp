// The only file that knows pybind11. Each binding validates shapes, dtypes and
// contiguity *before* touching memory (kernels trust their arguments), then
// releases the GIL for the computation. Errors are ValueError/TypeError whose
// message names the op and the expected and actual shapes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/runtime.h"
#include "nn/activations.h"
#include "nn/bias.h"
#include "nn/softmax.h"
#include "nn/softmax_xent.h"

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
  if (!a.dtype().is(py::dtype::of<float>()))
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
void bind_gemm(py::module_& m) {
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

// ---------------------------------------------------------------- optim
// (csrc/optim/) fused optimizer update steps, multi-tensor.
void bind_optim(py::module_& m) {
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pynn native kernels (C++17, OpenMP, AVX2 with runtime dispatch).";
  bind_runtime(m);
  bind_gemm(m);
  bind_nn(m);
  bind_optim(m);
}
