// Fused, multi-tensor optimizer update steps (float32). Each step makes one
// pass over memory per parameter: read p, g and state, write p and state.
// Work is split across threads (share_work) over the *combined* element range of all
// tensors, so 100 tensors of 10k parallelise like one tensor of 1M.
// Formulas: pynn/backend/numpy/optim.py (the spec; torch.optim conventions).
#pragma once
#include <cstdint>
#include <vector>

#include "common/dispatch.h"

namespace pynn {
namespace optim {

// Raw pointers of one multi-tensor call; state lists are empty when unused.
struct TensorList {
  std::vector<float*> p;
  std::vector<const float*> g;
  std::vector<float*> s0, s1, s2;
  std::vector<int64_t> n;
};

// Per-range coefficients (float32, derived from double once per call).
struct SgdArgs { float lr, momentum, wd; bool nesterov, has_momentum, has_wd; };
struct AdamArgs { float b1, omb1, b2, omb2, step_size, inv_sqrt_bc2, eps, wd, decay; bool coupled_wd, decoupled_wd, amsgrad; };
struct RmspropArgs { float rho, omr, lr, momentum, eps; bool centered, has_momentum; };
struct AdagradArgs { float lr, eps; };
struct AdadeltaArgs { float rho, omr, lr, eps; };

// Range kernels, one set per ISA (optim_impl.h, built by optim.cpp and optim_avx2.cpp).
#define PYNN_OPTIM_RANGE_DECLS                                                                         \
  void sgd_range(const SgdArgs& a, float* p, const float* g, float* buf, int64_t n);                   \
  void adam_range(const AdamArgs& a, float* p, const float* g, float* m, float* v, float* vmax, int64_t n); \
  void rmsprop_range(const RmspropArgs& a, float* p, const float* g, float* sq, float* mom, float* gavg, int64_t n); \
  void adagrad_range(const AdagradArgs& a, float* p, const float* g, float* acc, int64_t n);          \
  void adadelta_range(const AdadeltaArgs& a, float* p, const float* g, float* sq, float* acc_delta, int64_t n);

PYNN_ISA_DECLARE(PYNN_OPTIM_RANGE_DECLS)

// Entry points (optim.cpp): compute coefficients in double, dispatch on ISA,
// run the threaded loop. Callers have validated every pointer and size.
void sgd_step(const TensorList& t, double lr, double momentum, bool nesterov, double weight_decay);
void adam_step(const TensorList& t, double lr, double beta_1, double beta_2, double epsilon, int64_t step,
               double weight_decay, bool decoupled, bool amsgrad);
void rmsprop_step(const TensorList& t, double lr, double rho, double momentum, double epsilon, bool centered);
void adagrad_step(const TensorList& t, double lr, double epsilon);
void adadelta_step(const TensorList& t, double lr, double rho, double epsilon);

}  // namespace optim
}  // namespace pynn
