// AVX2+FMA build of the softmax kernels (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in softmax.cpp when active_isa() is AVX2.
#define PYNN_NN_ISA avx2
#include "nn/softmax_impl.h"
