// AVX2+FMA build of the optimizer range kernels (this file alone gets -mavx2 -mfma;
// 8-lane vectors, FMA contraction); reached only through the dispatch in optim.cpp.
#define PYNN_ISA avx2
#include "optim/optim_impl.h"
