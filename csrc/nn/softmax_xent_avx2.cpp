// AVX2+FMA build (this file alone gets -mavx2 -mfma); reached only through the
// dispatch in softmax_xent.cpp when use_avx2().
#define PYNN_ISA avx2
#include "nn/softmax_xent_impl.h"
