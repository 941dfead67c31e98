#include "rnn/recurrent.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/first_error.h"
#include "common/parallel.h"
#include "gemm/gemm.h"
#include "gemm/packed.h"
#include "rnn/cells.h"

// Per step: one recurrent GEMM into a small scratch (n x G·U, stays in L2) and
// one fused, vectorised cell pass (rnn/cells.h) that adds the precomputed
// input projection, applies the gates and writes the states. Backward: per
// step the cell's derivative pass and one GEMM dz·Uᵀ for dh_{t-1}; the weight
// gradient dU = Σ_t h_{t-1}ᵀ dz_t is one GEMM over all N·T rows after the loop
// (K = N·T instead of T GEMMs with K = N). The recurrent kernel U (and Uᵀ for
// the backward) is packed into the GEMM's panel layout once per call
// (gemm/packed.h) and reused by every time step, forward and backward, never
// inside a step's GEMM; the forward also takes a pack made once by the caller
// (pack_recurrent, _C.RecurrentKernelPack: inference plans hold one per weights).

namespace pynn {
namespace {

constexpr int64_t kGrain = 1 << 14;

// A hint to bring p's line into this core's L2 (x86: prefetcht1); nothing elsewhere.
inline void prefetch_l2(const float* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 0, 2);
#else
  (void)p;
#endif
}

inline bool keep(const uint8_t* mask, int64_t row, int64_t t_len, int64_t t) { return !mask || mask[row * t_len + t]; }

// rows of the batch in parallel for the fused elementwise passes
template <class F>
void rows(int64_t n, int64_t width, F f) {
  parallel_for(n, width, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) f(r);
  });
}

// U (U x G·U) packed once per call for the step GEMMs h·U: whole, or per gate
// block (U x U each) with recurrent dropout, where block k multiplies h ⊙ m_k.
std::vector<PackedB> pack_u(const float* u, int64_t units, int64_t g, bool per_gate) {
  const int64_t gu = g * units;
  std::vector<PackedB> p;
  if (!per_gate) {
    p.emplace_back(units, gu, u, gu, 1);
  } else {
    for (int64_t k = 0; k < g; ++k) p.emplace_back(units, units, u + k * units, gu, 1);
  }
  return p;
}

// Uᵀ (G·U x U) packed once per call for the backward's dz·Uᵀ (read straight
// from U: a column-major view), whole or per gate block (U_kᵀ, U x U).
std::vector<PackedB> pack_ut(const float* u, int64_t units, int64_t g, bool per_gate) {
  const int64_t gu = g * units;
  std::vector<PackedB> p;
  if (!per_gate) {
    p.emplace_back(gu, units, u, 1, gu);
  } else {
    for (int64_t k = 0; k < g; ++k) p.emplace_back(units, units, u + k * units, 1, gu);
  }
  return p;
}

// rec (n x G·U) = h U (+ bias): the step's recurrent GEMM against U packed by
// pack_u. With recurrent dropout gate block k sees h ⊙ m_k instead: G GEMMs of
// n x U x U over a masked copy hd (n x G·U) of h.
void rec_forward(int64_t n, int64_t units, int64_t g, const float* h, int64_t rs_h, const std::vector<PackedB>& up,
                 const float* rmask, float* hd, float* rec, const float* bias) {
  const int64_t gu = g * units;
  if (!rmask) {
    sgemm_packed(n, 1.f, h, rs_h, 1, up[0], 0.f, rec, gu, 1, bias, Act::Linear, 0.f);
    return;
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < g; ++k)
      for (int64_t j = 0; j < units; ++j) hd[r * gu + k * units + j] = h[r * rs_h + j] * rmask[r * gu + k * units + j];
  for (int64_t k = 0; k < g; ++k)
    sgemm_packed(n, 1.f, hd + k * units, gu, 1, up[k], 0.f, rec + k * units, gu, 1, bias ? bias + k * units : nullptr,
                 Act::Linear, 0.f);
}

// dh (n x U) = dz Uᵀ for one step's dz (n x G·U, row stride rs_dz), or
// Σ_k (dz_k U_kᵀ) ⊙ m_k with recurrent dropout (buf: n x G·U scratch); ut from pack_ut.
void rec_backward_h(int64_t n, int64_t units, int64_t g, const float* dz, int64_t rs_dz,
                    const std::vector<PackedB>& ut, const float* rmask, float* buf, float* dh) {
  const int64_t gu = g * units;
  if (!rmask) {
    sgemm_packed(n, 1.f, dz, rs_dz, 1, ut[0], 0.f, dh, units, 1, nullptr, Act::Linear, 0.f);
    return;
  }
  for (int64_t k = 0; k < g; ++k)
    sgemm_packed(n, 1.f, dz + k * units, rs_dz, 1, ut[k], 0.f, buf + k * units, gu, 1, nullptr, Act::Linear, 0.f);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < units; ++j) {
      float acc = 0.f;
      for (int64_t k = 0; k < g; ++k) acc += buf[r * gu + k * units + j] * rmask[r * gu + k * units + j];
      dh[r * units + j] = acc;
    }
}

// dU (U x G·U) = Σ_t h_{t-1}ᵀ dz_t as one GEMM with K = N·T: the inputs of every
// step, [h0, h_1 .. h_{T-2}] per sample, are gathered into rows matching dz's
// (N·T, G·U) rows (with recurrent dropout, gate block k's copy is masked by m_k).
// db (G·U floats, or null): Σ over all N·T rows of dz, the input bias's gradient.
// Without recurrent dropout it is one more row of the same GEMM -- a column of
// ones beside the gathered h (U+1 rows of output fill the same 6-row tiles as U
// for U = 128) -- instead of another pass over the (N, T, G·U) gradient.
// time_major: hs is (T, N, U) in memory and dz's rows are in (t, n) order; else (N, T, ·) and (n, t).
void rec_backward_u(int64_t n, int64_t t_len, int64_t units, int64_t g, const float* h0, const float* hs,
                    const float* dz, const float* rmask, float* du, float* db = nullptr, bool time_major = false) {
  const int64_t gu = g * units, rows_nt = n * t_len;
  if (units == 0) return;  // du and db are empty
  const bool ones = db && !rmask;
  const int64_t w = rmask ? gu : units + (ones ? 1 : 0);
  std::vector<float> hp(static_cast<size_t>(rows_nt * w));
  rows(n, t_len * w, [&](int64_t r) {
    for (int64_t t = 0; t < t_len; ++t) {
      const int64_t prev = time_major ? (t - 1) * n + r : r * t_len + t - 1;  // h_{t-1}'s row in hs
      const float* src = t ? hs + prev * units : h0 + r * units;
      float* dst = hp.data() + (time_major ? t * n + r : r * t_len + t) * w;
      if (!rmask) {
        std::memcpy(dst, src, sizeof(float) * units);
        if (ones) dst[units] = 1.f;
        continue;
      }
      for (int64_t k = 0; k < g; ++k)
        for (int64_t j = 0; j < units; ++j) dst[k * units + j] = src[j] * rmask[r * gu + k * units + j];
    }
  });
  if (ones) {
    std::vector<float> dub(static_cast<size_t>((units + 1) * gu));
    sgemm_split_k(units + 1, gu, rows_nt, hp.data(), w, dz, gu, dub.data(), gu);
    std::memcpy(du, dub.data(), sizeof(float) * units * gu);
    std::memcpy(db, dub.data() + units * gu, sizeof(float) * gu);
    return;
  }
  if (!rmask) {
    sgemm_split_k(units, gu, rows_nt, hp.data(), units, dz, gu, du, gu);
  } else {
    for (int64_t k = 0; k < g; ++k)
      sgemm_split_k(units, units, rows_nt, hp.data() + k * units, gu, dz + k * units, gu, du + k * units, gu);
  }
  if (db) {  // recurrent dropout (training's per-step path): a plain column sum
    std::memset(db, 0, sizeof(float) * gu);
    for (int64_t row = 0; row < rows_nt; ++row)
      for (int64_t j = 0; j < gu; ++j) db[j] += dz[row * gu + j];
  }
}

}  // namespace

// ---------------------------------------------------------------- SimpleRNN
void simple_rnn_forward(const float* xw, const float* h0, const float* u, const uint8_t* mask, const float* rmask,
                        int64_t n, int64_t t_len, int64_t units, Act act, float* hs, const PackedB* packed_u) {
  if (units <= 0) return;  // every output is empty
  const int64_t rs = t_len * units;  // row stride of (N, T, U) arrays
  std::vector<float> rec(n * units), hd(rmask ? n * units : 0);
  // Packed once for all steps (pack_u), unless the caller holds a pack (no recurrent dropout).
  const std::vector<PackedB> up = packed_u && !rmask ? std::vector<PackedB>() : pack_u(u, units, 1, rmask != nullptr);
  const PackedB& whole = packed_u && !rmask ? *packed_u : up[0];
  for (int64_t t = 0; t < t_len; ++t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    if (rmask)
      rec_forward(n, units, 1, hp, rs_hp, up, rmask, hd.data(), rec.data(), nullptr);
    else
      sgemm_packed(n, 1.f, hp, rs_hp, 1, whole, 0.f, rec.data(), units, 1, nullptr, Act::Linear, 0.f);
    rows(n, units, [&](int64_t r) {
      rnn::simple_fwd(act, units, xw + r * rs + t * units, rec.data() + r * units, hp + r * rs_hp,
                      keep(mask, r, t_len, t), hs + r * rs + t * units);
    });
  }
}

void simple_rnn_backward(const float* dhs, const float* h0, const float* hs, const float* u, const uint8_t* mask,
                         const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, float* dxw, float* dh0,
                         float* du) {
  if (units <= 0) return;  // every output is empty
  const int64_t rs = t_len * units;
  std::vector<float> dh(n * units, 0.f), tmp(n * units), buf(rmask ? n * units : 0);
  const std::vector<PackedB> ut = pack_ut(u, units, 1, rmask != nullptr);
  for (int64_t t = t_len - 1; t >= 0; --t) {
    float* dz = dxw + t * units;
    rows(n, units, [&](int64_t r) {
      rnn::simple_bwd(act, units, hs + r * rs + t * units, dhs + r * rs + t * units, keep(mask, r, t_len, t),
                      dh.data() + r * units, dz + r * rs);
    });
    rec_backward_h(n, units, 1, dz, rs, ut, rmask, buf.data(), tmp.data());
    rows(n, units, [&](int64_t r) {
      if (!keep(mask, r, t_len, t)) return;  // a masked step passed dh through unchanged
      std::memcpy(&dh[r * units], &tmp[r * units], sizeof(float) * units);
    });
  }
  rec_backward_u(n, t_len, units, 1, h0, hs, dxw, rmask, du);
  std::copy(dh.begin(), dh.end(), dh0);  // (memcpy from an empty vector's null data() is UB)
}

// ---------------------------------------------------------------- LSTM
static void lstm_forward_per_step(const float* xw, const float* h0, const float* c0, const float* u, const uint8_t* mask,
                  const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs, float* cs,
                  float* gates) {
  if (units <= 0) return;  // every output is empty
  const int64_t g4 = 4 * units, rs = t_len * units, rs_g = t_len * g4;
  std::vector<float> rec(n * g4), hd(rmask ? n * g4 : 0);
  const std::vector<PackedB> up = pack_u(u, units, 4, rmask != nullptr);
  for (int64_t t = 0; t < t_len; ++t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const float* cp = t ? cs + (t - 1) * units : c0;
    const int64_t rs_hp = t ? rs : units;
    rec_forward(n, units, 4, hp, rs_hp, up, rmask, hd.data(), rec.data(), nullptr);
    rows(n, g4, [&](int64_t r) {
      rnn::lstm_fwd(act, ract, units, xw + r * rs_g + t * g4, units, rec.data() + r * g4, units, cp + r * rs_hp,
                    hp + r * rs_hp, keep(mask, r, t_len, t), gates + r * rs_g + t * g4, units,
                    cs + r * rs + t * units, hs + r * rs + t * units);
    });
  }
}

static void lstm_backward_per_step(const float* dhs, const float* dc_last, const float* h0, const float* c0, const float* hs,
                   const float* cs, const float* gates, const float* u, const uint8_t* mask, const float* rmask,
                   int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* dxw, float* dh0, float* dc0,
                   float* du, float* db) {
  if (units <= 0) return;  // every output is empty
  const int64_t g4 = 4 * units, rs = t_len * units, rs_g = t_len * g4;
  std::vector<float> dh(n * units, 0.f), dc(dc_last, dc_last + n * units), tmp(n * units);
  std::vector<float> buf(rmask ? n * g4 : 0);
  const std::vector<PackedB> ut = pack_ut(u, units, 4, rmask != nullptr);
  for (int64_t t = t_len - 1; t >= 0; --t) {
    const float* cp = t ? cs + (t - 1) * units : c0;
    const int64_t rs_hp = t ? rs : units;
    float* dz = dxw + t * g4;
    rows(n, g4, [&](int64_t r) {
      rnn::lstm_bwd(act, ract, units, gates + r * rs_g + t * g4, units, cs + r * rs + t * units, cp + r * rs_hp,
                    dhs + r * rs + t * units, keep(mask, r, t_len, t), dh.data() + r * units, dc.data() + r * units,
                    dz + r * rs_g, units);
    });
    rec_backward_h(n, units, 4, dz, rs_g, ut, rmask, buf.data(), tmp.data());
    rows(n, units, [&](int64_t r) {
      if (!keep(mask, r, t_len, t)) return;
      std::memcpy(&dh[r * units], &tmp[r * units], sizeof(float) * units);
    });
  }
  rec_backward_u(n, t_len, units, 4, h0, hs, dxw, rmask, du, db);
  std::copy(dh.begin(), dh.end(), dh0);  // (memcpy from an empty vector's null data() is UB)
  std::copy(dc.begin(), dc.end(), dc0);
}

// ---------------------------------------------------------------- GRU (reset_after)
static void gru_forward_per_step(const float* xw, const float* h0, const float* u, const float* rbias, const uint8_t* mask,
                 const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs,
                 float* saved) {
  if (units <= 0) return;  // every output is empty
  const int64_t g3 = 3 * units, rs = t_len * units, rs_x = t_len * g3, rs_s = t_len * 4 * units;
  std::vector<float> rec(n * g3), hd(rmask ? n * g3 : 0);
  const std::vector<PackedB> up = pack_u(u, units, 3, rmask != nullptr);
  for (int64_t t = 0; t < t_len; ++t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    rec_forward(n, units, 3, hp, rs_hp, up, rmask, hd.data(), rec.data(), rbias);
    rows(n, g3, [&](int64_t r) {
      rnn::gru_fwd(act, ract, units, xw + r * rs_x + t * g3, units, rec.data() + r * g3, units, hp + r * rs_hp,
                   keep(mask, r, t_len, t), saved + r * rs_s + t * 4 * units, units, hs + r * rs + t * units);
    });
  }
}

static void gru_backward_per_step(const float* dhs, const float* h0, const float* hs, const float* saved, const float* u,
                  const uint8_t* mask, const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract,
                  float* dxw, float* dh0, float* du, float* drbias) {
  if (units <= 0) return;  // every output is empty
  const int64_t g3 = 3 * units, rs = t_len * units, rs_x = t_len * g3, rs_s = t_len * 4 * units;
  // drec for every step (N, T, 3U): the recurrent side's gradients, which differ
  // from dxw in the h block (r·dh̃), feed dU and the recurrent bias after the loop.
  std::vector<float> dh(n * units, 0.f), drec(static_cast<size_t>(n * t_len * g3)), tmp(n * units);
  std::vector<float> buf(rmask ? n * g3 : 0);
  const std::vector<PackedB> ut = pack_ut(u, units, 3, rmask != nullptr);
  for (int64_t t = t_len - 1; t >= 0; --t) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    float* dr = drec.data() + t * g3;
    rows(n, g3, [&](int64_t r) {
      rnn::gru_bwd(act, ract, units, saved + r * rs_s + t * 4 * units, units, hp + r * rs_hp,
                   dhs + r * rs + t * units, keep(mask, r, t_len, t), dh.data() + r * units, dxw + r * rs_x + t * g3,
                   units, dr + r * rs_x, units);
    });
    rec_backward_h(n, units, 3, dr, rs_x, ut, rmask, buf.data(), tmp.data());
    rows(n, units, [&](int64_t r) {
      if (!keep(mask, r, t_len, t)) return;
      for (int64_t j = 0; j < units; ++j) dh[r * units + j] += tmp[r * units + j];
    });
  }
  rec_backward_u(n, t_len, units, 3, h0, hs, drec.data(), rmask, du);
  std::memset(drbias, 0, sizeof(float) * g3);
  for (int64_t row = 0; row < n * t_len; ++row) {
    const float* d = drec.data() + row * g3;
    for (int64_t j = 0; j < g3; ++j) drbias[j] += d[j];
  }
  std::copy(dh.begin(), dh.end(), dh0);  // (memcpy from an empty vector's null data() is UB)
}


// ---------------------------------------------------------------- fused time loops
// Without recurrent dropout the LSTM/GRU loops run as one stream of work items
// (step_chunks). The units are cut into chunks; a chunk is one sgemm (n x G·w x U, run by one
// thread) against its own columns of U -- the G gate blocks of its w units,
// side by side per 16 units (pack_recurrent: packed once per call, or once per
// weights by an inference plan) -- immediately followed by the cell
// pass on those units while the result is hot in L1/L2. Chunks are dealt
// dynamically, so a thread that the (shared) machine deschedules does not stall
// the other at a fixed split; h_t must be complete before any chunk of step
// t+1 reads it (step_chunks waits for that, without a team barrier).
namespace {

struct Chunks {
  int64_t size, count;
  int threads;
};

// Up to 4 chunks per thread (dynamic balance) of at least 16 units, a multiple
// of 16 (= the packed GEMM's panel width NR), so every chunk's columns of the
// packed U (G·u0 ...) and Uᵀ (u0 ...) start on a panel boundary. A step's
// GEMM of n·G·U² multiply-adds goes to 2+ threads from 2^15 (batch 1 at
// U = 128: a 1x128x512 product per step, ~4 us at one thread); small steps get
// fewer, larger chunks, each worth >= 2^15 multiply-adds, since every item also
// pays a claim and a wait for the previous step.
Chunks make_chunks(int64_t n, int64_t units, int64_t g) {
  Chunks c;
  const int64_t work = n * g * units * units;
  c.threads = threads_for(work, int64_t{1} << 15);
  if (units <= 0) {  // zero-width states: nothing to deal out
    c.size = 1;
    c.count = 0;
    return c;
  }
  const int64_t per_thread = std::min<int64_t>(4, std::max<int64_t>(1, work / (int64_t{c.threads} << 15)));
  int64_t size = (units + per_thread * c.threads - 1) / (per_thread * c.threads);
  size = std::max<int64_t>(16, (size + 15) / 16 * 16);
  c.size = std::min(size, units);
  c.count = (units + c.size - 1) / c.size;
  return c;
}

// body(s, c) for every step s < steps and chunk c < ch.count, where step s
// needs all of step s-1 finished (h_{t-1} is read whole by every chunk's GEMM).
// Items (s, c) are claimed in order from share_work's counter (common/parallel.h):
// the caller starts at once and a helper joins when it is scheduled, so a
// descheduled thread holds up at most the one item it claimed -- an OpenMP
// team with a barrier per step waited for both threads at every step, which
// on the shared, loaded machine cost a time slice per step (measured: a
// forward of 50 steps 3.7 ms when both cores were free, 50-70 ms at load ~9,
// while 1 thread took 7-16 ms). Claims are monotonic, so a waiting thread
// only ever waits for items already being run: no deadlock. The result does
// not depend on which thread runs an item.
template <class F>
void step_chunks_early(const Chunks& ch, int64_t steps, F&& body);

template <class F>
void step_chunks(const Chunks& ch, int64_t steps, F&& body) {
  step_chunks_early(ch, steps, [&](int64_t s, int64_t c, auto&& wait_prev) {
    wait_prev();
    body(s, c);
  });
}

// step_chunks for bodies with a part that does not read step s-1's results:
// body(s, c, wait_prev) runs that part first and calls wait_prev() before it
// reads them (the LSTM's x_t W, while the other thread finishes step s-1).
// Before body(s, c) starts, every item of step s-2 is done (so a buffer
// indexed by s % 2 is free to overwrite).
template <class F>
void step_chunks_early(const Chunks& ch, int64_t steps, F&& body) {
  if (ch.threads <= 1 || ch.count <= 1) {
    for (int64_t s = 0; s < steps; ++s)
      for (int64_t c = 0; c < ch.count; ++c) body(s, c, [] {});
    return;
  }
  std::unique_ptr<std::atomic<int64_t>[]> done(new std::atomic<int64_t>[static_cast<size_t>(steps)]);
  for (int64_t s = 0; s < steps; ++s) done[s].store(0, std::memory_order_relaxed);
  auto wait_step = [&](int64_t s) {
    while (done[s].load(std::memory_order_acquire) < ch.count) std::this_thread::yield();
  };
  FirstError err;  // a GEMM scratch that fails to grow: the item still counts as done, rethrown after
  share_work(steps * ch.count, 1, ch.threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t s = i / ch.count, c = i % ch.count;
      if (s > 1) wait_step(s - 2);
      bool waited = s == 0;
      err.run([&] {
        body(s, c, [&] {
          if (!waited) wait_step(s - 1);
          waited = true;
        });
      });
      if (!waited) wait_step(s - 1);  // (a body that threw before waiting): keep the order
      done[s].fetch_add(1, std::memory_order_release);
    }
  });
  err.rethrow();
}

// Row groups: the batch split across threads instead of the units. Row r of h_t
// needs only row r of h_{t-1} (and c_{t-1}), so a group of rows runs its whole
// recurrence with no exchange between threads: no wait for the other thread at
// every step, and h, c stay in the cache of the core that wrote them. The unit
// chunks above need all of h_{t-1} in every chunk, so every step ended in a wait
// for the slowest chunk (profile, LSTM(128) b64 x 50 at 2 threads: 10-16% of the
// samples in the wait's sched_yield) and half of h_{t-1} and c_{t-1} crossed cores.
// Each thread then streams all of the packed U per step (from its own L2: 256 KiB
// at U = 128) instead of half; the GEMM's per-row results do not depend on the
// rows beside them (packed.h), so the split does not change any bit.
struct RowGroups {
  int64_t size = 0, count = 0, n_rows = 0;
  int threads = 1;
};

// Groups only when every thread gets >= kGroupMinRows rows (the GEMM keeps whole
// 6-row tiles busy); count 0 = use the unit chunks (small batches, many threads).
constexpr int64_t kGroupMinRows = 16;

RowGroups make_row_groups(int64_t n, const Chunks& ch) {
  RowGroups g;
  if (ch.threads <= 1 || n < kGroupMinRows * ch.threads) return g;  // (even where the units make one chunk)
  g.threads = ch.threads;
  g.n_rows = n;
  g.count = ch.threads;
  g.size = (n + g.count - 1) / g.count;
  g.count = (n + g.size - 1) / g.size;
  return g;
}

// body(s, r0, r1) for every step s < steps and row group [r0, r1), where (s, g)
// needs (s-1, g) finished and nothing of another group. A thread claims a whole
// group from share_work's counter and runs all its steps, with no wait between
// steps. (Claiming (s, g) items in order, as step_chunks_early does, coupled the
// threads at every step: a thread that claimed (s+1, g) waited for the other's
// (s, g), so a helper descheduled on the loaded machine stalled the caller within
// one step. Profile, LSTM(128) b64 x 50 fwd+bwd at 2 threads, load ~7: 40% of the
// forward's and 28% of the BPTT's main-thread samples were in that wait's
// sched_yield.) A helper that starts late finds its group taken by the caller
// (share_work), never waited for. The groups and each group's operations are the
// same whichever thread runs them, so the result does not change by a bit.
template <class F>
void step_row_groups(const RowGroups& g, int64_t steps, F&& body) {
  FirstError err;  // a GEMM scratch that fails to grow: the group's later steps still run, rethrown after
  share_work(g.count, 1, g.threads, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t r0 = c * g.size, r1 = std::min(r0 + g.size, g.n_rows);
      for (int64_t s = 0; s < steps; ++s) err.run([&] { body(s, r0, r1); });
    }
  });
  err.rethrow();
}

// U (U x G·U, gate blocks) -> block-major: the units are cut into blocks of
// kRecBlock (= the packed GEMM's panel width NR) and block [v0, v0+w) owns the
// columns [G·v0, G·(v0+w)), gate k at G·v0 + k·w. A chunk (a multiple of
// kRecBlock units) then owns a contiguous run of whole panels, whatever the
// chunk size: so the packed matrix does not depend on the thread count or the
// batch, and a caller may pack it once for many calls (RecurrentPack). The same
// for a (G·U) bias.
constexpr int64_t kRecBlock = PackedB::kNR;

void block_columns(const float* src, int64_t rows_, int64_t units, int64_t g, float* dst) {
  const int64_t gu = g * units;
  for (int64_t i = 0; i < rows_; ++i)
    for (int64_t v0 = 0; v0 < units; v0 += kRecBlock) {
      const int64_t w = std::min(kRecBlock, units - v0);
      for (int64_t k = 0; k < g; ++k)
        std::memcpy(dst + i * gu + g * v0 + k * w, src + i * gu + k * units + v0, sizeof(float) * w);
    }
}

// f(v0, w) for the kRecBlock-unit blocks of units [u0, u0 + len).
template <class F>
inline void for_blocks(int64_t u0, int64_t len, F&& f) {
  for (int64_t v0 = u0; v0 < u0 + len; v0 += kRecBlock) f(v0, std::min(kRecBlock, u0 + len - v0));
}

// Panels [p0, p1) of a packed matrix holding columns [c0, c0 + w) (c0 a multiple of NR).
inline int64_t panel_lo(int64_t c0) { return c0 / PackedB::kNR; }
inline int64_t panel_hi(int64_t c0, int64_t w) { return (c0 + w + PackedB::kNR - 1) / PackedB::kNR; }

}  // namespace

PackedB pack_gate_blocks(const float* m, int64_t rows, int64_t units, int64_t gates) {
  const int64_t gu = gates * units;
  if (gates == 1) return PackedB(rows, gu, m, gu, 1);  // one gate: the block order is m's own
  std::vector<float> mp(static_cast<size_t>(rows * gu));
  block_columns(m, rows, units, gates, mp.data());
  return PackedB(rows, gu, mp.data(), gu, 1);
}

PackedB pack_recurrent(const float* u, int64_t units, int64_t gates) { return pack_gate_blocks(u, units, units, gates); }

namespace {

// The LSTM forward loop of lstm_forward (xw given) and lstm_forward_x (x, W given:
// each chunk's pre-activations start as x_t W + b for its columns, the GEMM
// then adds h_{t-1} U into them; no (N, T, 4U) xw is written or read).
struct LstmInput {
  const float* xw;                 // (N, T, 4U) or null
  const float* x; int64_t features;  // (N, T, F), with wp (F x 4U, gate blocks) and bias (4U, same order)
  const PackedB* wp; const float* bias;
};

void lstm_forward_loop(const LstmInput& in, const float* h0, const float* c0, const float* u, const uint8_t* mask,
                       int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs, float* cs, float* gates,
                       const PackedB* packed_u, bool time_major) {
  const int64_t g4 = 4 * units, rs_g = t_len * g4;  // xw: (N, T, 4U)
  // hs, cs: row r, step t at r * rs + t * ts; gates at r * rs_q + t * ts_q (SeqLayout).
  const SeqLayout ls(n, t_len, units, time_major), lq(n, t_len, g4, time_major);
  const int64_t rs = ls.rs, ts = ls.ts, rs_q = lq.rs, ts_q = lq.ts;
  const Chunks ch = make_chunks(n, units, 4);
  // Two step buffers for the pre-activations: step t's x_t W goes into rec[t % 2] while another
  // thread may still be running step t-1's cell pass on rec[(t-1) % 2].
  std::vector<float> rec_buf(static_cast<size_t>(2 * n * g4));
  PackedB own;  // packed here once for all steps, unless the caller holds a pack
  if (!packed_u) own = pack_recurrent(u, units, 4);
  const PackedB& upk = packed_u ? *packed_u : own;
  const RowGroups rg = make_row_groups(n, ch);
  if (rg.count > 0) {  // the batch split: each group of rows runs all its columns, no exchange
    step_row_groups(rg, t_len, [&](int64_t t, int64_t r0, int64_t r1) {
      const int64_t m = r1 - r0;
      const float* hp = t ? hs + (t - 1) * ts + r0 * rs : h0 + r0 * units;
      const float* cp = t ? cs + (t - 1) * ts + r0 * rs : c0 + r0 * units;
      const int64_t rs_hp = t ? rs : units;
      float* rec = rec_buf.data() + r0 * g4;  // a group's rows of one buffer: its step t-1 is done
      // Block by block of kRecBlock units (their 4 gates: 4 panels), each block's pre-activations
      // (m x 64 floats, 8 KiB at m = 32) made and consumed by the cell pass while in L1; the
      // whole width at once left m x 4U (64 KiB) for the pass to read back from L2.
      for_blocks(0, units, [&](int64_t v0, int64_t bw) {
        const int64_t p0 = panel_lo(4 * v0), p1 = panel_hi(4 * v0, 4 * bw);
        float* rc = rec + 4 * v0;
        float beta = 0.f;
        if (!in.xw) {
          sgemm_packed_panels(m, 1.f, in.x + r0 * t_len * in.features + t * in.features, t_len * in.features, 1,
                              *in.wp, p0, p1, 0.f, rc, g4, 1, in.bias ? in.bias + 4 * v0 : nullptr, Act::Linear,
                              0.f);
          beta = 1.f;
        }
        sgemm_packed_panels(m, 1.f, hp, rs_hp, 1, upk, p0, p1, beta, rc, g4, 1, nullptr, Act::Linear, 0.f);
        const int64_t o = r0 * rs + t * ts + v0, og = r0 * rs_g + t * g4 + v0, oq = r0 * rs_q + t * ts_q + v0;
        rnn::lstm_fwd_block(act, ract,
                            {m, bw, in.xw ? in.xw + og : nullptr, rs_g, units, rc, g4, bw, cp + v0,
                             rs_hp, gates ? gates + oq : nullptr, rs_q, units, cs + o, rs, hs + o, rs});
      });
      if (mask)  // a masked step keeps the previous state
        for (int64_t r = r0; r < r1; ++r)
          if (!keep(mask, r, t_len, t)) {
            std::memcpy(cs + r * rs + t * ts, cp + (r - r0) * rs_hp, sizeof(float) * units);
            std::memcpy(hs + r * rs + t * ts, hp + (r - r0) * rs_hp, sizeof(float) * units);
          }
    });
    return;
  }
  step_chunks_early(ch, t_len, [&](int64_t t, int64_t c, auto&& wait_prev) {
    const float* hp = t ? hs + (t - 1) * ts : h0;
    const float* cp = t ? cs + (t - 1) * ts : c0;
    const int64_t rs_hp = t ? rs : units;
    const int64_t u0 = c * ch.size, w = std::min(ch.size, units - u0);
    const int64_t p0 = panel_lo(4 * u0), p1 = panel_hi(4 * u0, 4 * w);
    float* rec = rec_buf.data() + (t % 2) * n * g4;
    float* rc = rec + 4 * u0;
    float beta = 0.f;
    if (!in.xw) {  // this chunk's x_t W + b (needs nothing of step t-1), then h U accumulates onto it
      sgemm_packed_panels(n, 1.f, in.x + t * in.features, t_len * in.features, 1, *in.wp, p0, p1, 0.f, rc, g4, 1,
                          in.bias ? in.bias + 4 * u0 : nullptr, Act::Linear, 0.f);
      beta = 1.f;
    }
    wait_prev();  // h_{t-1}, c_{t-1} complete
    // c_{t-1} of this chunk's units was written at step t-1 by whichever thread ran that
    // chunk: with 2+ threads, often the other core. Its lines are asked for now, into this
    // core's L2, so they arrive while the GEMM runs (profile at 2 threads: a quarter of
    // the cell pass's samples stalled on that load, behind the pass's own prefetch).
    if (ch.threads > 1 && t > 0)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < w; j += 16) prefetch_l2(cp + r * rs_hp + u0 + j);
    sgemm_packed_panels(n, 1.f, hp, rs_hp, 1, upk, p0, p1, beta, rc, g4, 1, nullptr, Act::Linear, 0.f);
    for_blocks(u0, w, [&](int64_t v0, int64_t bw) {
      const int64_t o = t * ts + v0, og = t * g4 + v0, oq = t * ts_q + v0;
      rnn::lstm_fwd_block(act, ract,
                          {n, bw, in.xw ? in.xw + og : nullptr, rs_g, units, rec + 4 * v0, g4, bw, cp + v0,
                           rs_hp, gates ? gates + oq : nullptr, rs_q, units, cs + o, rs, hs + o, rs});
    });
    if (mask) {  // a masked step keeps the previous state
      const int64_t o = t * ts + u0;
      for (int64_t r = 0; r < n; ++r)
        if (!keep(mask, r, t_len, t)) {
          std::memcpy(cs + r * rs + o, cp + r * rs_hp + u0, sizeof(float) * w);
          std::memcpy(hs + r * rs + o, hp + r * rs_hp + u0, sizeof(float) * w);
        }
    }
  });
}

}  // namespace

void lstm_forward_x(const float* x, int64_t features, const PackedB& wp, const float* bias, const float* h0,
                    const float* c0, const float* u, const uint8_t* mask, int64_t n, int64_t t_len, int64_t units,
                    Act act, Act ract, float* hs, float* cs, float* gates, const PackedB* packed_u,
                    bool time_major) {
  if (units <= 0) return;  // every output is empty
  std::vector<float> bb(bias ? static_cast<size_t>(4 * units) : 0);
  if (bias) block_columns(bias, 1, units, 4, bb.data());
  lstm_forward_loop({nullptr, x, features, &wp, bias ? bb.data() : nullptr}, h0, c0, u, mask, n, t_len, units, act,
                    ract, hs, cs, gates, packed_u, time_major);
}

void lstm_forward(const float* xw, const float* h0, const float* c0, const float* u, const uint8_t* mask,
                  const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs, float* cs,
                  float* gates, const PackedB* packed_u) {
  if (units <= 0) return;  // every output is empty
  if (rmask) return lstm_forward_per_step(xw, h0, c0, u, mask, rmask, n, t_len, units, act, ract, hs, cs, gates);
  lstm_forward_loop({xw, nullptr, 0, nullptr, nullptr}, h0, c0, u, mask, n, t_len, units, act, ract, hs, cs, gates,
                    packed_u, false);
}

void lstm_backward(const float* dhs, const float* dc_last, const float* h0, const float* c0, const float* hs,
                   const float* cs, const float* gates, const float* u, const uint8_t* mask, const float* rmask,
                   int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* dxw, float* dh0, float* dc0,
                   float* du, float* db, bool time_major) {
  if (units <= 0) return;  // every output is empty
  if (rmask && time_major) throw std::invalid_argument("lstm_backward: time_major with recurrent dropout");
  if (rmask)
    return lstm_backward_per_step(dhs, dc_last, h0, c0, hs, cs, gates, u, mask, rmask, n, t_len, units, act, ract,
                                  dxw, dh0, dc0, du, db);
  const int64_t g4 = 4 * units;
  // dhs, hs, cs: row r, step t at r * rs + t * ts; gates and dxw at r * rs_q + t * ts_q (SeqLayout).
  const SeqLayout ls(n, t_len, units, time_major), lq(n, t_len, g4, time_major);
  const int64_t rs = ls.rs, ts = ls.ts, rs_q = lq.rs, ts_q = lq.ts;
  const Chunks ch = make_chunks(n, units, 4);
  const PackedB ut(g4, units, u, 1, g4);  // Uᵀ, packed once for all steps
  std::vector<float> tmp(static_cast<size_t>(n * units));
  std::memset(dh0, 0, sizeof(float) * n * units);  // dh lives in dh0 throughout
  std::memcpy(dc0, dc_last, sizeof(float) * n * units);
  float* dh = dh0;
  float* dc = dc0;
  const RowGroups rg = make_row_groups(n, ch);
  if (rg.count > 0) {  // the batch split (see RowGroups): a group's dh, dc never leave its thread
    step_row_groups(rg, t_len + 1, [&](int64_t s, int64_t r0, int64_t r1) {
      const int64_t t = t_len - 1 - s, m = r1 - r0;  // t = T-1 .. -1: step -1 only finishes dh_0
      if (t + 1 < t_len) {  // dh_t = dz_{t+1} Uᵀ (kept rows of step t+1)
        float* out = (mask ? tmp.data() : dh) + r0 * units;
        sgemm_packed_panels(m, 1.f, dxw + r0 * rs_q + (t + 1) * ts_q, rs_q, 1, ut, 0, ut.panels(), 0.f, out, units,
                            1, nullptr, Act::Linear, 0.f);
        if (mask)
          for (int64_t r = r0; r < r1; ++r)
            if (keep(mask, r, t_len, t + 1))
              std::memcpy(dh + r * units, tmp.data() + r * units, sizeof(float) * units);
      }
      if (t < 0) return;  // this group is done
      const float* cp = t ? cs + (t - 1) * ts + r0 * rs : c0 + r0 * units;
      const int64_t rs_hp = t ? rs : units;
      if (!mask) {
        const int64_t o = r0 * rs + t * ts, og = r0 * rs_q + t * ts_q;
        rnn::lstm_bwd_block(act, ract,
                            {m, units, gates + og, rs_q, units, cs + o, rs, cp, rs_hp, dhs + o, rs, dh + r0 * units,
                             units, dc + r0 * units, units, dxw + og, rs_q, units});
        return;
      }
      for (int64_t r = r0; r < r1; ++r) {  // masked rows pass dh and dc through: the per-row pass
        const int64_t o = r * rs + t * ts, og = r * rs_q + t * ts_q;
        rnn::lstm_bwd(act, ract, units, gates + og, units, cs + o, cp + (r - r0) * rs_hp, dhs + o,
                      keep(mask, r, t_len, t), dh + r * units, dc + r * units, dxw + og, units);
      }
    });
    rec_backward_u(n, t_len, units, 4, h0, hs, dxw, nullptr, du, db, time_major);
    return;
  }
  step_chunks(ch, t_len + 1, [&](int64_t s, int64_t c) {
    const int64_t t = t_len - 1 - s;  // t = T-1 .. -1: step -1 only finishes dh_0
    const int64_t u0 = c * ch.size, w = std::min(ch.size, units - u0);
    if (t + 1 < t_len) {  // dh_t = dz_{t+1} Uᵀ for this chunk's units (kept rows of step t+1)
      float* out = mask ? tmp.data() + u0 : dh + u0;
      sgemm_packed_panels(n, 1.f, dxw + (t + 1) * ts_q, rs_q, 1, ut, panel_lo(u0), panel_hi(u0, w), 0.f, out,
                          units, 1, nullptr, Act::Linear, 0.f);
      if (mask)
        for (int64_t r = 0; r < n; ++r)
          if (keep(mask, r, t_len, t + 1))
            std::memcpy(dh + r * units + u0, tmp.data() + r * units + u0, sizeof(float) * w);
    }
    if (t < 0) return;  // this chunk is done
    const float* cp = t ? cs + (t - 1) * ts : c0;
    const int64_t rs_hp = t ? rs : units;
    if (!mask) {
      const int64_t o = t * ts + u0, og = t * ts_q + u0;
      rnn::lstm_bwd_block(act, ract,
                          {n, w, gates + og, rs_q, units, cs + o, rs, cp + u0, rs_hp, dhs + o, rs, dh + u0, units,
                           dc + u0, units, dxw + og, rs_q, units});
      return;
    }
    for (int64_t r = 0; r < n; ++r) {  // masked rows pass dh and dc through: the per-row pass
      const int64_t o = r * rs + t * ts + u0, og = r * rs_q + t * ts_q + u0;
      rnn::lstm_bwd(act, ract, w, gates + og, units, cs + o, cp + r * rs_hp + u0, dhs + o, keep(mask, r, t_len, t),
                    dh + r * units + u0, dc + r * units + u0, dxw + og, units);
    }
  });
  rec_backward_u(n, t_len, units, 4, h0, hs, dxw, nullptr, du, db, time_major);
}

int64_t lstm_row_groups(int64_t n, int64_t units) {
  if (n <= 0 || units <= 0) return 0;
  return make_row_groups(n, make_chunks(n, units, 4)).count;
}

void gru_forward(const float* xw, const float* h0, const float* u, const float* rbias, const uint8_t* mask,
                 const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract, float* hs,
                 float* saved, const PackedB* packed_u) {
  if (units <= 0) return;  // every output is empty
  if (rmask) return gru_forward_per_step(xw, h0, u, rbias, mask, rmask, n, t_len, units, act, ract, hs, saved);
  const int64_t g3 = 3 * units, rs = t_len * units, rs_x = t_len * g3, rs_s = t_len * 4 * units;
  const Chunks ch = make_chunks(n, units, 3);
  std::vector<float> rb(static_cast<size_t>(g3)), rec(static_cast<size_t>(n * g3));
  block_columns(rbias, 1, units, 3, rb.data());
  PackedB own;  // packed here once for all steps, unless the caller holds a pack
  if (!packed_u) own = pack_recurrent(u, units, 3);
  const PackedB& upk = packed_u ? *packed_u : own;
  step_chunks(ch, t_len, [&](int64_t t, int64_t c) {
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    const int64_t u0 = c * ch.size, w = std::min(ch.size, units - u0);
    sgemm_packed_panels(n, 1.f, hp, rs_hp, 1, upk, panel_lo(3 * u0), panel_hi(3 * u0, 3 * w), 0.f,
                        rec.data() + 3 * u0, g3, 1, rb.data() + 3 * u0, Act::Linear, 0.f);
    for (int64_t r = 0; r < n; ++r)
      for_blocks(u0, w, [&](int64_t v0, int64_t bw) {
        rnn::gru_fwd(act, ract, bw, xw + r * rs_x + t * g3 + v0, units, rec.data() + r * g3 + 3 * v0, bw,
                     hp + r * rs_hp + v0, keep(mask, r, t_len, t), saved + r * rs_s + t * 4 * units + v0, units,
                     hs + r * rs + t * units + v0);
      });
  });
}

void gru_backward(const float* dhs, const float* h0, const float* hs, const float* saved, const float* u,
                  const uint8_t* mask, const float* rmask, int64_t n, int64_t t_len, int64_t units, Act act, Act ract,
                  float* dxw, float* dh0, float* du, float* drbias) {
  if (units <= 0) return;  // every output is empty
  if (rmask)
    return gru_backward_per_step(dhs, h0, hs, saved, u, mask, rmask, n, t_len, units, act, ract, dxw, dh0, du,
                                 drbias);
  const int64_t g3 = 3 * units, rs = t_len * units, rs_x = t_len * g3, rs_s = t_len * 4 * units;
  const Chunks ch = make_chunks(n, units, 3);
  const PackedB ut(g3, units, u, 1, g3);  // Uᵀ, packed once for all steps
  // drec for every step (N, T, 3U): the recurrent side's gradients (they differ
  // from dxw in the h block, r·dh̃) feed dh, and dU and the recurrent bias after the loop.
  std::vector<float> drec(static_cast<size_t>(n * t_len * g3)), tmp(static_cast<size_t>(n * units));
  std::memset(dh0, 0, sizeof(float) * n * units);
  float* dh = dh0;
  step_chunks(ch, t_len + 1, [&](int64_t s, int64_t c) {
    const int64_t t = t_len - 1 - s;  // t = T-1 .. -1: step -1 only finishes dh_0
    const int64_t u0 = c * ch.size, w = std::min(ch.size, units - u0);
    if (t + 1 < t_len) {  // dh_t += drec_{t+1} Uᵀ (the cell already left z·dh there)
      const float* drn = drec.data() + (t + 1) * g3;
      if (!mask) {
        sgemm_packed_panels(n, 1.f, drn, rs_x, 1, ut, panel_lo(u0), panel_hi(u0, w), 1.f, dh + u0, units, 1,
                            nullptr, Act::Linear, 0.f);
      } else {
        sgemm_packed_panels(n, 1.f, drn, rs_x, 1, ut, panel_lo(u0), panel_hi(u0, w), 0.f, tmp.data() + u0, units,
                            1, nullptr, Act::Linear, 0.f);
        for (int64_t r = 0; r < n; ++r)
          if (keep(mask, r, t_len, t + 1))
            for (int64_t j = 0; j < w; ++j) dh[r * units + u0 + j] += tmp[r * units + u0 + j];
      }
    }
    if (t < 0) return;  // this chunk is done
    const float* hp = t ? hs + (t - 1) * units : h0;
    const int64_t rs_hp = t ? rs : units;
    for (int64_t r = 0; r < n; ++r)
      rnn::gru_bwd(act, ract, w, saved + r * rs_s + t * 4 * units + u0, units, hp + r * rs_hp + u0,
                   dhs + r * rs + t * units + u0, keep(mask, r, t_len, t), dh + r * units + u0,
                   dxw + r * rs_x + t * g3 + u0, units, drec.data() + r * rs_x + t * g3 + u0, units);
  });
  rec_backward_u(n, t_len, units, 3, h0, hs, drec.data(), nullptr, du);
  std::memset(drbias, 0, sizeof(float) * g3);
  for (int64_t row = 0; row < n * t_len; ++row) {
    const float* d = drec.data() + row * g3;
    for (int64_t j = 0; j < g3; ++j) drbias[j] += d[j];
  }
}

}  // namespace pynn
