// 64-byte aligned float buffers for kernel scratch (one home: GEMM, packed GEMM and the
// convolution drivers all use these). Allocation failure is std::bad_alloc, never a crash.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace pynn {

// A buffer of n floats (at least one), freed when it goes out of scope.
struct AlignedBuf {
  float* p = nullptr;
  explicit AlignedBuf(int64_t n) {
    const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
  }
  ~AlignedBuf() { std::free(p); }
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
};

// A buffer that only grows; kept thread_local per role, so steady-state calls allocate nothing.
struct Scratch {
  float* ptr = nullptr;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      std::free(ptr);
      ptr = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      if (!ptr) {
        cap = 0;
        throw std::bad_alloc();
      }
      cap = n;
    }
    return ptr;
  }
  ~Scratch() { std::free(ptr); }
};

}  // namespace pynn
