#include "common/binding.h"

#include <sstream>

namespace pynn::bind {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << (shape.size() == 1 ? ",)" : ")");
  return os.str();
}

std::string shape_str(const py::array& a) { return shape_str(std::vector<int64_t>(a.shape(), a.shape() + a.ndim())); }

py::array f32(const char* op, const char* arg, py::handle h) {
  if (!py::isinstance<py::array>(h)) throw py::type_error(std::string(op) + ": " + arg + " must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(h);
  // equal(), not is(): equal dtypes may be distinct objects (e.g. after a deepcopy).
  if (!a.dtype().equal(py::dtype::of<float>()))
    throw py::type_error(std::string(op) + ": " + arg + " must be float32, got " + std::string(py::str(a.dtype())) +
                         " with shape " + shape_str(a));
  return a;
}

py::array f32c(const char* op, const char* arg, py::handle h) {
  py::array a = f32(op, arg, h);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + arg + " must be C-contiguous, got strides for shape " +
                          shape_str(a));
  return a;
}

void require_writeable(const char* op, const char* arg, const py::array& a) {
  if (!a.writeable()) throw py::value_error(std::string(op) + ": " + arg + " is read-only");
}

void require_ndim(const char* op, const char* arg, const py::array& a, int ndim, const char* what) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(op) + ": " + arg + " must be " +
                          (what ? std::string(what) : std::to_string(ndim) + "-D") + ", got shape " + shape_str(a));
}

void require_shape(const char* op, const char* arg, const py::array& a, const std::vector<int64_t>& want) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(i) == want[i];
  if (!ok)
    throw py::value_error(std::string(op) + ": " + arg + " must have shape " + shape_str(want) + ", got " +
                          shape_str(a));
}

void same_shape(const char* op, const char* an, const py::array& a, const char* bn, const py::array& b) {
  bool ok = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; ok && i < a.ndim(); ++i) ok = a.shape(i) == b.shape(i);
  if (!ok)
    throw py::value_error(std::string(op) + ": " + an + " has shape " + shape_str(a) + " but " + bn + " has shape " +
                          shape_str(b));
}

const float* optional_vec(const char* op, const char* arg, const py::handle& h, int64_t n, py::array* keep) {
  if (h.is_none()) return nullptr;
  *keep = f32c(op, arg, h);
  require_shape(op, arg, *keep, {n});
  return cptr(*keep);
}

std::pair<int64_t, int64_t> rows_by_last(const char* op, const char* arg, const py::array& a) {
  if (a.ndim() < 1)
    throw py::value_error(std::string(op) + ": " + arg + " must have at least 1 dimension, got shape ()");
  const int64_t C = a.shape(a.ndim() - 1);
  return {C > 0 ? static_cast<int64_t>(a.size()) / C : int64_t{0}, C};
}

namespace {
std::string names(bool from_output_only) {
  std::string s;
  for (int i = 0; i < kNumActs; ++i)
    if (!from_output_only || act_from_output(static_cast<Act>(i)))
      s += (s.empty() ? "" : ", ") + std::string(kActNames[i]);
  return s;
}
}  // namespace

Act act_arg(const char* op, const std::string& name) {
  Act act;
  if (!parse_act(name, &act))
    throw py::value_error(std::string(op) + ": unknown activation '" + name + "' (expected one of " + names(false) +
                          ")");
  return act;
}

Act act_from_output_arg(const char* op, const std::string& name) {
  const Act act = act_arg(op, name);
  if (!act_from_output(act))
    throw py::value_error(std::string(op) + ": activation '" + name +
                          "' cannot be differentiated from its output; expected one of " + names(true));
  return act;
}

}  // namespace pynn::bind
