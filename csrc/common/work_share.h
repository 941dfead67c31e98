// Dynamic work sharing that never waits for a thread that has not started.
//
// On this shared 2-core machine an OpenMP fork/join costs a whole time slice
// whenever the other core is busy with another process: the join waits for a
// worker that has not even been scheduled yet (measured: an 8 MB pooling call
// 0.17 -> 0.5 ms, a 64->64 conv 31 -> 45 ms at load ~5). Here the caller starts on the
// work at once and claims chunks from an atomic counter; helper threads join when
// they wake and claim chunks too. The caller waits only for chunks that a helper
// has already claimed, never for a helper that has not arrived: under load the
// caller simply does (almost) all the work itself, at idle both cores share it.
#pragma once
#include <cstdint>
#include <functional>

namespace pynn {

// Calls body(lo, hi) on disjoint ranges covering [0, n), each at most `chunk` long,
// on up to `threads` threads (the caller and threads-1 persistent helpers).
// threads <= 1, n <= chunk, or another share_work already running: all inline.
// An exception thrown by body (on any thread) is rethrown here after every chunk
// already claimed has finished; the remaining chunks are still run.
void share_work(int64_t n, int64_t chunk, int threads, const std::function<void(int64_t, int64_t)>& body);

}  // namespace pynn
