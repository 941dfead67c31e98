// An exception cannot leave an OpenMP region or a helper thread (std::terminate: the whole
// process aborts). Bodies that may throw (std::bad_alloc from a scratch buffer) run inside
// FirstError::run, which keeps the first exception; the calling thread rethrows it after the
// region, where pybind11 turns std::bad_alloc into MemoryError.
#pragma once
#include <exception>
#include <mutex>

namespace pynn {

class FirstError {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!e_) e_ = std::current_exception();
    }
  }
  // On the calling thread, after every thread of the region is done.
  void rethrow() {
    if (e_) std::rethrow_exception(e_);
  }

 private:
  std::mutex m_;
  std::exception_ptr e_;
};

}  // namespace pynn
