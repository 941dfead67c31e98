// What every bind_<family>.cpp shares: checked float32 views, shape checks,
// output allocation and the no-GIL call. Each binding validates shapes, dtypes
// and contiguity *before* touching memory (kernels trust their arguments), then
// releases the GIL for the computation. Errors are ValueError/TypeError whose
// message starts with the op's name and gives the expected and actual shapes.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/activation.h"

namespace pynn::bind {

namespace py = pybind11;

// "(2, 3)", "(5,)", "()".
std::string shape_str(const py::array& a);
std::string shape_str(const std::vector<int64_t>& shape);

// A float32 array (any layout), or TypeError naming the op and argument. No
// silent casts: the native backend computes in float32 only.
py::array f32(const char* op, const char* arg, py::handle h);
// The same, C-contiguous, or ValueError (the Python backend copies when it must).
py::array f32c(const char* op, const char* arg, py::handle h);
void require_writeable(const char* op, const char* arg, const py::array& a);
// ValueError "op: arg must be <what>, got shape (...)"; what defaults to "<ndim>-D".
void require_ndim(const char* op, const char* arg, const py::array& a, int ndim, const char* what = nullptr);
// ValueError "op: arg must have shape (...), got (...)".
void require_shape(const char* op, const char* arg, const py::array& a, const std::vector<int64_t>& want);
// ValueError "op: an has shape (...) but bn has shape (...)" unless a and b have one shape.
void same_shape(const char* op, const char* an, const py::array& a, const char* bn, const py::array& b);
// Float32 C-contiguous (n,) array or None (-> nullptr); `keep` holds it while the kernel runs.
const float* optional_vec(const char* op, const char* arg, const py::handle& h, int64_t n, py::array* keep);
// (rows, C) of a contiguous array whose last axis is C; ndim >= 1.
std::pair<int64_t, int64_t> rows_by_last(const char* op, const char* arg, const py::array& a);

// The Act of a Keras activation name, or ValueError naming the op and listing the names.
Act act_arg(const char* op, const std::string& name);
// The same, restricted to activations whose gradient is read off their output.
Act act_from_output_arg(const char* op, const std::string& name);

inline const float* cptr(const py::array& a) { return static_cast<const float*>(a.data()); }
inline float* mptr(py::array& a) { return static_cast<float*>(a.mutable_data()); }

// New float32 arrays: empty(shape) and empty_like(a) (a's shape).
inline py::array_t<float> empty(const std::vector<int64_t>& shape) {
  return py::array_t<float>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}
inline py::array_t<float> empty_like(const py::array& a) {
  return py::array_t<float>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

// f() with the GIL released: the kernel call of a binding, after every check and
// allocation (f must not touch Python objects).
template <class F>
decltype(auto) nogil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

// One per family (bind_<family>.cpp next to its kernels); module.cpp calls them all.
void bind_gemm(py::module_& m);
void bind_nn(py::module_& m);
void bind_conv(py::module_& m);
void bind_pool(py::module_& m);
void bind_norm(py::module_& m);
void bind_optim(py::module_& m);
void bind_rnn(py::module_& m);
void bind_seq(py::module_& m);

}  // namespace pynn::bind
