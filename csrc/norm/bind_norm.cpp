// Bindings of batch and layer normalisation (csrc/norm/) on (rows, C) arrays.
#include "common/binding.h"
#include "norm/normalization.h"

namespace pynn::bind {
namespace {

using NormForward = void (*)(const float*, int64_t, int64_t, const float*, const float*, float, float*, float*,
                             float*);
using NormBackward = void (*)(const float*, const float*, int64_t, int64_t, const float*, const float*,
                              const float*, float*, float*, float*);

py::array rows_by_c(const char* op, const char* arg, py::handle h) {
  py::array a = f32c(op, arg, h);
  require_ndim(op, arg, a, 2, "2-D (rows, C)");
  return a;
}

// stats_per_row: layer norm keeps one mean/inv_std per row, batch norm one per channel.
py::tuple norm_forward(const char* op, NormForward fn, bool stats_per_row, py::handle xh, py::handle gh,
                       py::handle bh, float eps) {
  py::array x = rows_by_c(op, "x", xh);
  const int64_t rows = x.shape(0), c = x.shape(1);
  py::array gk, bk;
  const float* g = optional_vec(op, "gamma", gh, c, &gk);
  const float* b = optional_vec(op, "beta", bh, c, &bk);
  if (!(eps >= 0.f)) throw py::value_error(std::string(op) + ": epsilon must be >= 0");
  // Per-channel statistics of no rows do not exist (the kernel would give mean 0 and
  // 1/sqrt(eps)): an error, as in the numpy backend, not a made-up value for the moving averages.
  if (!stats_per_row && rows == 0 && c > 0)
    throw py::value_error(std::string(op) + ": no samples to compute batch statistics over (x has 0 rows)");
  const int64_t n_stats = stats_per_row ? rows : c;
  py::array y = empty({rows, c}), mean = empty({n_stats}), inv = empty({n_stats});
  const float* xp = cptr(x);
  float *yp = mptr(y), *mp = mptr(mean), *ip = mptr(inv);
  nogil([&] { fn(xp, rows, c, g, b, eps, yp, mp, ip); });
  return py::make_tuple(y, mean, inv);
}

py::tuple norm_backward(const char* op, NormBackward fn, bool stats_per_row, py::handle xh, py::handle dyh,
                        py::handle mh, py::handle ih, py::handle gh) {
  py::array x = rows_by_c(op, "x", xh), dy = rows_by_c(op, "dy", dyh);
  same_shape(op, "x", x, "dy", dy);
  const int64_t rows = x.shape(0), c = x.shape(1), n_stats = stats_per_row ? rows : c;
  py::array mk, ik, gk;
  const float* m = optional_vec(op, "mean", mh, n_stats, &mk);
  const float* iv = optional_vec(op, "inv_std", ih, n_stats, &ik);
  if (!m || !iv) throw py::value_error(std::string(op) + ": mean and inv_std are required");
  const float* g = optional_vec(op, "gamma", gh, c, &gk);
  py::array dx = empty({rows, c}), dgamma = empty({c}), dbeta = empty({c});
  const float *xp = cptr(x), *dyp = cptr(dy);
  float *dxp = mptr(dx), *dgp = mptr(dgamma), *dbp = mptr(dbeta);
  nogil([&] { fn(xp, dyp, rows, c, m, iv, g, dxp, dgp, dbp); });
  return py::make_tuple(dx, dgamma, dbeta);
}

void layer_norm_backward_no_sum(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                                const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta) {
  layer_norm_backward(x, dy, rows, c, mean, inv_std, gamma, dx, dgamma, dbeta, nullptr);
}

// LN(x + res): the post-norm residual in one pass (see add_layer_norm_forward).
py::tuple add_layer_norm(py::handle xh, py::handle rh, py::handle gh, py::handle bh, float eps) {
  const char* op = "add_layer_norm";
  py::array x = rows_by_c(op, "x", xh), res = rows_by_c(op, "res", rh);
  same_shape(op, "x", x, "res", res);
  const int64_t rows = x.shape(0), c = x.shape(1);
  py::array gk, bk;
  const float* g = optional_vec(op, "gamma", gh, c, &gk);
  const float* b = optional_vec(op, "beta", bh, c, &bk);
  if (!(eps >= 0.f)) throw py::value_error(std::string(op) + ": epsilon must be >= 0");
  py::array y = empty({rows, c}), s = empty({rows, c}), mean = empty({rows}), inv = empty({rows});
  const float *xp = cptr(x), *rp = cptr(res);
  float *yp = mptr(y), *sp = mptr(s), *mp = mptr(mean), *ip = mptr(inv);
  nogil([&] { add_layer_norm_forward(xp, rp, rows, c, g, b, eps, sp, yp, mp, ip); });
  return py::make_tuple(y, s, mean, inv);
}

// layer_norm_backward that also returns Σ dx over the rows (the bias gradient of the layer before).
py::tuple layer_norm_grad_with_sum(py::handle xh, py::handle dyh, py::handle mh, py::handle ih, py::handle gh) {
  const char* op = "layer_norm_grad";
  py::array x = rows_by_c(op, "x", xh), dy = rows_by_c(op, "dy", dyh);
  same_shape(op, "x", x, "dy", dy);
  const int64_t rows = x.shape(0), c = x.shape(1);
  py::array mk, ik, gk;
  const float* m = optional_vec(op, "mean", mh, rows, &mk);
  const float* iv = optional_vec(op, "inv_std", ih, rows, &ik);
  if (!m || !iv) throw py::value_error(std::string(op) + ": mean and inv_std are required");
  const float* g = optional_vec(op, "gamma", gh, c, &gk);
  py::array dx = empty({rows, c}), dgamma = empty({c}), dbeta = empty({c}), dsum = empty({c});
  const float *xp = cptr(x), *dyp = cptr(dy);
  float *dxp = mptr(dx), *dgp = mptr(dgamma), *dbp = mptr(dbeta), *dsp = mptr(dsum);
  nogil([&] { layer_norm_backward(xp, dyp, rows, c, m, iv, g, dxp, dgp, dbp, dsp); });
  return py::make_tuple(dx, dgamma, dbeta, dsum);
}

// The two normalisations share their bindings; stats_per_row tells them apart.
struct Norm {
  const char* name;  // the op in error messages; "<name>_grad" for the backward
  NormForward forward;
  NormBackward backward;
  bool stats_per_row;
  const char* doc;
};

}  // namespace

void bind_norm(py::module_& m) {
  static const Norm kNorms[] = {
      {"batch_norm", &batch_norm_forward, &batch_norm_backward, false,
       "Training-mode batch norm of x (rows, C): returns (y, mean (C,), inv_std (C,))."},
      {"layer_norm", &layer_norm_forward, &layer_norm_backward_no_sum, true,
       "Layer norm over the last axis of x (rows, C): returns (y, mean (rows,), inv_std (rows,))."},
  };
  for (const Norm& k : kNorms) {
    const std::string grad = std::string(k.name) + "_grad";
    m.def(
        (std::string(k.name) + "_forward").c_str(),
        [&k](py::handle x, py::handle g, py::handle b, float eps) {
          return norm_forward(k.name, k.forward, k.stats_per_row, x, g, b, eps);
        },
        py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("epsilon"), k.doc);
    m.def(
        (std::string(k.name) + "_backward").c_str(),
        [&k, grad](py::handle x, py::handle dy, py::handle mean, py::handle inv, py::handle g) {
          return norm_backward(grad.c_str(), k.backward, k.stats_per_row, x, dy, mean, inv, g);
        },
        py::arg("x"), py::arg("dy"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"),
        "Gradient of the forward of the same name: returns (dx, dgamma, dbeta).");
  }
  m.def("add_layer_norm_forward", &add_layer_norm, py::arg("x"), py::arg("res"), py::arg("gamma"), py::arg("beta"),
        py::arg("epsilon"),
        "Layer norm of s = x + res (rows, C) in one pass: returns (y, s, mean (rows,), inv_std (rows,)).");
  m.def("layer_norm_backward_with_sum", &layer_norm_grad_with_sum, py::arg("x"), py::arg("dy"), py::arg("mean"),
        py::arg("inv_std"), py::arg("gamma"),
        "layer_norm_backward plus the column sums of dx: returns (dx, dgamma, dbeta, dx.sum(0)).");
}

}  // namespace pynn::bind
