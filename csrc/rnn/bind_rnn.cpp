// Bindings of the recurrent layers' time loops (csrc/rnn/): SimpleRNN, LSTM and
// GRU (reset_after), forward and BPTT. Activations: those whose gradient is read
// off their output (act_from_output), since the backward sees only saved gates.
#include <algorithm>
#include <memory>

#include "common/binding.h"
#include "rnn/cells.h"
#include "rnn/recurrent.h"

namespace pynn::bind {

// _C.RecurrentKernelPack: a recurrent kernel packed once (rnn::pack_recurrent) for
// the forward time loops' packed_recurrent argument, held by inference plans
// across calls instead of being packed inside every call.
struct RecurrentPack {
  PackedB packed;
  int64_t rows, units, gates;  // a (rows, gates*units) kernel; rows == units for a recurrent one
};

namespace {

std::shared_ptr<RecurrentPack> make_pack(py::handle uh, int64_t gates) {
  const char* op = "RecurrentKernelPack";
  if (gates != 1 && gates != 3 && gates != 4)
    throw py::value_error(std::string(op) + ": gates must be 1 (SimpleRNN), 3 (GRU) or 4 (LSTM), got " +
                          std::to_string(gates));
  py::array u = f32c(op, "kernel", uh);
  if (u.ndim() != 2 || u.shape(1) % gates != 0)
    throw py::value_error(std::string(op) + ": kernel must be (rows, " + std::to_string(gates) +
                          "*units), got shape " + shape_str(u));
  const int64_t rows = u.shape(0), units = u.shape(1) / gates;
  const float* pu = cptr(u);
  auto out = std::make_shared<RecurrentPack>();
  out->rows = rows;
  out->units = units;
  out->gates = gates;
  nogil([&] { out->packed = pack_gate_blocks(pu, rows, units, gates); });
  return out;
}

// A RecurrentKernelPack argument: None, or a pack of a (rows, gates*units) kernel; never with recurrent dropout.
const PackedB* pack_arg(const char* op, const char* arg, py::handle h, int64_t rows, int64_t units, int64_t gates,
                        const float* rmask) {
  if (h.is_none()) return nullptr;
  if (!py::isinstance<RecurrentPack>(h))
    throw py::type_error(std::string(op) + ": " + arg + " must be a RecurrentKernelPack or None, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  const RecurrentPack& p = h.cast<const RecurrentPack&>();
  if (p.rows != rows || p.units != units || p.gates != gates)
    throw py::value_error(std::string(op) + ": " + arg + " was packed from a (" + std::to_string(p.rows) + ", " +
                          std::to_string(p.gates) + "*" + std::to_string(p.units) + ") kernel; this call needs (" +
                          std::to_string(rows) + ", " + std::to_string(gates) + "*" + std::to_string(units) + ")");
  if (rmask)
    throw py::value_error(std::string(op) + ": " + arg + " cannot be combined with recurrent_mask "
                          "(recurrent dropout multiplies each gate's kernel by its own mask)");
  return &p.packed;
}
const PackedB* pack_arg(const char* op, py::handle h, int64_t units, int64_t gates, const float* rmask) {
  return pack_arg(op, "packed_recurrent", h, units, units, gates, rmask);
}

py::array shaped(const char* op, const char* arg, py::handle h, const std::vector<int64_t>& shape) {
  py::array a = f32c(op, arg, h);
  require_shape(op, arg, a, shape);
  return a;
}

// (N, T) uint8 step mask or null.
const uint8_t* mask_arg(const char* op, py::handle h, int64_t n, int64_t t, py::array* keep) {
  if (h.is_none()) return nullptr;
  auto m = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(h);
  if (!m || m.ndim() != 2 || m.shape(0) != n || m.shape(1) != t)
    throw py::value_error(std::string(op) + ": mask must have shape (" + std::to_string(n) + ", " +
                          std::to_string(t) + ")");
  *keep = m;
  return m.data();
}

// Recurrent-dropout mask (N, G·U) float32, or null.
const float* rmask_arg(const char* op, py::handle h, int64_t n, int64_t gu, py::array* keep) {
  if (h.is_none()) return nullptr;
  *keep = shaped(op, "recurrent_mask", h, {n, gu});
  return cptr(*keep);
}

// xw (N, T, G·U) -> (N, T, U); `layout` names the expected shape.
py::array xw_arg(const char* op, py::handle h, int64_t gates, const char* layout) {
  py::array xw = f32c(op, "xw", h);
  if (xw.ndim() != 3 || xw.shape(2) % gates)
    throw py::value_error(std::string(op) + ": xw must be " + layout + ", got shape " + shape_str(xw));
  return xw;
}

// Time-major sequences (SeqLayout in rnn/recurrent.h): an (N, T, W) array whose memory is
// (T, N, W) in C order, i.e. the transpose (1, 0, 2) of a C-contiguous (T, N, W) buffer.
// lstm_forward_x(time_major=True) returns its hs, cs, gates so, and lstm_backward takes them
// (and returns dxw so) without a copy; any indexing works on them as on (N, T, W) arrays.
py::array empty_time_major(int64_t n, int64_t t, int64_t w) { return empty({t, n, w}).attr("transpose")(1, 0, 2); }

bool is_time_major(py::handle h, int64_t n, int64_t t, int64_t w) {
  if (!py::isinstance<py::array_t<float>>(h)) return false;
  auto a = py::reinterpret_borrow<py::array>(h);
  const auto f = static_cast<py::ssize_t>(sizeof(float));
  return a.ndim() == 3 && a.shape(0) == n && a.shape(1) == t && a.shape(2) == w && a.strides(2) == f &&
         a.strides(0) == w * f && a.strides(1) == n * w * f;
}

// hs (N, T, U) of a backward call, which fixes N, T, U.
py::array hs_arg(const char* op, py::handle h) {
  py::array hs = f32c(op, "hs", h);
  require_ndim(op, "hs", hs, 3, "(N, T, U)");
  return hs;
}

py::array simple_rnn_forward(py::handle xwh, py::handle h0h, py::handle uh, py::handle mh, const std::string& act,
                             py::handle rmh, py::handle ph) {
  const char* op = "simple_rnn";
  py::array xw = xw_arg(op, xwh, 1, "(N, T, U)");
  const int64_t n = xw.shape(0), t = xw.shape(1), u = xw.shape(2);
  py::array h0 = shaped(op, "h0", h0h, {n, u}), uk = shaped(op, "recurrent_kernel", uh, {u, u}), mk, rk;
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act);
  const float* rmask = rmask_arg(op, rmh, n, u, &rk);
  const PackedB* pk = pack_arg(op, ph, u, 1, rmask);
  py::array hs = empty({n, t, u});
  float* hp = mptr(hs);
  nogil([&] { ::pynn::simple_rnn_forward(cptr(xw), cptr(h0), cptr(uk), mask, rmask, n, t, u, a, hp, pk); });
  return hs;
}

py::tuple simple_rnn_backward(py::handle dhsh, py::handle h0h, py::handle hsh, py::handle uh, py::handle mh,
                              const std::string& act, py::handle rmh) {
  const char* op = "simple_rnn_grad";
  py::array hs = hs_arg(op, hsh);
  const int64_t n = hs.shape(0), t = hs.shape(1), u = hs.shape(2);
  py::array dhs = shaped(op, "dhs", dhsh, {n, t, u}), h0 = shaped(op, "h0", h0h, {n, u});
  py::array uk = shaped(op, "recurrent_kernel", uh, {u, u}), mk, rk;
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act);
  const float* rmask = rmask_arg(op, rmh, n, u, &rk);
  py::array dxw = empty({n, t, u}), dh0 = empty({n, u}), du = empty({u, u});
  float *p1 = mptr(dxw), *p2 = mptr(dh0), *p3 = mptr(du);
  nogil([&] {
    ::pynn::simple_rnn_backward(cptr(dhs), cptr(h0), cptr(hs), cptr(uk), mask, rmask, n, t, u, a, p1, p2, p3);
  });
  return py::make_tuple(dxw, dh0, du);
}

py::tuple lstm_forward(py::handle xwh, py::handle h0h, py::handle c0h, py::handle uh, py::handle mh,
                       const std::string& act, const std::string& ract, py::handle rmh, bool save_gates,
                       bool xw_scratch, py::handle ph) {
  const char* op = "lstm";
  py::array xw = xw_arg(op, xwh, 4, "(N, T, 4U)");
  const int64_t n = xw.shape(0), t = xw.shape(1), u = xw.shape(2) / 4;
  py::array h0 = shaped(op, "h0", h0h, {n, u}), c0 = shaped(op, "c0", c0h, {n, u});
  py::array uk = shaped(op, "recurrent_kernel", uh, {u, 4 * u}), mk, rk;
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act), ra = act_from_output_arg(op, ract);
  const float* rmask = rmask_arg(op, rmh, n, 4 * u, &rk);
  const PackedB* pk = pack_arg(op, ph, u, 4, rmask);
  // Without save_gates (inference) the fused loop skips the (N, T, 4U) store;
  // the per-step loop of recurrent dropout (training only) always writes them.
  const bool gates_buf = save_gates || rmask;
  // xw_scratch: the caller does not need xw afterwards, so the gates may be stored
  // over it -- the pass then writes into lines it has just read instead of
  // allocating 4U more floats per row and step in the cache (measured: the
  // forward's cell pass 2.6 -> 1.6 ms for LSTM(128) x 50 steps x 64).
  const bool in_place = gates_buf && xw_scratch && !rmask && xw.writeable() && u > 0 &&
                        rnn::lstm_fwd_block_in_place_ok(a, ra);
  py::array hs = empty({n, t, u}), cs = empty({n, t, u});
  py::array gates = in_place ? xw : gates_buf ? py::array(empty({n, t, 4 * u})) : py::array(empty({0}));
  float *p1 = mptr(hs), *p2 = mptr(cs), *p3 = gates_buf ? mptr(gates) : nullptr;
  nogil([&] {
    ::pynn::lstm_forward(cptr(xw), cptr(h0), cptr(c0), cptr(uk), mask, rmask, n, t, u, a, ra, p1, p2, p3, pk);
  });
  if (!save_gates) return py::make_tuple(hs, cs, py::none());
  return py::make_tuple(hs, cs, gates);
}

py::tuple lstm_forward_x(py::handle xh, py::handle kh, py::handle bh, py::handle h0h, py::handle c0h, py::handle uh,
                         py::handle mh, const std::string& act, const std::string& ract, bool save_gates,
                         py::handle pkh, py::handle ph, bool time_major) {
  const char* op = "lstm_forward_x";
  py::array x = f32c(op, "x", xh);
  require_ndim(op, "x", x, 3, "(N, T, F)");
  const int64_t n = x.shape(0), t = x.shape(1), f = x.shape(2);
  py::array uk = f32c(op, "recurrent_kernel", uh);
  if (uk.ndim() != 2 || uk.shape(1) != 4 * uk.shape(0))
    throw py::value_error(std::string(op) + ": recurrent_kernel must be (U, 4U), got shape " + shape_str(uk));
  const int64_t u = uk.shape(0);
  py::array k = shaped(op, "kernel", kh, {f, 4 * u});
  py::array h0 = shaped(op, "h0", h0h, {n, u}), c0 = shaped(op, "c0", c0h, {n, u}), b, mk;
  if (!bh.is_none()) b = shaped(op, "bias", bh, {4 * u});
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act), ra = act_from_output_arg(op, ract);
  const PackedB* wpk = pack_arg(op, "packed_kernel", pkh, f, u, 4, nullptr);
  const PackedB* upk = pack_arg(op, ph, u, 4, nullptr);
  auto seq = [&](int64_t w) { return time_major ? empty_time_major(n, t, w) : py::array(empty({n, t, w})); };
  py::array hs = seq(u), cs = seq(u);
  py::array gates = save_gates ? seq(4 * u) : py::array(empty({0}));
  float *p1 = mptr(hs), *p2 = mptr(cs), *p3 = save_gates ? mptr(gates) : nullptr;
  const float* pk = cptr(k);
  const float* pb = bh.is_none() ? nullptr : cptr(b);
  nogil([&] {
    PackedB own;  // the input kernel packed in this call unless the caller holds a pack
    if (!wpk) own = pack_gate_blocks(pk, f, u, 4);
    ::pynn::lstm_forward_x(cptr(x), f, wpk ? *wpk : own, pb, cptr(h0), cptr(c0), cptr(uk), mask, n, t, u, a, ra, p1,
                           p2, p3, upk, time_major);
  });
  if (!save_gates) return py::make_tuple(hs, cs, py::none());
  return py::make_tuple(hs, cs, gates);
}

py::tuple lstm_backward(py::handle dhsh, py::handle dch, py::handle h0h, py::handle c0h, py::handle hsh,
                        py::handle csh, py::handle gh, py::handle uh, py::handle mh, const std::string& act,
                        const std::string& ract, py::handle rmh, bool bias_grad) {
  const char* op = "lstm_grad";
  py::array hs_in = py::array::ensure(hsh);  // (no copy: its layout decides the kernel's)
  if (!hs_in || hs_in.ndim() != 3) hs_arg(op, hsh);  // (raises the usual error)
  const int64_t n = hs_in.shape(0), t = hs_in.shape(1), u = hs_in.shape(2);
  // hs, cs and gates all time-major (lstm_forward_x's training output): the BPTT runs time-major
  // (dhs copied so if it is not) and returns dxw time-major; otherwise everything C order.
  const bool tm = rmh.is_none() && n > 1 && t > 1 && is_time_major(hsh, n, t, u) && is_time_major(csh, n, t, u) &&
                  is_time_major(gh, n, t, 4 * u);
  auto seq_arg = [&](const char* arg, py::handle h, int64_t w) -> py::array {
    if (!tm) return shaped(op, arg, h, {n, t, w});
    if (is_time_major(h, n, t, w)) return py::reinterpret_borrow<py::array>(h);
    py::array a = shaped(op, arg, h, {n, t, w});  // C order: one transposing copy
    py::array out = empty_time_major(n, t, w);
    out[py::slice(py::none(), py::none(), py::none())] = a;
    return out;
  };
  py::array hs = seq_arg("hs", hsh, u), cs = seq_arg("cs", csh, u), gates = seq_arg("gates", gh, 4 * u);
  py::array dhs = seq_arg("dhs", dhsh, u), dc = shaped(op, "dc_last", dch, {n, u});
  py::array h0 = shaped(op, "h0", h0h, {n, u}), c0 = shaped(op, "c0", c0h, {n, u});
  py::array uk = shaped(op, "recurrent_kernel", uh, {u, 4 * u}), mk, rk;
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act), ra = act_from_output_arg(op, ract);
  const float* rmask = rmask_arg(op, rmh, n, 4 * u, &rk);
  py::array dxw = tm ? empty_time_major(n, t, 4 * u) : py::array(empty({n, t, 4 * u}));
  py::array dh0 = empty({n, u}), dc0 = empty({n, u}), du = empty({u, 4 * u});
  py::array db = empty({bias_grad ? 4 * u : 0});
  float *p1 = mptr(dxw), *p2 = mptr(dh0), *p3 = mptr(dc0), *p4 = mptr(du), *p5 = bias_grad ? mptr(db) : nullptr;
  if (p5 && u > 0 && (n == 0 || t == 0)) std::fill(p5, p5 + 4 * u, 0.f);  // an empty sum (the kernel returns early)
  nogil([&] {
    ::pynn::lstm_backward(cptr(dhs), cptr(dc), cptr(h0), cptr(c0), cptr(hs), cptr(cs), cptr(gates), cptr(uk), mask,
                          rmask, n, t, u, a, ra, p1, p2, p3, p4, p5, tm);
  });
  if (bias_grad) return py::make_tuple(dxw, dh0, dc0, du, db);
  return py::make_tuple(dxw, dh0, dc0, du);
}

py::tuple gru_forward(py::handle xwh, py::handle h0h, py::handle uh, py::handle bh, py::handle mh,
                      const std::string& act, const std::string& ract, py::handle rmh, py::handle ph) {
  const char* op = "gru";
  py::array xw = xw_arg(op, xwh, 3, "(N, T, 3U)");
  const int64_t n = xw.shape(0), t = xw.shape(1), u = xw.shape(2) / 3;
  py::array h0 = shaped(op, "h0", h0h, {n, u}), uk = shaped(op, "recurrent_kernel", uh, {u, 3 * u});
  py::array rb = shaped(op, "recurrent_bias", bh, {3 * u}), mk, rk;
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act), ra = act_from_output_arg(op, ract);
  const float* rmask = rmask_arg(op, rmh, n, 3 * u, &rk);
  const PackedB* pk = pack_arg(op, ph, u, 3, rmask);
  py::array hs = empty({n, t, u}), saved = empty({n, t, 4 * u});
  float *p1 = mptr(hs), *p2 = mptr(saved);
  nogil([&] {
    ::pynn::gru_forward(cptr(xw), cptr(h0), cptr(uk), cptr(rb), mask, rmask, n, t, u, a, ra, p1, p2, pk);
  });
  return py::make_tuple(hs, saved);
}

py::tuple gru_backward(py::handle dhsh, py::handle h0h, py::handle hsh, py::handle sh, py::handle uh, py::handle mh,
                       const std::string& act, const std::string& ract, py::handle rmh) {
  const char* op = "gru_grad";
  py::array hs = hs_arg(op, hsh);
  const int64_t n = hs.shape(0), t = hs.shape(1), u = hs.shape(2);
  py::array dhs = shaped(op, "dhs", dhsh, {n, t, u}), h0 = shaped(op, "h0", h0h, {n, u});
  py::array saved = shaped(op, "saved", sh, {n, t, 4 * u}), uk = shaped(op, "recurrent_kernel", uh, {u, 3 * u});
  py::array mk, rk;
  const uint8_t* mask = mask_arg(op, mh, n, t, &mk);
  const Act a = act_from_output_arg(op, act), ra = act_from_output_arg(op, ract);
  const float* rmask = rmask_arg(op, rmh, n, 3 * u, &rk);
  py::array dxw = empty({n, t, 3 * u}), dh0 = empty({n, u}), du = empty({u, 3 * u}), db = empty({3 * u});
  float *p1 = mptr(dxw), *p2 = mptr(dh0), *p3 = mptr(du), *p4 = mptr(db);
  nogil([&] {
    ::pynn::gru_backward(cptr(dhs), cptr(h0), cptr(hs), cptr(saved), cptr(uk), mask, rmask, n, t, u, a, ra, p1, p2,
                         p3, p4);
  });
  return py::make_tuple(dxw, dh0, du, db);
}

}  // namespace

void bind_rnn(py::module_& m) {
  py::class_<RecurrentPack, std::shared_ptr<RecurrentPack>>(
      m, "RecurrentKernelPack",
      "RecurrentKernelPack(kernel, gates): a (rows, gates*units) float32 kernel of a recurrent layer packed\n"
      "once in the time loops' column order (gate blocks per 16 units), for their packed_recurrent\n"
      "(the recurrent kernel, rows == units) and lstm_forward_x's packed_kernel (the input kernel, rows ==\n"
      "features) arguments. gates: 1 SimpleRNN, 3 GRU, 4 LSTM. A snapshot: later writes to the array are\n"
      "not seen (pack again).")
      .def(py::init(&make_pack), py::arg("kernel"), py::arg("gates"))
      .def_property_readonly("rows", [](const RecurrentPack& p) { return p.rows; })
      .def_property_readonly("units", [](const RecurrentPack& p) { return p.units; })
      .def_property_readonly("gates", [](const RecurrentPack& p) { return p.gates; })
      .def_property_readonly("nbytes", [](const RecurrentPack& p) { return p.packed.nbytes(); });
  m.def("simple_rnn_forward", &simple_rnn_forward, py::arg("xw"), py::arg("h0"), py::arg("recurrent_kernel"),
        py::arg("mask"), py::arg("activation"), py::arg("recurrent_mask"), py::arg("packed_recurrent") = py::none(),
        "SimpleRNN time loop: xw (N, T, U) input projection -> hs (N, T, U). packed_recurrent: a\n"
        "RecurrentKernelPack of recurrent_kernel, used instead of packing it in this call.");
  m.def("simple_rnn_backward", &simple_rnn_backward, py::arg("dhs"), py::arg("h0"), py::arg("hs"),
        py::arg("recurrent_kernel"), py::arg("mask"), py::arg("activation"), py::arg("recurrent_mask"),
        "SimpleRNN BPTT: returns (dxw, dh0, drecurrent_kernel).");
  m.def("lstm_forward", &lstm_forward, py::arg("xw"), py::arg("h0"), py::arg("c0"), py::arg("recurrent_kernel"),
        py::arg("mask"), py::arg("activation"), py::arg("recurrent_activation"), py::arg("recurrent_mask"),
        py::arg("save_gates") = true, py::arg("xw_scratch") = false, py::arg("packed_recurrent") = py::none(),
        "LSTM time loop (Keras gates i, f, c, o): xw (N, T, 4U) -> (hs, cs, gates); gates None without save_gates; "
        "with xw_scratch the gates may be stored over xw (then returned as that array). packed_recurrent: a "
        "RecurrentKernelPack of recurrent_kernel, used instead of packing it in this call.");
  m.def("lstm_forward_x", &lstm_forward_x, py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("h0"),
        py::arg("c0"), py::arg("recurrent_kernel"), py::arg("mask"), py::arg("activation"),
        py::arg("recurrent_activation"), py::arg("save_gates") = true, py::arg("packed_kernel") = py::none(),
        py::arg("packed_recurrent") = py::none(), py::arg("time_major") = false,
        "LSTM time loop with the input projection inside it: x (N, T, F), kernel (F, 4U), bias (4U,) or None ->\n"
        "(hs, cs, gates) as lstm_forward on xw = x @ kernel + bias, without materialising xw. gates None\n"
        "without save_gates. packed_kernel / packed_recurrent: RecurrentKernelPacks of kernel / recurrent_kernel.\n"
        "time_major: hs, cs, gates are (N, T, .) views of (T, N, .) buffers (lstm_backward's fast layout).");
  m.def("lstm_backward", &lstm_backward, py::arg("dhs"), py::arg("dc_last"), py::arg("h0"), py::arg("c0"),
        py::arg("hs"), py::arg("cs"), py::arg("gates"), py::arg("recurrent_kernel"), py::arg("mask"),
        py::arg("activation"), py::arg("recurrent_activation"), py::arg("recurrent_mask"), py::arg("bias_grad") = false,
        "LSTM BPTT: returns (dxw, dh0, dc0, drecurrent_kernel), and dbias = dxw.sum((0, 1)) last with bias_grad.\n"
        "hs, cs, gates all time-major (lstm_forward_x(time_major=True)), no recurrent_mask: dxw is returned\n"
        "time-major too (an (N, T, 4U) view of a (T, N, 4U) buffer); otherwise C order.");
  m.def(
      "lstm_row_groups",
      [](int64_t n, int64_t units) {
        if (n < 0 || units < 0)
          throw py::value_error("lstm_row_groups: n and units must be >= 0, got " + std::to_string(n) + ", " +
                                std::to_string(units));
        return ::pynn::lstm_row_groups(n, units);
      },
      py::arg("n"), py::arg("units"),
      "Row groups the LSTM time loops (lstm_forward, lstm_forward_x, lstm_backward; not with recurrent\n"
      "dropout) split a batch of n into at the current thread count, one thread per group at a time and\n"
      "no exchange between them; 0: the units are split instead. Same results either way.");
  m.def("gru_forward", &gru_forward, py::arg("xw"), py::arg("h0"), py::arg("recurrent_kernel"),
        py::arg("recurrent_bias"), py::arg("mask"), py::arg("activation"), py::arg("recurrent_activation"),
        py::arg("recurrent_mask"), py::arg("packed_recurrent") = py::none(),
        "GRU time loop (reset_after, gates z, r, h): xw (N, T, 3U) -> (hs, saved). packed_recurrent: a\n"
        "RecurrentKernelPack of recurrent_kernel, used instead of packing it in this call.");
  m.def("gru_backward", &gru_backward, py::arg("dhs"), py::arg("h0"), py::arg("hs"), py::arg("saved"),
        py::arg("recurrent_kernel"), py::arg("mask"), py::arg("activation"), py::arg("recurrent_activation"),
        py::arg("recurrent_mask"), "GRU BPTT: returns (dxw, dh0, drecurrent_kernel, drecurrent_bias).");
}

}  // namespace pynn::bind
