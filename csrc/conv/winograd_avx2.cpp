// AVX2+FMA build of the Winograd transforms (this file alone gets -mavx2 -mfma); reached
// through PYNN_ISA_PICK in winograd.cpp when use_avx2().
#define PYNN_ISA avx2
#include "conv/winograd_impl.h"
