// Window geometry shared by convolution and pooling (NHWC): sizes, strides,
// dilation and TensorFlow "valid"/"same" padding. Computed and validated once,
// in the binding, before any kernel touches memory; kernels trust it.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace pynn {

struct WindowGeom {
  int64_t n = 0, h = 0, w = 0, c = 0;    // input (N, H, W, C)
  int64_t kh = 1, kw = 1;                 // window
  int64_t sh = 1, sw = 1, dh = 1, dw = 1; // strides, dilation
  int64_t pt = 0, pl = 0;                 // padding before (top, left); the rest is after
  int64_t oh = 0, ow = 0;                 // output spatial size
  int64_t oc = 0;                         // conv output channels (pooling: c)

  int64_t out_pixels() const { return n * oh * ow; }
  int64_t patch() const { return kh * kw * c; }  // im2col row length, = rows of the (K, OC) kernel
  bool is_pointwise() const {                    // 1x1 stride 1 unpadded: the conv is one plain GEMM
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0;
  }
};

// Fills g.oh/ow/pt/pl from g.h/w/kh/kw/sh/sw/dh/dw and padding ("valid" | "same"),
// TensorFlow rules: same -> out = ceil(in/s), pad_total = max((out-1)s + (k-1)d + 1 - in, 0),
// pad_total/2 before, the extra cell after. Throws std::invalid_argument (ValueError)
// naming `op` and the shapes when the window does not fit an unpadded input.
void window_geometry(const char* op, const std::string& padding, const std::string& shapes, WindowGeom& g);

using Shape4 = std::array<int64_t, 4>;
using Pair = std::array<int64_t, 2>;

// The geometry of a conv from x's (N, H, W, C) and the kernel's (kh, kw, C_in, C_out)
// shapes; std::invalid_argument naming op and both shapes for negative dimensions,
// a channel mismatch, bad padding or a window that does not fit.
WindowGeom conv_geometry(const char* op, const Shape4& x_shape, const Shape4& w_shape, const Pair& strides,
                         const std::string& padding, const Pair& dilation);
// The same for pooling windows (dilation 1, oc = c).
WindowGeom pool_geometry(const char* op, const Shape4& x_shape, const Pair& pool_size, const Pair& strides,
                         const std::string& padding);
// std::invalid_argument naming op and the shape if a dimension is negative.
void require_nonneg(const char* op, const Shape4& shape);
std::string shape4_str(const Shape4& s);

}  // namespace pynn
