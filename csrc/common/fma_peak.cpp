// Generic build of the peak probe's loop, and the driver that runs it on every thread.
#define PYNN_ISA generic
#include "common/fma_peak_impl.h"
#undef PYNN_ISA

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pynn {

double fma_peak_gflops(int threads, int64_t iterations) {
  if (threads < 1 || threads > 1024)
    throw std::invalid_argument("fma_peak_gflops: threads must be in [1, 1024], got " + std::to_string(threads));
  if (iterations < 1)
    throw std::invalid_argument("fma_peak_gflops: iterations must be >= 1, got " + std::to_string(iterations));
  // Plain threads, not the kernels' share_work pool: a share_work part whose helper is
  // late is run by the caller after its own, which would time the parts one after the
  // other. Here every thread must run at the same time, or the host is not giving us
  // its cores -- and then that is what the number should say.
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<float> sink(static_cast<size_t>(threads));
  auto body = [&](int t) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    sink[static_cast<size_t>(t)] = PYNN_ISA_CALL(fma_chains, iterations);
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
  while (ready.load() < threads - 1) std::this_thread::yield();
  const auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  body(0);
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float keep = 0.f;  // the chains' results are used, so the loops cannot be dropped
  for (float v : sink) keep += v;
  if (!(keep > 0.f)) throw std::runtime_error("fma_peak_gflops: the probe's chains did not run");
  const double flops = 2.0 * kFmaPeakChains * kFmaPeakLanes * static_cast<double>(iterations) * threads;
  return flops / seconds / 1e9;
}

}  // namespace pynn
