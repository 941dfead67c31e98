// AVX2+FMA build of the recurrent cells (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in cells.cpp when active_isa() is AVX2.
#define PYNN_RNN_ISA avx2
#include "rnn/cells_impl.h"
