// AVX2+FMA build of the softmax_xent kernels (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in softmax_xent.cpp when active_isa() is AVX2.
#define PYNN_NN_ISA avx2
#include "nn/softmax_xent_impl.h"
