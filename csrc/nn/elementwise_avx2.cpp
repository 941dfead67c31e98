// AVX2+FMA build of the NumPy-compatible kernels (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in elementwise.cpp when use_avx2(). No FMA
// contraction changes a result here: the loops have no multiply-add.
#define PYNN_ISA avx2
#include "nn/elementwise_impl.h"
