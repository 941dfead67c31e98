// The extension module pynn._C: runtime settings here, every kernel family's
// bindings from its bind_<family>.cpp (helpers: common/binding.h).
#include "common/binding.h"
#include "common/dispatch.h"
#include "common/fma_peak.h"
#include "common/parallel.h"

namespace py = pybind11;
using namespace pynn;

// mod_gil_not_used: on free-threaded CPython (3.13t) importing _C keeps the GIL
// off. The module's global settings are atomics (dispatch.cpp, parallel.cpp)
// and every kernel already runs with the GIL released, so two Python threads
// calling kernels at once is a case GIL builds exercise too.
PYBIND11_MODULE(_C, m, py::mod_gil_not_used()) {
  m.doc() = "pynn native kernels (C++17, OpenMP, AVX2 with runtime dispatch).";
  m.def("num_threads", &num_threads, "Threads the native kernels use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the threads the native kernels use (n >= 1).");
  m.def("cpu_has_avx2_fma", &cpu_has_avx2_fma, "Whether this CPU can run the AVX2+FMA kernels.");
  m.def("isa", [] { return std::string(isa_name(active_isa())); }, "ISA the kernels dispatch to.");
  m.def(
      "set_isa",
      [](const std::string& name) {
        if (name == "generic") set_isa(Isa::Generic);
        else if (name == "avx2") set_isa(Isa::Avx2);
        else throw py::value_error("set_isa: expected 'generic' or 'avx2', got '" + name + "'");
      },
      py::arg("name"), "Choose the kernels' ISA: 'generic' or 'avx2' (ValueError without AVX2+FMA).");
  m.def(
      "fma_peak_gflops",
      [](int threads, int64_t iterations) {
        py::gil_scoped_release release;
        return fma_peak_gflops(threads, iterations);
      },
      py::arg("threads"), py::arg("iterations"),
      "GFLOPS of `threads` threads each running `iterations` steps of 12 independent 8-lane "
      "multiply-add chains at once on the active ISA (the machine's measured peak; bench/peak.py).");
#ifdef PYNN_OPENMP
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
  bind::bind_gemm(m);
  bind::bind_nn(m);
  bind::bind_conv(m);
  bind::bind_pool(m);
  bind::bind_norm(m);
  bind::bind_optim(m);
  bind::bind_rnn(m);
  bind::bind_seq(m);
}
