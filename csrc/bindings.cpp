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

// ---------------------------------------------------------------- conv
// (csrc/conv/, csrc/pool/) NHWC convolution forward/backward, pooling.
void bind_conv(py::module_& m) {
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
  bind_conv(m);
  bind_optim(m);
}
