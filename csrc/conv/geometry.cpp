#include "conv/geometry.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace pynn {

namespace {
// a * b and a + b for non-negative int64 operands; false when the result would not fit
// (portable: MSVC has no __builtin_mul_overflow).
bool mul_fits(int64_t a, int64_t b, int64_t* out) {
  if (b != 0 && a > std::numeric_limits<int64_t>::max() / b) return false;
  *out = a * b;
  return true;
}
bool add_fits(int64_t a, int64_t b, int64_t* out) {
  if (a > std::numeric_limits<int64_t>::max() - b) return false;
  *out = a + b;
  return true;
}

void axis(const char* op, bool same, int64_t in, int64_t k, int64_t s, int64_t d, const std::string& shapes,
          int64_t* out, int64_t* pad_before) {
  if (k < 1 || s < 1 || d < 1)
    throw std::invalid_argument(std::string(op) + ": window, strides and dilation must be >= 1; " + shapes);
  // Checked: strides or dilation near 2**63 (pynn.ops does not bound them) would wrap
  // into a small, wrong output shape.
  const auto overflow = [&] {
    return std::invalid_argument(std::string(op) + ": window (kernel " + std::to_string(k) + ", dilation " +
                                 std::to_string(d) + ", stride " + std::to_string(s) +
                                 ") overflows 64-bit size arithmetic; " + shapes);
  };
  int64_t span;
  if (!mul_fits(k - 1, d, &span) || !add_fits(span, 1, &span)) throw overflow();
  if (!same) {
    if (span > in)
      throw std::invalid_argument(std::string(op) + ": window " + std::to_string(span) + " (kernel " +
                                  std::to_string(k) + ", dilation " + std::to_string(d) +
                                  ") is larger than the unpadded input " + std::to_string(in) +
                                  " with padding='valid'; " + shapes);
    *out = (in - span) / s + 1;
    *pad_before = 0;
    return;
  }
  *out = in / s + (in % s != 0);  // ceil(in / s) without forming in + s - 1
  int64_t total;
  if (!mul_fits(std::max<int64_t>(*out - 1, 0), s, &total) || !add_fits(total, span, &total)) throw overflow();
  total = std::max<int64_t>(total - in, 0);
  *pad_before = total / 2;
}
}  // namespace

void window_geometry(const char* op, const std::string& padding, const std::string& shapes, WindowGeom& g) {
  if (padding != "valid" && padding != "same")
    throw std::invalid_argument(std::string(op) + ": padding must be 'valid' or 'same', got '" + padding + "'");
  const bool same = padding == "same";
  axis(op, same, g.h, g.kh, g.sh, g.dh, shapes, &g.oh, &g.pt);
  axis(op, same, g.w, g.kw, g.sw, g.dw, shapes, &g.ow, &g.pl);
}

std::string shape4_str(const Shape4& s) {
  return "(" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) + ", " +
         std::to_string(s[3]) + ")";
}

void require_nonneg(const char* op, const Shape4& shape) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument(std::string(op) + ": negative dimension in shape " + shape4_str(shape));
}

WindowGeom conv_geometry(const char* op, const Shape4& xs, const Shape4& ws, const Pair& s, const std::string& padding,
                         const Pair& d) {
  require_nonneg(op, xs);
  require_nonneg(op, ws);
  const std::string shapes = "input shape " + shape4_str(xs) + ", kernel shape " + shape4_str(ws);
  if (xs[3] != ws[2])
    throw std::invalid_argument(std::string(op) + ": input has " + std::to_string(xs[3]) +
                                " channels but the kernel (kh, kw, C_in, C_out) expects " + std::to_string(ws[2]) +
                                "; " + shapes);
  WindowGeom g;
  g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.c = xs[3];
  g.kh = ws[0]; g.kw = ws[1]; g.oc = ws[3];
  g.sh = s[0]; g.sw = s[1]; g.dh = d[0]; g.dw = d[1];
  window_geometry(op, padding, shapes, g);
  return g;
}

WindowGeom pool_geometry(const char* op, const Shape4& xs, const Pair& k, const Pair& s, const std::string& padding) {
  require_nonneg(op, xs);
  WindowGeom g;
  g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.c = g.oc = xs[3];
  g.kh = k[0]; g.kw = k[1]; g.sh = s[0]; g.sw = s[1];
  window_geometry(op, padding,
                  "input shape " + shape4_str(xs) + ", pool_size (" + std::to_string(k[0]) + ", " +
                      std::to_string(k[1]) + ")",
                  g);
  return g;
}

}  // namespace pynn
