// AVX2+FMA build of the activation kernels (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in activations.cpp when active_isa() is AVX2.
#define PYNN_NN_ISA avx2
#include "nn/activations_impl.h"
