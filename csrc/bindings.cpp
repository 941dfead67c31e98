// The only file that knows pybind11. Each binding validates shapes, dtypes and
// contiguity *before* touching memory (kernels trust their arguments), then
// releases the GIL for the computation. Errors are ValueError/TypeError whose
// message names the op and the expected and actual shapes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <string>

#include "common/runtime.h"
#include "optim/optim.h"

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

PYBIND11_MODULE(_C, m) {
  m.doc() = "pynn native kernels (C++17, OpenMP, AVX2 with runtime dispatch).";
  bind_runtime(m);
  bind_gemm(m);
  bind_nn(m);
  bind_optim(m);
}
