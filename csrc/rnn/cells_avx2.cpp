// AVX2+FMA build of the recurrent cells (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in cells.cpp when use_avx2().
#define PYNN_ISA avx2
#include "rnn/cells_impl.h"
