// Bindings of the fused multi-tensor optimizer steps (csrc/optim/), in place.
#include <initializer_list>
#include <vector>

#include "common/binding.h"
#include "optim/optim.h"

namespace pynn::bind {
namespace {

// A state list of the step: its name, the Python list, and whether this step uses it.
struct Slot {
  const char* name;
  py::handle seq;
  bool used;
};

py::sequence list_arg(const char* op, const char* arg, py::handle h) {
  if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h))
    throw py::type_error(std::string(op) + ": " + arg + " must be a list or tuple of numpy.ndarray");
  return py::reinterpret_borrow<py::sequence>(h);
}

// Every list must have one entry per parameter (an unused state list may be
// empty); every array float32, C-contiguous, of the parameter's shape, and
// writeable unless it is a gradient. All checked before any memory is touched;
// `keep` holds the arrays while the kernel runs.
optim::TensorList collect(const char* op, py::handle params_h, py::handle grads_h, std::initializer_list<Slot> slots,
                          std::vector<py::array>& keep) {
  py::sequence params = list_arg(op, "params", params_h), grads = list_arg(op, "grads", grads_h);
  const size_t n = params.size();
  auto count = [&](size_t got, const char* what) {
    if (got != n)
      throw py::value_error(std::string(op) + ": got " + std::to_string(n) + " params but " + std::to_string(got) +
                            " " + what);
  };
  count(grads.size(), "grads");
  for (const Slot& s : slots)
    if (s.used) count(list_arg(op, s.name, s.seq).size(), s.name);
  optim::TensorList t;
  std::vector<float*>* outs[3] = {&t.s0, &t.s1, &t.s2};
  for (size_t i = 0; i < n; ++i) {
    const std::string idx = "[" + std::to_string(i) + "]";
    const std::string pn = "params" + idx, gn = "grads" + idx;
    py::array p = f32c(op, pn.c_str(), params[i]);
    require_writeable(op, pn.c_str(), p);
    py::array g = f32c(op, gn.c_str(), grads[i]);
    same_shape(op, gn.c_str(), g, pn.c_str(), p);
    t.p.push_back(mptr(p));
    t.g.push_back(cptr(g));
    t.n.push_back(static_cast<int64_t>(p.size()));
    keep.push_back(p);
    keep.push_back(g);
    int k = 0;
    for (const Slot& s : slots) {
      if (s.used) {
        const std::string sn = std::string(s.name) + idx;
        py::array a = f32c(op, sn.c_str(), py::reinterpret_borrow<py::sequence>(s.seq)[i]);
        require_writeable(op, sn.c_str(), a);
        same_shape(op, sn.c_str(), a, pn.c_str(), p);
        outs[k]->push_back(mptr(a));
        keep.push_back(a);
      }
      ++k;
    }
  }
  return t;
}

void sgd_step(py::handle params, py::handle grads, py::handle bufs, double lr, double momentum, bool nesterov,
              double weight_decay) {
  std::vector<py::array> keep;
  const auto t = collect("sgd_step", params, grads, {{"bufs", bufs, momentum != 0.0}}, keep);
  nogil([&] { optim::sgd_step(t, lr, momentum, nesterov, weight_decay); });
}

void adam_step(py::handle params, py::handle grads, py::handle m, py::handle v, py::handle vmax, double lr,
               double beta_1, double beta_2, double epsilon, int64_t step, double weight_decay, bool decoupled,
               bool amsgrad) {
  if (step < 1) throw py::value_error("adam_step: step must be >= 1, got " + std::to_string(step));
  std::vector<py::array> keep;
  const auto t = collect("adam_step", params, grads, {{"m", m, true}, {"v", v, true}, {"vmax", vmax, amsgrad}}, keep);
  nogil([&] { optim::adam_step(t, lr, beta_1, beta_2, epsilon, step, weight_decay, decoupled, amsgrad); });
}

void rmsprop_step(py::handle params, py::handle grads, py::handle sq, py::handle mom, py::handle gavg, double lr,
                  double rho, double momentum, double epsilon, bool centered) {
  std::vector<py::array> keep;
  const auto t = collect("rmsprop_step", params, grads,
                         {{"sq", sq, true}, {"mom", mom, momentum != 0.0}, {"gavg", gavg, centered}}, keep);
  nogil([&] { optim::rmsprop_step(t, lr, rho, momentum, epsilon, centered); });
}

void adagrad_step(py::handle params, py::handle grads, py::handle acc, double lr, double epsilon) {
  std::vector<py::array> keep;
  const auto t = collect("adagrad_step", params, grads, {{"acc", acc, true}}, keep);
  nogil([&] { optim::adagrad_step(t, lr, epsilon); });
}

void adadelta_step(py::handle params, py::handle grads, py::handle sq, py::handle acc_delta, double lr, double rho,
                   double epsilon) {
  std::vector<py::array> keep;
  const auto t = collect("adadelta_step", params, grads, {{"sq", sq, true}, {"acc_delta", acc_delta, true}}, keep);
  nogil([&] { optim::adadelta_step(t, lr, rho, epsilon); });
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, py::arg("params"), py::arg("grads"), py::arg("bufs"), py::arg("lr"),
        py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"),
        "Multi-tensor SGD (torch formulation), in place: buf = mu*buf + g; p -= lr*(nesterov ? g + mu*buf : buf).");
  m.def("adam_step", &adam_step, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("vmax"),
        py::arg("lr"), py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"), py::arg("step"),
        py::arg("weight_decay"), py::arg("decoupled"), py::arg("amsgrad"),
        "Multi-tensor fused Adam/AdamW (torch formulation), in place.");
  m.def("rmsprop_step", &rmsprop_step, py::arg("params"), py::arg("grads"), py::arg("sq"), py::arg("mom"),
        py::arg("gavg"), py::arg("lr"), py::arg("rho"), py::arg("momentum"), py::arg("epsilon"), py::arg("centered"),
        "Multi-tensor fused RMSprop (torch formulation), in place.");
  m.def("adagrad_step", &adagrad_step, py::arg("params"), py::arg("grads"), py::arg("acc"), py::arg("lr"),
        py::arg("epsilon"), "Multi-tensor fused Adagrad (torch formulation), in place.");
  m.def("adadelta_step", &adadelta_step, py::arg("params"), py::arg("grads"), py::arg("sq"), py::arg("acc_delta"),
        py::arg("lr"), py::arg("rho"), py::arg("epsilon"), "Multi-tensor fused Adadelta, in place.");
}

}  // namespace pynn::bind
