// AVX2+FMA build of the layer-norm row kernels (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in normalization.cpp when use_avx2().
#define PYNN_ISA avx2
#include "norm/normalization_impl.h"
