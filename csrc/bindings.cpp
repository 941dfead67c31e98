// The only file that knows pybind11. Each binding validates shapes, dtypes and
// contiguity *before* touching memory (kernels trust their arguments), then
// releases the GIL for the computation. Errors are ValueError/TypeError whose
// message names the op and the expected and actual shapes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <string>
#include <vector>

#include "common/runtime.h"
#include "norm/normalization.h"
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
void bind_gemm(py::module_& m) {
}

// ---------------------------------------------------------------- nn
// (csrc/nn/) activations forward/backward, bias add, softmax, softmax + cross-entropy.
void bind_nn(py::module_& m) {
}

// ---------------------------------------------------------------- conv
// (csrc/conv/, csrc/pool/) NHWC convolution forward/backward, pooling.
void bind_conv(py::module_& m) {
}

// ---------------------------------------------------------------- optim
// (csrc/optim/) fused optimizer update steps, multi-tensor.
void bind_optim(py::module_& m) {
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
}
