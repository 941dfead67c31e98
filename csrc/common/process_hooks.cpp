// Process-level hooks installed when pynn._C loads (static initialisers: no binding needed).
//
// Fork. libgomp's thread pool is not fork-safe: a child forked after the parent ran an
// OpenMP region with more than one thread blocks forever in its first such region
// (the pool's threads do not exist in the child). The share_work pool's mutex may also be
// held by a parent thread that the child does not have. So a child forked after any
// multi-threaded kernel (or while one runs on another thread) runs every kernel on its
// calling thread, as PyTorch's OpenMP builds do; a child of a parent that never went
// multi-threaded keeps its threads. pthread_atfork also covers forks that do not go through
// os.fork (C extensions).
//
// Exit. Before Python 3.14 a daemon thread that tries to take the GIL back after the
// interpreter started finalising is ended with pthread_exit(), whose forced unwind runs
// through pybind11's gil_scoped_release destructor (noexcept): std::terminate, SIGABRT at
// every exit while such a thread was inside a kernel. The terminate handler below parks
// that thread instead (what Python 3.14 does itself); the main thread is finishing the
// exit and takes the parked thread with it.
//
// Windows has neither fork nor pthread_exit unwinding: nothing to install there.
#include <Python.h>

#include "common/parallel.h"

#if defined(__linux__) || defined(__APPLE__)
#include <cstdlib>
#include <exception>

#include <pthread.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

namespace pynn {
namespace {

std::terminate_handler g_previous_terminate = nullptr;

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

bool on_main_thread() {
#if defined(__linux__)
  return static_cast<long>(getpid()) == static_cast<long>(syscall(SYS_gettid));
#else
  return pthread_main_np() != 0;
#endif
}

[[noreturn]] void terminate_handler() {
  if (interpreter_finalizing() && !on_main_thread()) {
    for (;;) pause();  // never returns: the process exits from the main thread
  }
  if (g_previous_terminate) g_previous_terminate();
  std::abort();
}

void child_after_fork() { detail::after_fork_in_child(); }

const bool g_installed = [] {
  g_previous_terminate = std::set_terminate(terminate_handler);
  pthread_atfork(nullptr, nullptr, child_after_fork);
  return true;
}();

}  // namespace
}  // namespace pynn
#endif
