// AVX2+FMA build of the peak probe's loop (this file alone gets -mavx2 -mfma).
#define PYNN_ISA avx2
#include "common/fma_peak_impl.h"
