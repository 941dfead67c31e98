// Bindings of the NHWC convolution (csrc/conv/): forward with fused bias and
// activation, and the input, kernel and bias gradients.
#include "common/binding.h"
#include "conv/conv2d.h"
#include "conv/geometry.h"

namespace pynn::bind {
namespace {

constexpr const char* kNHWC = "4-D NHWC (N, H, W, C)";
constexpr const char* kKernel = "4-D (kh, kw, C_in, C_out)";

Shape4 dims4(const py::array& a) { return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)}; }

// The forward's checked inputs: float32 C-contiguous x and w, their geometry, the optional
// bias (kept alive in `bias_keep`) and the fused activation.
struct ConvForwardArgs {
  py::array x, w, bias_keep;
  WindowGeom g;
  const float* bias;
  Act act;
};

ConvForwardArgs conv_forward_args(const char* op, py::handle xh, py::handle wh, py::handle bh, const Pair& strides,
                                  const std::string& padding, const Pair& dilation, py::handle acth) {
  py::array x = f32c(op, "x", xh), w = f32c(op, "w", wh);
  require_ndim(op, "x", x, 4, kNHWC);
  require_ndim(op, "w", w, 4, kKernel);
  const WindowGeom g = conv_geometry(op, dims4(x), dims4(w), strides, padding, dilation);
  py::array keep;
  const float* bias = optional_vec(op, "b", bh, g.oc, &keep);  // points into keep's buffer, which moves along
  const Act act = acth.is_none() ? Act::Linear : act_arg(op, py::cast<std::string>(acth));
  return {std::move(x), std::move(w), std::move(keep), g, bias, act};
}

py::array conv2d(py::handle xh, py::handle wh, py::handle bh, const Pair& strides, const std::string& padding,
                 const Pair& dilation, py::handle acth, float act_alpha) {
  const ConvForwardArgs a = conv_forward_args("conv2d", xh, wh, bh, strides, padding, dilation, acth);
  const WindowGeom& g = a.g;
  py::array y = empty({g.n, g.oh, g.ow, g.oc});
  const float *xp = cptr(a.x), *wp = cptr(a.w), *bp = a.bias;
  float* yp = mptr(y);
  const Act act = a.act;
  nogil([&] { ::pynn::conv2d_forward(g, xp, wp, bp, yp, act, act_alpha); });
  return y;
}

py::array conv2d_max_pool2d(py::handle xh, py::handle wh, py::handle bh, const Pair& strides,
                            const std::string& padding, const Pair& dilation, py::handle acth, float act_alpha,
                            const Pair& pool_size, const Pair& pool_strides, const std::string& pool_padding) {
  const char* op = "conv2d_max_pool2d";
  const ConvForwardArgs a = conv_forward_args(op, xh, wh, bh, strides, padding, dilation, acth);
  const WindowGeom& g = a.g;
  const WindowGeom pg = pool_geometry(op, {g.n, g.oh, g.ow, g.oc}, pool_size, pool_strides, pool_padding);
  py::array y = empty({pg.n, pg.oh, pg.ow, pg.c});
  const float *xp = cptr(a.x), *wp = cptr(a.w), *bp = a.bias;
  float* yp = mptr(y);
  const Act act = a.act;
  nogil([&] { ::pynn::conv2d_max_pool_forward(g, pg, xp, wp, bp, yp, act, act_alpha); });
  return y;
}

// conv2d_max_pool2d that also returns the pooling's argmax (uint8, as max_pool2d_argmax): the
// training forward of a conv + ReLU feeding a max pool, whose backward reads only the argmax and
// the pooled output (max_pool2d_backward_argmax with relu_y, max_pool2d_relu_bias_grad).
py::tuple conv2d_max_pool2d_argmax(py::handle xh, py::handle wh, py::handle bh, const Pair& strides,
                                   const std::string& padding, const Pair& dilation, py::handle acth,
                                   float act_alpha, const Pair& pool_size, const Pair& pool_strides,
                                   const std::string& pool_padding) {
  const char* op = "conv2d_max_pool2d_argmax";
  const ConvForwardArgs a = conv_forward_args(op, xh, wh, bh, strides, padding, dilation, acth);
  const WindowGeom& g = a.g;
  const WindowGeom pg = pool_geometry(op, {g.n, g.oh, g.ow, g.oc}, pool_size, pool_strides, pool_padding);
  if (pg.kh * pg.kw > 256)
    throw py::value_error(std::string(op) + ": a pooling window of at most 256 cells (uint8 argmax), got " +
                          std::to_string(pg.kh) + "x" + std::to_string(pg.kw));
  py::array y = empty({pg.n, pg.oh, pg.ow, pg.c});
  py::array_t<uint8_t> idx({pg.n, pg.oh, pg.ow, pg.c});
  const float *xp = cptr(a.x), *wp = cptr(a.w), *bp = a.bias;
  float* yp = mptr(y);
  uint8_t* ip = idx.mutable_data();
  const Act act = a.act;
  nogil([&] { ::pynn::conv2d_max_pool_forward(g, pg, xp, wp, bp, yp, act, act_alpha, ip); });
  return py::make_tuple(y, idx);
}

py::array conv2d_backward_input(py::handle dyh, py::handle wh, const Shape4& xs, const Pair& strides,
                                const std::string& padding, const Pair& dilation) {
  const char* op = "conv2d_backward_input";
  py::array dy = f32c(op, "dy", dyh), w = f32c(op, "w", wh);
  require_ndim(op, "w", w, 4, kKernel);
  const WindowGeom g = conv_geometry(op, xs, dims4(w), strides, padding, dilation);
  require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.oc});
  py::array dx = empty({g.n, g.h, g.w, g.c});
  const float *dyp = cptr(dy), *wp = cptr(w);
  float* dxp = mptr(dx);
  nogil([&] { ::pynn::conv2d_backward_input(g, dyp, wp, dxp); });
  return dx;
}

py::array conv2d_backward_kernel(py::handle xh, py::handle dyh, const Shape4& ws, const Pair& strides,
                                 const std::string& padding, const Pair& dilation) {
  const char* op = "conv2d_backward_kernel";
  py::array x = f32c(op, "x", xh), dy = f32c(op, "dy", dyh);
  require_ndim(op, "x", x, 4, kNHWC);
  const WindowGeom g = conv_geometry(op, dims4(x), ws, strides, padding, dilation);
  require_shape(op, "dy", dy, {g.n, g.oh, g.ow, g.oc});
  py::array dw = empty({ws[0], ws[1], ws[2], ws[3]});
  const float *xp = cptr(x), *dyp = cptr(dy);
  float* dwp = mptr(dw);
  nogil([&] { ::pynn::conv2d_backward_kernel(g, xp, dyp, dwp); });
  return dw;
}

py::array conv2d_backward_bias(py::handle dyh) {
  const char* op = "conv2d_backward_bias";
  py::array dy = f32c(op, "dy", dyh);
  require_ndim(op, "dy", dy, 4, "4-D NHWC (N, OH, OW, C_out)");
  const int64_t oc = dy.shape(3), rows = dy.shape(0) * dy.shape(1) * dy.shape(2);
  py::array db = empty({oc});
  const float* dyp = cptr(dy);
  float* dbp = mptr(db);
  nogil([&] { ::pynn::conv2d_backward_bias(dyp, rows, oc, dbp); });
  return db;
}

// The kernels conv_forward_path / conv_dw_path pick for these shapes (tests pin each branch).
py::dict conv2d_paths(const Shape4& xs, const Shape4& ws, const Pair& strides, const std::string& padding,
                      const Pair& dilation) {
  const WindowGeom g = conv_geometry("conv2d_paths", xs, ws, strides, padding, dilation);
  py::dict d;
  d["forward"] = conv_path_name(conv_forward_path(g));
  d["kernel_grad"] = conv_path_name(conv_dw_path(g));
  return d;
}

// Whether conv2d_backward_input runs these shapes through the Winograd forward (conv_dx_winograd).
bool conv2d_backward_input_winograd(const Shape4& xs, const Shape4& ws, const Pair& strides, const std::string& padding,
                                    const Pair& dilation) {
  return conv_dx_winograd(conv_geometry("conv2d_backward_input_winograd", xs, ws, strides, padding, dilation));
}

// How conv2d_max_pool2d runs these shapes (conv_max_pool_route; tests pin the register-fused case).
std::string conv2d_max_pool2d_path(const Shape4& xs, const Shape4& ws, const Pair& strides, const std::string& padding,
                                   const Pair& dilation, py::handle acth, const Pair& pool_size,
                                   const Pair& pool_strides, const std::string& pool_padding, bool argmax) {
  const char* op = "conv2d_max_pool2d_path";
  const WindowGeom g = conv_geometry(op, xs, ws, strides, padding, dilation);
  const WindowGeom pg = pool_geometry(op, {g.n, g.oh, g.ow, g.oc}, pool_size, pool_strides, pool_padding);
  const Act act = acth.is_none() ? Act::Linear : act_arg(op, py::cast<std::string>(acth));
  return conv_pool_route_name(conv_max_pool_route(g, pg, act, argmax));
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b") = py::none(), py::arg("strides") = Pair{1, 1},
        py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1}, py::arg("activation") = py::none(),
        py::arg("act_alpha") = 0.f,
        "NHWC conv: x (N,H,W,C), w (kh,kw,C,OC), b (OC,) -> act(conv + b) (N,OH,OW,OC), act any name of "
        "activation_names(). 3x3 stride 1 with C_in, C_out >= 16: Winograd F(2x2, 3x3); other windows: implicit "
        "GEMM (AVX2), else im2col blocks + sgemm; 1x1 stride 1: one sgemm (conv2d_paths tells which).");
  m.def("conv2d_max_pool2d", &conv2d_max_pool2d, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
        py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        py::arg("activation") = py::none(), py::arg("act_alpha") = 0.f, py::arg("pool_size") = Pair{2, 2},
        py::arg("pool_strides") = Pair{2, 2}, py::arg("pool_padding") = "valid",
        "max_pool2d(conv2d(x, w, b, ..., activation), pool_size, pool_strides, pool_padding) in one call "
        "(inference): only the conv pixels some pooling window reads are computed; a small-channel 'valid' conv "
        "with a 2x2/2 pool pools its register tiles, others convolve chunks of images into an L2-sized scratch "
        "and pool from there, so the conv output is never written whole. Same values as the two calls.");
  m.def("conv2d_max_pool2d_argmax", &conv2d_max_pool2d_argmax, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
        py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        py::arg("activation") = py::none(), py::arg("act_alpha") = 0.f, py::arg("pool_size") = Pair{2, 2},
        py::arg("pool_strides") = Pair{2, 2}, py::arg("pool_padding") = "valid",
        "(y, idx) = max_pool2d_argmax(conv2d(x, w, b, ..., activation), pool_size, pool_strides, pool_padding) "
        "in one call (training): as conv2d_max_pool2d, through L2-sized chunks (never the register-fused "
        "pool), the conv output never written whole. Same values and argmax as the two calls.");
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("dy"), py::arg("w"), py::arg("x_shape"),
        py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        "dx (x_shape) of conv2d: col2im(dY · Wᵀ).");
  m.def("conv2d_backward_kernel", &conv2d_backward_kernel, py::arg("x"), py::arg("dy"), py::arg("w_shape"),
        py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        "dw (kh,kw,C,OC) of conv2d: Σ im2col(x)ᵀ · dY over pixel blocks.");
  m.def("conv2d_backward_bias", &conv2d_backward_bias, py::arg("dy"), "db (C_out,) = Σ dy over batch and space.");
  m.def("conv2d_paths", &conv2d_paths, py::arg("x_shape"), py::arg("w_shape"), py::arg("strides") = Pair{1, 1},
        py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        "{'forward': path, 'kernel_grad': path}: the kernels conv2d and conv2d_backward_kernel run for these "
        "shapes (pointwise, small_channel, implicit_gemm, winograd, direct or im2col).");
  m.def("conv2d_backward_input_winograd", &conv2d_backward_input_winograd, py::arg("x_shape"), py::arg("w_shape"),
        py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        "True when conv2d_backward_input runs these shapes as a Winograd F(2x2, 3x3) forward over dy.");
  m.def("conv2d_max_pool2d_path", &conv2d_max_pool2d_path, py::arg("x_shape"), py::arg("w_shape"),
        py::arg("strides") = Pair{1, 1}, py::arg("padding") = "valid", py::arg("dilation") = Pair{1, 1},
        py::arg("activation") = py::none(), py::arg("pool_size") = Pair{2, 2}, py::arg("pool_strides") = Pair{2, 2},
        py::arg("pool_padding") = "valid", py::arg("argmax") = false,
        "How conv2d_max_pool2d (argmax=True: conv2d_max_pool2d_argmax) runs these shapes: 'registers' "
        "(small-channel conv, 2x2 pool on its register tiles), 'whole' (conv, then pool) or 'chunks' "
        "(L2-sized chunks of images).");
  m.def("conv_block_rows", &conv_block_rows, py::arg("patch"),
        "Rows of the per-thread im2col scratch block for a patch of kh·kw·C floats.");
  m.attr("conv_col_block_bytes") = kColBlockBytes;
}

}  // namespace pynn::bind
