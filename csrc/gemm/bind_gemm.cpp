// Bindings of the GEMM frame: matmul with strides, alpha/beta and the fused
// bias + activation epilogue, batched matmul, and the split-K weight gradient.
#include <algorithm>
#include <memory>
#include <sstream>
#include <utility>

#include "common/binding.h"
#include "gemm/gemm.h"
#include "gemm/packed.h"

namespace pynn::bind {
namespace {

constexpr int64_t kGilFreeWork = 262144;

// Element stride of dimension `dim` (numpy gives bytes). A dimension of extent
// <= 1 is never stepped along, so its stride is irrelevant and becomes 0.
int64_t elem_stride(const char* op, const char* arg, const py::array& x, py::ssize_t dim) {
  if (x.shape(dim) <= 1) return 0;
  const py::ssize_t s = x.strides(dim);
  if (s % static_cast<py::ssize_t>(sizeof(float)) != 0) {
    std::ostringstream os;
    os << op << ": " << arg << " with shape " << shape_str(x) << " has byte stride " << s << " in dimension " << dim
       << ", not a multiple of the float32 itemsize 4";
    throw py::value_error(os.str());
  }
  return static_cast<int64_t>(s / static_cast<py::ssize_t>(sizeof(float)));
}

py::array f32_ndim(const char* op, const char* arg, py::handle h, int ndim) {
  py::array x = f32(op, arg, h);
  require_ndim(op, arg, x, ndim);
  return x;
}

// bias: None, or n float32 values (any stride); returned contiguous (a copy only
// when the view is strided). `keep` owns the memory while the kernel runs.
const float* bias_arg(const char* op, const py::object& h, int64_t n, py::array* keep) {
  if (h.is_none()) return nullptr;
  py::array bias = f32(op, "bias", h);
  if (bias.ndim() != 1 || bias.shape(0) != n)
    throw py::value_error(std::string(op) + ": bias must have shape (" + std::to_string(n) +
                          ",) to match the output columns, got " + shape_str(bias));
  if (n > 1 && bias.strides(0) != static_cast<py::ssize_t>(sizeof(float)))
    bias = py::array_t<float, py::array::c_style>(bias);  // contiguous copy
  *keep = bias;
  return cptr(bias);
}

py::array gemm(py::handle a_h, py::handle b_h, py::object c_h, float alpha, float beta, py::object bias_h,
               const std::string& activation, float act_alpha) {
  const char* op = "gemm";
  py::array a = f32_ndim(op, "a", a_h, 2), b = f32_ndim(op, "b", b_h, 2);
  const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
  if (b.shape(0) != K) {
    std::ostringstream os;
    os << op << ": a has shape " << shape_str(a) << " but b has shape " << shape_str(b) << ": inner dimensions " << K
       << " and " << b.shape(0) << " differ";
    throw py::value_error(os.str());
  }
  const int64_t rs_a = elem_stride(op, "a", a, 0), cs_a = elem_stride(op, "a", a, 1);
  const int64_t rs_b = elem_stride(op, "b", b, 0), cs_b = elem_stride(op, "b", b, 1);
  py::array c;
  if (c_h.is_none()) {
    c = empty({M, N});
    beta = 0.f;  // fresh output: nothing to accumulate into
  } else {
    c = f32_ndim(op, "c", c_h, 2);
    if (c.shape(0) != M || c.shape(1) != N)
      throw py::value_error(std::string(op) + ": c must have shape " + shape_str(std::vector<int64_t>{M, N}) +
                            " for a " + shape_str(a) + " and b " + shape_str(b) + ", got " + shape_str(c));
    require_writeable(op, "c", c);
  }
  const int64_t rs_c = elem_stride(op, "c", c, 0), cs_c = elem_stride(op, "c", c, 1);
  py::array bias_keep;
  const float* bias = bias_arg(op, bias_h, N, &bias_keep);
  const Act act = act_arg(op, activation);
  const float *pa = cptr(a), *pb = cptr(b);
  float* pc = mptr(c);
  auto run = [&] { sgemm(M, N, K, alpha, pa, rs_a, cs_a, pb, rs_b, cs_b, beta, pc, rs_c, cs_c, bias, act, act_alpha); };
  // Releasing and retaking the GIL measured 0.2 us a call, 10% of a lecture-sized
  // product (32x128x10 takes ~2 us); up to ~5 us of work (kGilFreeWork
  // multiply-adds, the small path's limit) the call keeps the GIL: another Python
  // thread could hardly have used so short a gap.
  if (M * N * K <= kGilFreeWork) run();
  else nogil(run);
  return c;
}

// The 2-D float32 array behind o (native byte order), or nullptr: the common case checked
// on the array struct itself, without creating dtype objects.
py::detail::PyArray_Proxy* plain_f32_2d(PyObject* o) {
  auto& api = py::detail::npy_api::get();
  if (!api.PyArray_Check_(o)) return nullptr;
  auto* p = py::detail::array_proxy(o);
  if (p->nd != 2) return nullptr;
  auto* d = py::detail::array_descriptor_proxy(p->descr);
  if (d->type_num != py::detail::npy_api::NPY_FLOAT_ || d->byteorder == '>') return nullptr;
  return p;
}

// The plain product c = a @ b (or into out) with the least per-call work: numpy.dot's
// place in pynn.ops for lecture-sized products, where gemm's keyword arguments (parsed on
// every call) were ~0.15 us of a 2 us product. Anything but 2-D native-order float32
// arrays with float-multiple strides and a fresh or plain out goes through gemm for its
// checks and messages.
py::object mm(py::handle a_h, py::handle b_h, py::handle out_h) {
  py::detail::PyArray_Proxy* pa = plain_f32_2d(a_h.ptr());
  py::detail::PyArray_Proxy* pb = pa ? plain_f32_2d(b_h.ptr()) : nullptr;
  py::detail::PyArray_Proxy* pc = nullptr;
  const bool fresh = out_h.is_none();
  if (!fresh) pc = plain_f32_2d(out_h.ptr());
  auto fallback = [&] {
    return gemm(a_h, b_h, py::reinterpret_borrow<py::object>(out_h), 1.f, 0.f, py::none(), "linear", 0.f);
  };
  if (!pb || (!fresh && !pc)) return fallback();
  const int64_t M = pa->dimensions[0], K = pa->dimensions[1], N = pb->dimensions[1];
  if (pb->dimensions[0] != K) return fallback();
  // Element strides; a dimension of extent <= 1 is never stepped along (stride 0).
  int64_t st[6];
  py::detail::PyArray_Proxy* ps[3] = {pa, pb, pc};
  for (int x = 0; x < (fresh ? 2 : 3); ++x)
    for (int d = 0; d < 2; ++d) {
      const py::ssize_t bytes = ps[x]->strides[d];
      if (bytes % static_cast<py::ssize_t>(sizeof(float)) != 0) return fallback();
      st[2 * x + d] = ps[x]->dimensions[d] <= 1 ? 0 : bytes / static_cast<py::ssize_t>(sizeof(float));
    }
  py::object c;
  float* cp;
  int64_t rs_c, cs_c;
  if (fresh) {
    py::array_t<float> fresh_c = empty({M, N});
    cp = fresh_c.mutable_data();
    rs_c = N, cs_c = 1;
    c = std::move(fresh_c);
  } else {
    // Any other out (wrong shape, read-only) goes to gemm, which reports it.
    if (pc->dimensions[0] != M || pc->dimensions[1] != N || !(pc->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
      return fallback();
    cp = reinterpret_cast<float*>(pc->data);
    rs_c = st[4], cs_c = st[5];
    c = py::reinterpret_borrow<py::object>(out_h);
  }
  const float* ap = reinterpret_cast<const float*>(pa->data);
  const float* bp = reinterpret_cast<const float*>(pb->data);
  auto run = [&] { sgemm(M, N, K, 1.f, ap, st[0], st[1], bp, st[2], st[3], 0.f, cp, rs_c, cs_c, nullptr, Act::Linear, 0.f); };
  if (M * N * K <= kGilFreeWork) run();
  else nogil(run);
  return c;
}

py::array bmm(py::handle a_h, py::handle b_h, py::object bias_h, const std::string& activation, float act_alpha) {
  const char* op = "bmm";
  py::array a = f32_ndim(op, "a", a_h, 3), b = f32_ndim(op, "b", b_h, 3);
  const int64_t Ba = a.shape(0), M = a.shape(1), K = a.shape(2);
  const int64_t Bb = b.shape(0), N = b.shape(2);
  if (b.shape(1) != K || (Ba != Bb && Ba != 1 && Bb != 1)) {
    std::ostringstream os;
    os << op << ": a has shape " << shape_str(a) << " but b has shape " << shape_str(b) << ": ";
    if (b.shape(1) != K) os << "inner dimensions " << K << " and " << b.shape(1) << " differ";
    else os << "batch dimensions " << Ba << " and " << Bb << " differ";
    throw py::value_error(os.str());
  }
  const int64_t B = std::max(Ba, Bb);
  // A batch of one broadcasts (stride 0), like a stride-0 numpy view does.
  const int64_t bs_a = Ba == 1 ? 0 : elem_stride(op, "a", a, 0);
  const int64_t bs_b = Bb == 1 ? 0 : elem_stride(op, "b", b, 0);
  const int64_t rs_a = elem_stride(op, "a", a, 1), cs_a = elem_stride(op, "a", a, 2);
  const int64_t rs_b = elem_stride(op, "b", b, 1), cs_b = elem_stride(op, "b", b, 2);
  py::array c = empty({B, M, N});
  py::array bias_keep;
  const float* bias = bias_arg(op, bias_h, N, &bias_keep);
  const Act act = act_arg(op, activation);
  const float *pa = cptr(a), *pb = cptr(b);
  float* pc = mptr(c);
  nogil([&] {
    sgemm_batched(B, M, N, K, 1.f, pa, bs_a, rs_a, cs_a, pb, bs_b, rs_b, cs_b, 0.f, pc, M * N, N, 1, bias, act,
                  act_alpha);
  });
  return c;
}

py::array weight_grad(py::handle xh, py::handle dyh) {
  const char* op = "weight_grad";
  py::array x = f32c(op, "x", xh), dy = f32c(op, "dy", dyh);
  if (x.ndim() != 2 || dy.ndim() != 2 || x.shape(0) != dy.shape(0))
    throw py::value_error("weight_grad: expected x (K, M) and dy (K, N) with the same K, got x " + shape_str(x) +
                          " and dy " + shape_str(dy));
  const int64_t k = x.shape(0), m = x.shape(1), n = dy.shape(1);
  py::array out = empty({m, n});
  float* o = mptr(out);
  if (k == 0) {
    std::fill(o, o + m * n, 0.f);
    return out;
  }
  const float *xp = cptr(x), *dyp = cptr(dy);
  nogil([&] { sgemm_split_k(m, n, k, xp, m, dyp, n, o, n); });
  return out;
}

// [lowest, highest] byte address an array's elements occupy (size > 0).
std::pair<const char*, const char*> byte_extent(const py::array& x) {
  const char* lo = static_cast<const char*>(x.data());
  const char* hi = lo;
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    const py::ssize_t step = (x.shape(d) - 1) * x.strides(d);
    (step < 0 ? lo : hi) += step;
  }
  return {lo, hi + x.itemsize()};
}

bool overlaps(const py::array& x, const py::array& y) {
  if (x.size() == 0 || y.size() == 0) return false;
  const auto ex = byte_extent(x), ey = byte_extent(y);
  return ex.first < ey.second && ey.first < ex.second;
}

std::shared_ptr<PackedB> pack_matrix(py::handle b_h) {
  const char* op = "PackedMatrix";
  py::array b = f32_ndim(op, "b", b_h, 2);
  const int64_t K = b.shape(0), N = b.shape(1);
  const int64_t rs_b = elem_stride(op, "b", b, 0), cs_b = elem_stride(op, "b", b, 1);
  const float* pb = cptr(b);
  std::shared_ptr<PackedB> out;
  nogil([&] { out = std::make_shared<PackedB>(K, N, pb, rs_b, cs_b); });
  return out;
}

py::array gemm_packed(py::handle a_h, const PackedB& packed, py::object bias_h, const std::string& activation,
                      float act_alpha, float alpha, float beta, py::object out_h) {
  const char* op = "gemm_packed";
  py::array a = f32_ndim(op, "a", a_h, 2);
  const int64_t M = a.shape(0), K = packed.k(), N = packed.n();
  if (a.shape(1) != K) {
    std::ostringstream os;
    os << op << ": a has shape " << shape_str(a) << " but the packed matrix has shape (" << K << ", " << N
       << "): inner dimensions " << a.shape(1) << " and " << K << " differ";
    throw py::value_error(os.str());
  }
  const int64_t rs_a = elem_stride(op, "a", a, 0), cs_a = elem_stride(op, "a", a, 1);
  py::array c;
  if (out_h.is_none()) {
    c = empty({M, N});
    beta = 0.f;  // fresh output: nothing to accumulate into
  } else {
    c = f32_ndim(op, "out", out_h, 2);
    if (c.shape(0) != M || c.shape(1) != N)
      throw py::value_error(std::string(op) + ": out must have shape " + shape_str(std::vector<int64_t>{M, N}) +
                            " for a " + shape_str(a) + " and a packed (" + std::to_string(K) + ", " +
                            std::to_string(N) + "), got " + shape_str(c));
    require_writeable(op, "out", c);
    if (overlaps(c, a)) throw py::value_error(std::string(op) + ": out must not share memory with a");
  }
  const int64_t rs_c = elem_stride(op, "out", c, 0), cs_c = elem_stride(op, "out", c, 1);
  py::array bias_keep;
  const float* bias = bias_arg(op, bias_h, N, &bias_keep);
  if (bias && !out_h.is_none() && overlaps(c, bias_keep))
    throw py::value_error(std::string(op) + ": out must not share memory with bias");
  const Act act = act_arg(op, activation);
  const float* pa = cptr(a);
  float* pc = mptr(c);
  nogil([&] { sgemm_packed(M, alpha, pa, rs_a, cs_a, packed, beta, pc, rs_c, cs_c, bias, act, act_alpha); });
  return c;
}

}  // namespace

void bind_gemm(py::module_& m) {
  py::class_<PackedB, std::shared_ptr<PackedB>>(
      m, "PackedMatrix",
      "B (k, n) float32 (any strides) packed once into the GEMM microkernel's panel layout, for\n"
      "gemm_packed. A snapshot: later writes to the source array are not seen (pack again).")
      .def(py::init(&pack_matrix), py::arg("b"))
      .def_property_readonly("shape", [](const PackedB& p) { return py::make_tuple(p.k(), p.n()); })
      .def_property_readonly("nbytes", [](const PackedB& p) { return p.nbytes(); })
      .def("__repr__", [](const PackedB& p) {
        return "PackedMatrix(shape=(" + std::to_string(p.k()) + ", " + std::to_string(p.n()) +
               "), nbytes=" + std::to_string(p.nbytes()) + ")";
      });
  m.def("gemm_packed", &gemm_packed, py::arg("a"), py::arg("packed"), py::arg("bias") = py::none(),
        py::arg("activation") = "linear", py::arg("act_alpha") = 0.0f, py::arg("alpha") = 1.0f,
        py::arg("beta") = 0.0f, py::arg("out") = py::none(),
        "out = act(alpha * a @ B + beta * out + bias) with B given as a PackedMatrix (not repacked).\n"
        "a (m, k) float32 of any strides; bias (n,) or None; out (m, n) or None (allocated; beta\n"
        "then ignored). activation: a name of activation_names(); act_alpha its alpha. Returns out.");
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("alpha") = 1.0f,
        py::arg("beta") = 0.0f, py::arg("bias") = py::none(), py::arg("activation") = "linear",
        py::arg("act_alpha") = 0.0f,
        "c = act(alpha * a @ b + beta * c + bias) for 2-D float32 arrays of any strides.\n"
        "a (m, k), b (k, n), c (m, n) or None (allocated; beta then ignored), bias (n,) or None.\n"
        "activation: a name of activation_names(); act_alpha its alpha. Returns c.");
  m.def("mm", &mm, py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
        "a @ b for 2-D float32 arrays of any strides, into out (m, n) when given: gemm(a, b, c=out)\n"
        "with the least per-call work (numpy.dot-sized products). Returns the product.");
  m.def("bmm", &bmm, py::arg("a"), py::arg("b"), py::arg("bias") = py::none(), py::arg("activation") = "linear",
        py::arg("act_alpha") = 0.0f,
        "Batched act(a @ b + bias): a (B, m, k), b (B, k, n) float32 of any strides, a batch\n"
        "of 1 (or batch stride 0) broadcasts. Returns a new C-contiguous (B, m, n) array.");
  m.def("weight_grad", &weight_grad, py::arg("x"), py::arg("dy"),
        "x^T dy for x (K, M), dy (K, N): weight gradient over K rows, K split across threads.");
}

}  // namespace pynn::bind
