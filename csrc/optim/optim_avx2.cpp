// AVX2+FMA range kernels: the same loops as optim_generic.cpp, compiled with
// -mavx2 -mfma (8-lane vectors, FMA contraction). Reached only through
// runtime dispatch in optim.cpp when the CPU has AVX2+FMA.
#include "optim/optim.h"

namespace pynn {
namespace optim {
namespace avx2 {
#include "optim/optim_kernels.inc"
}  // namespace avx2
}  // namespace optim
}  // namespace pynn
