// Bindings of the NHWC pooling kernels (csrc/pool/): max / average pooling over
// windows and globally, forward and backward.
#include "common/binding.h"
#include "conv/geometry.h"
#include "pool/pool.h"

namespace pynn::bind {
namespace {

constexpr const char* kNHWC = "4-D NHWC (N, H, W, C)";

py::array nhwc(const char* op, const char* arg, py::handle h) {
  py::array x = f32c(op, arg, h);
  require_ndim(op, arg, x, 4, kNHWC);
  return x;
}

Shape4 dims4(const py::array& a) { return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)}; }

// Windowed pooling forward: x (N, H, W, C) -> (N, OH, OW, C) by `kernel`.
py::array pool_forward(const char* op, void (*kernel)(const WindowGeom&, const float*, float*), py::handle xh,
                       const Pair& k, const Pair& s, const std::string& padding) {
  py::array x = nhwc(op, "x", xh);
  const WindowGeom g = pool_geometry(op, dims4(x), k, s, padding);
  py::array y = empty({g.n, g.oh, g.ow, g.c});
  const float* xp = cptr(x);
  float* yp = mptr(y);
  nogil([&] { kernel(g, xp, yp); });
  return y;
}

py::array max_pool2d_backward(py::handle xh, py::handle yh, py::handle dyh, const Pair& k, const Pair& s,
                              const std::string& padding) {
  const char* op = "max_pool2d_backward";
  py::array x = nhwc(op, "x", xh), y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
  const WindowGeom g = pool_geometry(op, dims4(x), k, s, padding);
  require_shape(op, "y", y, {g.n, g.oh, g.ow, g.c});
  require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.c});
  py::array dx = empty({g.n, g.h, g.w, g.c});
  const float *xp = cptr(x), *yp = cptr(y), *dyp = cptr(dy);
  float* dxp = mptr(dx);
  nogil([&] { ::pynn::max_pool2d_backward(g, xp, yp, dyp, dxp); });
  return dx;
}

// Window cells a uint8 argmax can name.
constexpr int64_t kMaxArgmaxCells = 256;

py::tuple max_pool2d_argmax(py::handle xh, const Pair& k, const Pair& s, const std::string& padding) {
  const char* op = "max_pool2d_argmax";
  py::array x = nhwc(op, "x", xh);
  const WindowGeom g = pool_geometry(op, dims4(x), k, s, padding);
  if (g.kh * g.kw > kMaxArgmaxCells)
    throw py::value_error(std::string(op) + ": a window of at most " + std::to_string(kMaxArgmaxCells) +
                          " cells (uint8 argmax), got " + std::to_string(g.kh) + "x" + std::to_string(g.kw));
  py::array y = empty({g.n, g.oh, g.ow, g.c});
  py::array_t<uint8_t> idx({g.n, g.oh, g.ow, g.c});
  const float* xp = cptr(x);
  float* yp = mptr(y);
  uint8_t* ip = idx.mutable_data();
  nogil([&] { ::pynn::max_pool2d_forward_argmax(g, xp, yp, ip); });
  return py::make_tuple(y, idx);
}

py::array max_pool2d_backward_argmax(py::handle idxh, py::handle dyh, const Shape4& xs, const Pair& k, const Pair& s,
                                     const std::string& padding, py::handle relu_yh) {
  const char* op = "max_pool2d_backward_argmax";
  if (!py::isinstance<py::array>(idxh)) throw py::type_error(std::string(op) + ": idx must be a numpy.ndarray");
  py::array idx = py::reinterpret_borrow<py::array>(idxh);
  if (!idx.dtype().is(py::dtype::of<uint8_t>()))
    throw py::type_error(std::string(op) + ": idx must be uint8 (from max_pool2d_argmax), got " +
                         std::string(py::str(idx.dtype())));
  py::array dy = f32c(op, "dy", dyh);
  const WindowGeom g = pool_geometry(op, xs, k, s, padding);
  require_shape(op, "idx", idx, {g.n, g.oh, g.ow, g.c});
  require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.c});
  py::array relu_y;  // the forward's y, when the pooled input is a ReLU's output (pool.h)
  if (!relu_yh.is_none()) {
    relu_y = f32c(op, "relu_y", relu_yh);
    require_shape(op, "relu_y", relu_y, {g.n, g.oh, g.ow, g.c});
  }
  py::array_t<uint8_t, py::array::c_style> idc(idx);  // a C-contiguous view (copy only when strided)
  py::array dx = empty({g.n, g.h, g.w, g.c});
  const uint8_t* ip = idc.data();
  const float* dyp = cptr(dy);
  const float* ryp = relu_yh.is_none() ? nullptr : cptr(relu_y);
  float* dxp = mptr(dx);
  nogil([&] { ::pynn::max_pool2d_backward_argmax(g, ip, dyp, ryp, dxp); });
  return dx;
}

py::array max_pool2d_relu_bias_grad(py::handle dyh, py::handle relu_yh) {
  const char* op = "max_pool2d_relu_bias_grad";
  py::array dy = f32c(op, "dy", dyh), relu_y = f32c(op, "relu_y", relu_yh);
  require_ndim(op, "dy", dy, 4, "4-D NHWC (N, OH, OW, C)");
  require_shape(op, "relu_y", relu_y, {dy.shape(0), dy.shape(1), dy.shape(2), dy.shape(3)});
  const int64_t C = dy.shape(3), rows = dy.shape(0) * dy.shape(1) * dy.shape(2);
  py::array db = empty({C});
  const float *dyp = cptr(dy), *ryp = cptr(relu_y);
  float* dbp = mptr(db);
  nogil([&] { ::pynn::max_pool2d_relu_bias_grad(rows, C, dyp, ryp, dbp); });
  return db;
}

py::array avg_pool2d_backward(py::handle dyh, const Shape4& xs, const Pair& k, const Pair& s,
                              const std::string& padding) {
  const char* op = "avg_pool2d_backward";
  py::array dy = f32c(op, "dy", dyh);
  const WindowGeom g = pool_geometry(op, xs, k, s, padding);
  require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.c});
  py::array dx = empty({g.n, g.h, g.w, g.c});
  const float* dyp = cptr(dy);
  float* dxp = mptr(dx);
  nogil([&] { ::pynn::avg_pool2d_backward(g, dyp, dxp); });
  return dx;
}

py::array global_avg_pool2d(py::handle xh) {
  const char* op = "global_avg_pool2d";
  py::array x = nhwc(op, "x", xh);
  const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
  py::array y = empty({n, c});
  const float* xp = cptr(x);
  float* yp = mptr(y);
  nogil([&] { ::pynn::global_avg_pool2d_forward(n, hw, c, xp, yp); });
  return y;
}

py::array global_avg_pool2d_backward(py::handle dyh, const Shape4& xs) {
  const char* op = "global_avg_pool2d_backward";
  py::array dy = f32c(op, "dy", dyh);
  require_nonneg(op, xs);
  require_shape(op, "dy", dy, {xs[0], xs[3]});
  py::array dx = empty({xs[0], xs[1], xs[2], xs[3]});
  const float* dyp = cptr(dy);
  float* dxp = mptr(dx);
  nogil([&] { ::pynn::global_avg_pool2d_backward(xs[0], xs[1] * xs[2], xs[3], dyp, dxp); });
  return dx;
}

py::array global_max_pool2d(py::handle xh) {
  const char* op = "global_max_pool2d";
  py::array x = nhwc(op, "x", xh);
  const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
  if (hw == 0) throw py::value_error("global_max_pool2d: empty spatial extent, input shape " + shape_str(x));
  py::array y = empty({n, c});
  const float* xp = cptr(x);
  float* yp = mptr(y);
  nogil([&] { ::pynn::global_max_pool2d_forward(n, hw, c, xp, yp); });
  return y;
}

py::array global_max_pool2d_backward(py::handle xh, py::handle yh, py::handle dyh) {
  const char* op = "global_max_pool2d_backward";
  py::array x = nhwc(op, "x", xh), y = f32c(op, "y", yh), dy = f32c(op, "dy", dyh);
  const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
  require_shape(op, "y", y, {n, c});
  require_shape(op, "dy", dy, {n, c});
  py::array dx = empty_like(x);
  const float *xp = cptr(x), *yp = cptr(y), *dyp = cptr(dy);
  float* dxp = mptr(dx);
  nogil([&] { ::pynn::global_max_pool2d_backward(n, hw, c, xp, yp, dyp, dxp); });
  return dx;
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def(
      "max_pool2d",
      [](py::handle x, const Pair& k, const Pair& s, const std::string& padding) {
        return pool_forward("max_pool2d", &max_pool2d_forward, x, k, s, padding);
      },
      py::arg("x"), py::arg("pool_size"), py::arg("strides"),
        py::arg("padding") = "valid", "NHWC max pooling: x (N,H,W,C) -> (N,OH,OW,C); padding never wins.");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("pool_size"),
        py::arg("strides"), py::arg("padding") = "valid",
        "dx of max_pool2d: each window's dy to its first cell equal to y (TensorFlow's rule).");
  m.def("max_pool2d_argmax", &max_pool2d_argmax, py::arg("x"), py::arg("pool_size"), py::arg("strides"),
        py::arg("padding") = "valid",
        "(y, idx): max_pool2d and, per output element, the winning window cell (uint8, i*kw + j).");
  m.def("max_pool2d_relu_bias_grad", &max_pool2d_relu_bias_grad, py::arg("dy"), py::arg("relu_y"),
        "db (C,) = sum of dy where relu_y > 0 over N, OH, OW: the bias gradient of a conv + bias + relu "
        "feeding max_pool2d, from the pooling's output gradient dy and output relu_y (= the sum over the "
        "fused backward's dx).");
  m.def("max_pool2d_backward_argmax", &max_pool2d_backward_argmax, py::arg("idx"), py::arg("dy"), py::arg("x_shape"),
        py::arg("pool_size"), py::arg("strides"), py::arg("padding") = "valid", py::arg("relu_y") = py::none(),
        "dx (x_shape) of max_pool2d from the forward's argmax: x and y are not read again. relu_y (the "
        "forward's y, optional): x was a ReLU's output; the ReLU's backward is fused in (dy passes only "
        "where relu_y > 0).");
  m.def(
      "avg_pool2d",
      [](py::handle x, const Pair& k, const Pair& s, const std::string& padding) {
        return pool_forward("avg_pool2d", &avg_pool2d_forward, x, k, s, padding);
      },
      py::arg("x"), py::arg("pool_size"), py::arg("strides"),
        py::arg("padding") = "valid", "NHWC average pooling over each window's real (unpadded) cells.");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("x_shape"), py::arg("pool_size"),
        py::arg("strides"), py::arg("padding") = "valid", "dx (x_shape) of avg_pool2d.");
  m.def("global_avg_pool2d", &global_avg_pool2d, py::arg("x"), "Mean over H and W: x (N,H,W,C) -> (N,C).");
  m.def("global_avg_pool2d_backward", &global_avg_pool2d_backward, py::arg("dy"), py::arg("x_shape"),
        "dx (x_shape) of global_avg_pool2d from dy (N,C).");
  m.def("global_max_pool2d", &global_max_pool2d, py::arg("x"), "Max over H and W: x (N,H,W,C) -> (N,C).");
  m.def("global_max_pool2d_backward", &global_max_pool2d_backward, py::arg("x"), py::arg("y"), py::arg("dy"),
        "dx of global_max_pool2d: dy to the first cell equal to the maximum.");
}

}  // namespace pynn::bind
