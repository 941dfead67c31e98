// Bindings of the sequence kernels (csrc/seq/): embedding gather/scatter, CTC.
#include <vector>

#include "common/binding.h"
#include "seq/ctc.h"
#include "seq/embedding.h"

namespace pynn::bind {
namespace {

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

}  // namespace

void bind_seq(py::module_& m) {
  m.def("embedding_gather", [](py::handle th, py::handle idh) {
    py::array table = f32c("embedding", "table", th);
    require_ndim("embedding", "table", table, 2, "2-D (V, D)");
    const int64_t v = table.shape(0), d = table.shape(1);
    auto ids = checked_ids("embedding", idh, v);
    std::vector<py::ssize_t> shape(ids.shape(), ids.shape() + ids.ndim());
    shape.push_back(d);
    py::array_t<float> out(shape);
    const float* tp = static_cast<const float*>(table.data());
    const int64_t* ip = ids.data();
    float* op = out.mutable_data();
    const int64_t n = ids.size();
    nogil([&] { embedding_gather(tp, d, ip, n, op); });
    return out;
  }, py::arg("table"), py::arg("ids"), "Embedding lookup: table[ids] for a (V, D) table -> (..., D).");

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
    nogil([&] { embedding_scatter_add(dp, d, ip, n, v, gp); });
    return grad;
  }, py::arg("ids"), py::arg("dy"), py::arg("input_dim"), "The (V, D) table gradient: dy summed per id.");

  m.def("ctc_loss", [](py::handle lph, py::handle labh, py::handle ilh, py::handle llh, int64_t blank) {
    const char* op = "ctc_loss";
    py::array lp = f32c(op, "log_probs", lph);
    require_ndim(op, "log_probs", lp, 3, "(N, T, C)");
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
    nogil([&] { ctc_loss(lpp, n, t, c, lab, s, ilp, llp, blank, lo, gr); });
    return py::make_tuple(loss, grad);
  }, py::arg("log_probs"), py::arg("labels"), py::arg("input_lengths"), py::arg("label_lengths"), py::arg("blank"),
     "Per-sample CTC loss and its gradient w.r.t. log_probs (N, T, C).");
}

}  // namespace pynn::bind
