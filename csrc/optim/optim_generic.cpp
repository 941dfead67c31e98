// Portable range kernels (SSE2 auto-vectorised on x86-64): the fallback and oracle.
#include "optim/optim.h"

namespace pynn {
namespace optim {
namespace generic {
#include "optim/optim_kernels.inc"
}  // namespace generic
}  // namespace optim
}  // namespace pynn
