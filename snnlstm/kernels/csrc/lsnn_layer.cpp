// Fused CPU kernels of the LSNN layer (snnlstm/nn/lsnn.py; neuron step snnlstm/functional/ahp.py,
// ahp_step) over a whole sequence, forward and backward with the triangular surrogate gradient; used by
// snnlstm/backends/fused_lsnn.py, which computes the input currents before these loops as one matrix product.
// The recurrent input sums only the weight rows of the neurons that spiked at the previous step (event
// driven: firing rates are a few percent), and so does the recurrent weight gradient; the backward pass
// keeps one dense product per step for dL/dz (the gradient is dense). One pass over memory per step for
// the K neurons. Built with fused_cell.cpp into one extension (snnlstm/kernels/build.py).
//
// Neuron k at step t (per-neuron theta, alpha = 1 - 1/tau_v, rho = 1 - 1/tau_a, w; LIF: w = 0):
//   nonref = (r == 0)
//   vhat   = nonref ? alpha v + I + a : 0          I = cur_t + z_{t-1} W_rec^T
//   z      = nonref && vhat / theta - 1 > 0
//   v      = z ? 0 : vhat;  a' = rho a - w z;  r' = z ? R : max(r - 1, 0)
// Surrogate: dz/dvhat = gamma / theta * max(0, 1 - |vhat / theta - 1|) on non-refractory steps; the
// reset uses the detached spike (as the Python step), so dv/dvhat = 1 - z.
//
// Backward (g* = dL/d*, carried from step t+1 down to 0):
//   gz_t     = gradz_t + gIrec_t - w ga_{t+1}           gIrec_t = gI_{t+1} W_rec (the recurrent product)
//   gvhat_t  = nonref_t (gv_t (1 - z_t) + gz_t s_t)      s_t the surrogate
//   gI_t     = gvhat_t;  gv_{t-1} = alpha gvhat_t;  ga_t = gvhat_t + rho ga_{t+1}
//   galpha += gvhat_t v_{t-1};  grho += ga_{t+1} a_t;  gw -= ga_{t+1} z_t;
//   gtheta -= gz_t nonref_t gamma max(0, 1 - |x_t|) vhat_t / theta^2
// Parameter gradients are accumulated per (row, neuron) and summed over the batch at the end, so rows
// run in parallel without atomics.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

inline int64_t row_grain(int64_t k) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)); }

template <typename T>
void forward_loop(const torch::Tensor& cur, const torch::Tensor& w_rec_t, const torch::Tensor& z0,
                  const torch::Tensor& v0, const torch::Tensor& a0, const torch::Tensor& r0,
                  const torch::Tensor& theta, const torch::Tensor& alpha, const torch::Tensor& rho,
                  const torch::Tensor& w, int64_t refractory, const torch::Tensor& z_all, const torch::Tensor& vhat_all,
                  const torch::Tensor& a_all, const torch::Tensor& nonref_all, const torch::Tensor& v,
                  const torch::Tensor& a, const torch::Tensor& r) {
  const int64_t steps = cur.size(0), batch = cur.size(1), k = cur.size(2);
  const torch::Tensor w_rec_c = w_rec_t.contiguous();
  const T* th = theta.data_ptr<T>();
  const T* al = alpha.data_ptr<T>();
  const T* rh = rho.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  v.copy_(v0);
  a.copy_(a0);
  r.copy_(r0);
  T* vp = v.data_ptr<T>();
  T* ap = a.data_ptr<T>();
  T* rp = r.data_ptr<T>();
  const T refr = static_cast<T>(refractory);
  const T* wr = w_rec_c.data_ptr<T>();
  torch::Tensor z_prev = z0;
  torch::Tensor current = torch::empty({batch, k}, cur.options());
  for (int64_t t = 0; t < steps; ++t) {
    // I_t = cur_t + z_{t-1} W_rec^T, summing only the rows of the neurons that spiked (spikes are sparse)
    const T* cp = cur.select(0, t).data_ptr<T>();
    const T* zq = z_prev.data_ptr<T>();
    T* ic = current.data_ptr<T>();
    at::parallel_for(0, batch, row_grain(k), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        T* row = ic + b * k;
        std::copy(cp + b * k, cp + (b + 1) * k, row);
        for (int64_t i = 0; i < k; ++i) {
          const T zi = zq[b * k + i];
          if (zi != T(0)) {
            const T* wrow = wr + i * k;
#pragma omp simd
            for (int64_t j = 0; j < k; ++j) row[j] += zi * wrow[j];
          }
        }
      }
    });
    const T* ip = current.data_ptr<T>();
    T* zp = z_all.select(0, t).data_ptr<T>();
    T* hp = vhat_all.select(0, t).data_ptr<T>();
    T* sa = a_all.select(0, t).data_ptr<T>();
    T* np = nonref_all.select(0, t).data_ptr<T>();
    at::parallel_for(0, batch, row_grain(k), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t o = b * k;
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) {
          const T nonref = rp[o + j] > T(0) ? T(0) : T(1);
          const T vhat = nonref * (al[j] * vp[o + j] + ip[o + j] + ap[o + j]);
          const T z = nonref * (vhat / th[j] - T(1) > T(0) ? T(1) : T(0));  // as the Python step
          sa[o + j] = ap[o + j];
          hp[o + j] = vhat;
          np[o + j] = nonref;
          zp[o + j] = z;
          vp[o + j] = vhat * (T(1) - z);
          ap[o + j] = rh[j] * ap[o + j] - wp[j] * z;
          rp[o + j] = z * refr + (T(1) - z) * std::max(rp[o + j] - T(1), T(0));
        }
      }
    });
    z_prev = z_all.select(0, t);
  }
}

template <typename T>
void backward_loop(const torch::Tensor& grad_z, const torch::Tensor& z_all, const torch::Tensor& vhat_all,
                   const torch::Tensor& a_all, const torch::Tensor& nonref_all, const torch::Tensor& z0,
                   const torch::Tensor& v0, const torch::Tensor& w_rec, const torch::Tensor& theta, const torch::Tensor& alpha,
                   const torch::Tensor& rho, const torch::Tensor& w, double gamma, const torch::Tensor& gv,
                   const torch::Tensor& ga, const torch::Tensor& g_cur, torch::Tensor gz_rec,
                   const torch::Tensor& acc, const torch::Tensor& g_w_rec_t) {
  const int64_t steps = z_all.size(0), batch = z_all.size(1), k = z_all.size(2);
  const T* th = theta.data_ptr<T>();
  const T* al = alpha.data_ptr<T>();
  const T* rh = rho.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  const T gam = static_cast<T>(gamma);
  std::vector<T> inv_theta(k);
  for (int64_t j = 0; j < k; ++j) inv_theta[j] = T(1) / th[j];
  const T* ith = inv_theta.data();
  const std::vector<T> no_spikes(static_cast<size_t>(batch * k), T(0));
  T* gvp = gv.data_ptr<T>();
  T* gap = ga.data_ptr<T>();
  T* acc_alpha = acc.select(0, 0).data_ptr<T>();
  T* acc_rho = acc.select(0, 1).data_ptr<T>();
  T* acc_w = acc.select(0, 2).data_ptr<T>();
  T* acc_theta = acc.select(0, 3).data_ptr<T>();
  for (int64_t t = steps - 1; t >= 0; --t) {
    const T* gzo = grad_z.select(0, t).data_ptr<T>();
    const T* grp = gz_rec.data_ptr<T>();
    const T* zp = z_all.select(0, t).data_ptr<T>();
    const T* hp = vhat_all.select(0, t).data_ptr<T>();
    const T* sa = a_all.select(0, t).data_ptr<T>();
    const T* np = nonref_all.select(0, t).data_ptr<T>();
    // v_{t-1}: the post-reset membrane of the previous step (v0 before the first)
    const T* hprev = t > 0 ? vhat_all.select(0, t - 1).data_ptr<T>() : v0.data_ptr<T>();
    const T* zprev = t > 0 ? z_all.select(0, t - 1).data_ptr<T>() : no_spikes.data();  // resets v_{t-1}
    const T* zrec = t > 0 ? zprev : z0.data_ptr<T>();  // drives I_t through W_rec
    T* gi = g_cur.select(0, t).data_ptr<T>();
    at::parallel_for(0, batch, row_grain(k), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t o = b * k;
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) {
          const T z = zp[o + j], vhat = hp[o + j], nonref = np[o + j];
          const T ga_next = gap[o + j];  // dL/da_{t+1}
          const T gz = gzo[o + j] + grp[o + j] - wp[j] * ga_next;
          const T x = vhat * ith[j] - T(1);
          const T tri = std::max(T(0), T(1) - std::abs(x));
          const T s = gam * tri * ith[j];
          const T gvhat = nonref * (gvp[o + j] * (T(1) - z) + gz * s);
          const T v_prev = hprev[o + j] * (T(1) - zprev[o + j]);
          gi[o + j] = gvhat;
          acc_alpha[o + j] += gvhat * v_prev;
          acc_rho[o + j] += ga_next * sa[o + j];
          acc_w[o + j] -= ga_next * z;
          acc_theta[o + j] -= nonref * gz * gam * tri * vhat * ith[j] * ith[j];
          gvp[o + j] = al[j] * gvhat;
          gap[o + j] = gvhat + rh[j] * ga_next;
        }
      }
    });
    at::mm_out(gz_rec, g_cur.select(0, t), w_rec);  // dL/dz_{t-1} through the recurrent product
    // dL/dW_rec^T += z_{t-1}^T dI_t over the spikes of step t-1 only (serial: rows of g_w are shared)
    T* gw = g_w_rec_t.data_ptr<T>();
    for (int64_t b = 0; b < batch; ++b) {
      const T* gib = gi + b * k;
      for (int64_t i = 0; i < k; ++i) {
        const T zi = zrec[b * k + i];
        if (zi != T(0)) {
          T* gwrow = gw + i * k;
#pragma omp simd
          for (int64_t j = 0; j < k; ++j) gwrow[j] += zi * gib[j];
        }
      }
    }
  }
}

void check_state(const torch::Tensor& cur, const torch::Tensor& s, const char* name) {
  TORCH_CHECK(s.is_contiguous() && s.dim() == 2 && s.size(0) == cur.size(1) && s.size(1) == cur.size(2) &&
                  s.scalar_type() == cur.scalar_type(),
              name, " must be a contiguous [B, K] tensor of the currents' dtype");
}

void check_param(const torch::Tensor& cur, const torch::Tensor& p, const char* name) {
  TORCH_CHECK(p.is_contiguous() && p.dim() == 1 && p.size(0) == cur.size(2) && p.scalar_type() == cur.scalar_type(),
              name, " must be a contiguous [K] tensor of the currents' dtype");
}

}  // namespace

// Forward over the sequence. cur [N, B, K]: input currents (W_in x + b). State z0, v0, a0, r0 [B, K];
// parameters theta, alpha, rho, w [K]. Returns {z [N,B,K], vhat [N,B,K], a_in [N,B,K] (the AHP current
// each step used), nonref [N,B,K] (1 on non-refractory steps), v, a, r [B,K] (final state)}.
std::vector<torch::Tensor> lsnn_forward(torch::Tensor cur, torch::Tensor w_rec_t, torch::Tensor z0, torch::Tensor v0,
                                        torch::Tensor a0, torch::Tensor r0, torch::Tensor theta, torch::Tensor alpha,
                                        torch::Tensor rho, torch::Tensor w, int64_t refractory) {
  TORCH_CHECK(cur.device().is_cpu() && cur.is_contiguous() && cur.dim() == 3, "currents must be a contiguous CPU [N, B, K]");
  TORCH_CHECK(w_rec_t.dim() == 2 && w_rec_t.size(0) == cur.size(2) && w_rec_t.size(1) == cur.size(2) &&
                  w_rec_t.scalar_type() == cur.scalar_type(),
              "w_rec_t must be [K, K] of the currents' dtype");
  check_state(cur, z0, "z0");
  check_state(cur, v0, "v0");
  check_state(cur, a0, "a0");
  check_state(cur, r0, "r0");
  check_param(cur, theta, "theta");
  check_param(cur, alpha, "alpha");
  check_param(cur, rho, "rho");
  check_param(cur, w, "w");
  TORCH_CHECK(refractory >= 0, "refractory must be >= 0");
  auto z_all = torch::empty_like(cur), vhat_all = torch::empty_like(cur), a_all = torch::empty_like(cur);
  auto nonref_all = torch::empty_like(cur);
  auto v = torch::empty_like(v0), a = torch::empty_like(a0), r = torch::empty_like(r0);
  AT_DISPATCH_FLOATING_TYPES(cur.scalar_type(), "snnlstm_lsnn_forward", [&] {
    forward_loop<scalar_t>(cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, refractory, z_all, vhat_all, a_all,
                           nonref_all, v, a, r);
  });
  return {z_all, vhat_all, a_all, nonref_all, v, a, r};
}

// Backward over the sequence. grad_z [N, B, K] (dL/dz of every step, from the layer's output), g_vN,
// g_aN [B, K] (dL/d of the final membrane and AHP current). Returns {dL/dcur [N,B,K], dL/dz0, dL/dv0,
// dL/da0 [B,K], dL/dalpha, dL/drho, dL/dw, dL/dtheta [K], dL/dw_rec_t [K,K]}.
std::vector<torch::Tensor> lsnn_backward(torch::Tensor grad_z, torch::Tensor g_vN, torch::Tensor g_aN,
                                         torch::Tensor z_all, torch::Tensor vhat_all, torch::Tensor a_all,
                                         torch::Tensor nonref_all, torch::Tensor z0, torch::Tensor v0,
                                         torch::Tensor w_rec_t,
                                         torch::Tensor theta, torch::Tensor alpha, torch::Tensor rho, torch::Tensor w,
                                         double gamma) {
  TORCH_CHECK(grad_z.is_contiguous() && grad_z.sizes() == z_all.sizes(), "grad_z must be a contiguous [N, B, K]");
  check_state(z_all, g_vN, "g_vN");
  check_state(z_all, g_aN, "g_aN");
  check_state(z_all, z0, "z0");
  check_state(z_all, v0, "v0");
  const int64_t batch = z_all.size(1), k = z_all.size(2);
  auto g_cur = torch::empty_like(z_all);
  auto gv = g_vN.clone(), ga = g_aN.clone();
  auto gz_rec = torch::zeros({batch, k}, z_all.options());
  auto acc = torch::zeros({4, batch, k}, z_all.options());
  auto g_w_rec_t = torch::zeros({k, k}, z_all.options());
  auto w_rec = w_rec_t.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(z_all.scalar_type(), "snnlstm_lsnn_backward", [&] {
    backward_loop<scalar_t>(grad_z, z_all, vhat_all, a_all, nonref_all, z0, v0, w_rec, theta, alpha, rho, w, gamma, gv, ga,
                            g_cur, gz_rec, acc, g_w_rec_t);
  });
  auto sums = acc.sum(1);  // [4, K]
  return {g_cur, gz_rec, gv, ga, sums.select(0, 0), sums.select(0, 1), sums.select(0, 2), sums.select(0, 3), g_w_rec_t};
}

// ---------------------------------------------------------------------------------------------------
// Row-parallel, event-driven sequence kernels (snnlstm/backends/fused_lsnn.py, fused_lsnn_sequence).
//
// Batch rows are independent through time (a row's recurrent input involves only its own spikes), so
// one parallel region runs each thread's block of rows over the whole sequence (no fork/join per step)
// and a row's state stays in cache. Tensors are batch-major [B, N, K] (the layer's output layout).
// Input currents: either given (dense mode, cur [B, N, K] = W_in x + b computed before), or built here
// from the inputs (event mode, x [B, N, F]): I_in = b + sum over the non-zero x_f of x_f W_in^T[f, :],
// which for spikes adds only the synapse rows of the inputs that fired.
// Backward: each row first recomputes its forward (the same operations, so the same values) into
// per-thread [N, K] buffers of vhat, AHP current and non-refractory flag (1 or 0), so the forward stores nothing of
// size [B, N, K] but the spikes. dL/dz_{t-1} enters the gradient only through the surrogate (gz s and the theta term), which
// is zero outside the window |vhat / theta - 1| < 1 and on refractory steps; so the recurrent product
// gI_t W_rec is computed only for the neurons inside the window of step t-1, as dot products with the
// rows of W_rec^T (eight rows at a time, sharing the loads of gI_t), plus, once per row, all of them for
// dL/dz0. dW_rec^T, dW_in^T, db and the neuron parameter sums are accumulated over the spikes / active
// inputs in per-block buffers, reduced in block order at the end (deterministic for a thread count).
// The row loops are compiled for AVX-512, AVX2 and the baseline ISA and chosen at load time
// (target_clones; the build has no -march flags). The element-wise operations are the same IEEE
// operations in every version (no FMA: -ffp-contract=off), so spikes and states do not depend on the
// machine; only the dot products' summation order does (rounding).
namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SNNLSTM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SNNLSTM_CLONES
#endif
#define SNNLSTM_INLINE inline __attribute__((always_inline))

template <typename T>
SNNLSTM_INLINE void axpy(T* __restrict y, const T* __restrict x, T s, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] += s * x[j];
}

template <typename T>
SNNLSTM_INLINE T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T s = T(0);
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// out[idx[m]] = g . w[idx[m], :] for m < n; eight (then four, then one) rows at a time so that the
// independent sums hide the add latency and share the loads of g
template <typename T>
SNNLSTM_INLINE void rows_dot(const T* __restrict g, const T* __restrict w, const int64_t* idx, int64_t n, int64_t k,
                             T* __restrict out) {
  int64_t m = 0;
  for (; m + 8 <= n; m += 8) {
    const T *w0 = w + idx[m] * k, *w1 = w + idx[m + 1] * k, *w2 = w + idx[m + 2] * k, *w3 = w + idx[m + 3] * k;
    const T *w4 = w + idx[m + 4] * k, *w5 = w + idx[m + 5] * k, *w6 = w + idx[m + 6] * k, *w7 = w + idx[m + 7] * k;
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
    for (int64_t j = 0; j < k; ++j) {
      const T gj = g[j];
      s0 += gj * w0[j];
      s1 += gj * w1[j];
      s2 += gj * w2[j];
      s3 += gj * w3[j];
      s4 += gj * w4[j];
      s5 += gj * w5[j];
      s6 += gj * w6[j];
      s7 += gj * w7[j];
    }
    out[idx[m]] = s0;
    out[idx[m + 1]] = s1;
    out[idx[m + 2]] = s2;
    out[idx[m + 3]] = s3;
    out[idx[m + 4]] = s4;
    out[idx[m + 5]] = s5;
    out[idx[m + 6]] = s6;
    out[idx[m + 7]] = s7;
  }
  for (; m + 4 <= n; m += 4) {
    const T *w0 = w + idx[m] * k, *w1 = w + idx[m + 1] * k, *w2 = w + idx[m + 2] * k, *w3 = w + idx[m + 3] * k;
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t j = 0; j < k; ++j) {
      const T gj = g[j];
      s0 += gj * w0[j];
      s1 += gj * w1[j];
      s2 += gj * w2[j];
      s3 += gj * w3[j];
    }
    out[idx[m]] = s0;
    out[idx[m + 1]] = s1;
    out[idx[m + 2]] = s2;
    out[idx[m + 3]] = s3;
  }
  for (; m < n; ++m) out[idx[m]] = dot(g, w + idx[m] * k, k);
}

inline int64_t row_blocks(int64_t batch) { return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), batch)); }

template <typename T>
struct SeqForward {
  int64_t steps, k, f;
  const T *x, *w_in_t, *bias, *cur, *w_rec_t, *z0, *v0, *a0, *r0, *th, *al, *rh, *wp;
  T refr;
  T* z_all;  // written by the forward; read (the saved output) when the backward recomputes a row
  T *v_out, *a_out, *r_out;
};

// One row over the sequence. Forward (Recompute = false): writes the spikes z [N, K] of the row and its
// final state. Recompute (the backward): the same operations in the same order (so the same values,
// bit for bit), reading the saved spikes instead of writing them, and writing the row's vhat, AHP
// current and non-refractory flag of every step into small per-thread buffers [N, K] (they stay in
// cache; nothing of size [B, N, K] but the spikes is stored between the passes).
template <typename T, bool Recompute>
SNNLSTM_INLINE void seq_row(const SeqForward<T>& p, int64_t b, T* ic, T* vp, T* ap, T* rp, T* vhat_row, T* a_row,
                            T* nonref_row) {
  const int64_t steps = p.steps, k = p.k, f = p.f;
  const T *th = p.th, *al = p.al, *rh = p.rh, *wp = p.wp;
  const T refr = p.refr;
  std::copy(p.v0 + b * k, p.v0 + (b + 1) * k, vp);
  std::copy(p.a0 + b * k, p.a0 + (b + 1) * k, ap);
  std::copy(p.r0 + b * k, p.r0 + (b + 1) * k, rp);
  const T* zq = p.z0 + b * k;
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t o = (b * steps + t) * k;
    if (p.x != nullptr) {  // event mode: b + the weight rows of the active inputs
      if (p.bias != nullptr) std::copy(p.bias, p.bias + k, ic);
      else std::fill(ic, ic + k, T(0));
      const T* xr = p.x + (b * steps + t) * f;
      for (int64_t i = 0; i < f; ++i)
        if (xr[i] != T(0)) axpy(ic, p.w_in_t + i * k, xr[i], k);
    } else {
      std::copy(p.cur + o, p.cur + o + k, ic);
    }
    for (int64_t i = 0; i < k; ++i)  // the rows of the neurons that spiked at t - 1
      if (zq[i] != T(0)) axpy(ic, p.w_rec_t + i * k, zq[i], k);
    T* zp = p.z_all + o;
    if constexpr (Recompute) {
      T* hp = vhat_row + t * k;
      T* sa = a_row + t * k;
      T* np = nonref_row + t * k;
#pragma omp simd
      for (int64_t j = 0; j < k; ++j) {  // the neuron update of forward_loop
        const T nonref = rp[j] > T(0) ? T(0) : T(1);
        const T vhat = nonref * (al[j] * vp[j] + ic[j] + ap[j]);
        const T z = nonref * (vhat / th[j] - T(1) > T(0) ? T(1) : T(0));
        sa[j] = ap[j];
        hp[j] = vhat;
        np[j] = nonref;
        vp[j] = vhat * (T(1) - z);
        ap[j] = rh[j] * ap[j] - wp[j] * z;
        rp[j] = z * refr + (T(1) - z) * std::max(rp[j] - T(1), T(0));
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < k; ++j) {  // the neuron update of forward_loop
        const T nonref = rp[j] > T(0) ? T(0) : T(1);
        const T vhat = nonref * (al[j] * vp[j] + ic[j] + ap[j]);
        const T z = nonref * (vhat / th[j] - T(1) > T(0) ? T(1) : T(0));
        zp[j] = z;
        vp[j] = vhat * (T(1) - z);
        ap[j] = rh[j] * ap[j] - wp[j] * z;
        rp[j] = z * refr + (T(1) - z) * std::max(rp[j] - T(1), T(0));
      }
    }
    zq = zp;
  }
}

template <typename T>
SNNLSTM_INLINE void seq_forward_rows(const SeqForward<T>& p, int64_t b0, int64_t b1) {
  const int64_t k = p.k;
  std::vector<T> buf(4 * k);
  T *ic = buf.data(), *vp = ic + k, *ap = vp + k, *rp = ap + k;
  for (int64_t b = b0; b < b1; ++b) {
    seq_row<T, false>(p, b, ic, vp, ap, rp, nullptr, nullptr, nullptr);
    std::copy(vp, vp + k, p.v_out + b * k);
    std::copy(ap, ap + k, p.a_out + b * k);
    std::copy(rp, rp + k, p.r_out + b * k);
  }
}

template <typename T>
struct SeqBackward {
  SeqForward<T> fwd;  // the forward's inputs and saved spikes, to recompute each row
  const T *grad_z, *g_vN, *g_aN;
  T gam;
  bool need_w_rec, need_w_in;
  T *g_cur, *g_z0, *g_v0, *g_a0;
};

// One block of rows; acc [4, K], g_w_rec_t [K, K], g_w_in_t [F, K], g_bias [K]: the block's buffers.
template <typename T>
SNNLSTM_INLINE void seq_backward_rows(const SeqBackward<T>& p, int64_t b0, int64_t b1, T* acc, T* g_w_rec_t,
                                      T* g_w_in_t, T* g_bias) {
  const SeqForward<T>& q = p.fwd;
  const int64_t steps = q.steps, k = q.k, f = q.f;
  const T *al = q.al, *rh = q.rh, *wp = q.wp, *w_rec_t = q.w_rec_t;
  const T gam = p.gam;
  std::vector<T> gvb(k), gab(k), gi_a(k), gi_b(k), gzr(k), ithb(k), state(4 * k);
  std::vector<T> vhat_row(steps * k), a_row(steps * k);
  std::vector<T> nonref_row(steps * k);
  std::vector<uint8_t> flags(k);
  std::vector<int64_t> window(k), all(k);
  T* gv = gvb.data();
  T* ga = gab.data();
  T* ith = ithb.data();
  for (int64_t j = 0; j < k; ++j) {
    ith[j] = T(1) / q.th[j];
    all[j] = j;
  }
  T* acc_alpha = acc;
  T* acc_rho = acc + k;
  T* acc_w = acc + 2 * k;
  T* acc_theta = acc + 3 * k;
  for (int64_t b = b0; b < b1; ++b) {
    T* st = state.data();
    seq_row<T, true>(q, b, st, st + k, st + 2 * k, st + 3 * k, vhat_row.data(), a_row.data(), nonref_row.data());
    std::copy(p.g_vN + b * k, p.g_vN + (b + 1) * k, gv);
    std::copy(p.g_aN + b * k, p.g_aN + (b + 1) * k, ga);
    T* gi = gi_a.data();       // dL/dI_t
    T* gi_next = gi_b.data();  // dL/dI_{t+1}
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t o = (b * steps + t) * k;
      const T* zp = q.z_all + o;
      const T* hp = vhat_row.data() + t * k;
      const T* sa = a_row.data() + t * k;
      const T* np = nonref_row.data() + t * k;
      const T* gzo = p.grad_z != nullptr ? p.grad_z + o : nullptr;
      const T* hprev = t > 0 ? hp - k : q.v0 + b * k;          // v_{t-1} before its reset
      const T* zprev = t > 0 ? q.z_all + o - k : nullptr;      // resets v_{t-1} (none before the first)
      const T* zrec = t > 0 ? q.z_all + o - k : q.z0 + b * k;  // drives I_t through W_rec
      // dL/dz_t through the recurrent product, only inside the surrogate's window of step t
      T* gr = gzr.data();
      std::fill(gr, gr + k, T(0));
      if (t + 1 < steps) {
        uint8_t* fl = flags.data();
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) {  // tri > 0 on a non-refractory step (as the element pass below)
          const T xx = hp[j] * ith[j] - T(1);
          fl[j] = static_cast<uint8_t>((np[j] != T(0)) & (xx > T(-1)) & (xx < T(1)));
        }
        int64_t n = 0;
        int64_t* win = window.data();
        for (int64_t j = 0; j < k; ++j) {
          win[n] = j;
          n += fl[j];
        }
        rows_dot(gi_next, w_rec_t, win, n, k, gr);
      }
      if (gzo != nullptr) {
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) gr[j] += gzo[j];
      }
#pragma omp simd
      for (int64_t j = 0; j < k; ++j) {  // the element pass of backward_loop
        const T z = zp[j], vhat = hp[j], nonref = np[j];
        const T ga_next = ga[j];
        const T gz = gr[j] - wp[j] * ga_next;
        const T xx = vhat * ith[j] - T(1);
        const T tri = std::max(T(0), T(1) - std::abs(xx));
        const T s = gam * tri * ith[j];
        const T gvhat = nonref * (gv[j] * (T(1) - z) + gz * s);
        gi[j] = gvhat;
        acc_rho[j] += ga_next * sa[j];
        acc_w[j] -= ga_next * z;
        acc_theta[j] -= nonref * gz * gam * tri * vhat * ith[j] * ith[j];
        gv[j] = al[j] * gvhat;
        ga[j] = gvhat + rh[j] * ga_next;
      }
      if (zprev != nullptr) {
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) acc_alpha[j] += gi[j] * (hprev[j] * (T(1) - zprev[j]));
      } else {
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) acc_alpha[j] += gi[j] * hprev[j];
      }
      if (p.g_cur != nullptr) std::copy(gi, gi + k, p.g_cur + o);
      if (p.need_w_rec)
        for (int64_t i = 0; i < k; ++i)
          if (zrec[i] != T(0)) axpy(g_w_rec_t + i * k, gi, zrec[i], k);
      if (q.x != nullptr) {
        if (p.need_w_in) {
          const T* xr = q.x + (b * steps + t) * f;
          for (int64_t i = 0; i < f; ++i)
            if (xr[i] != T(0)) axpy(g_w_in_t + i * k, gi, xr[i], k);
        }
        if (g_bias != nullptr) axpy(g_bias, gi, T(1), k);
      }
      std::swap(gi, gi_next);
    }
    // gi_next now holds dL/dI_0: dL/dz0 = dL/dI_0 W_rec (every neuron: z0 is an input, no surrogate)
    if (steps > 0) rows_dot(gi_next, w_rec_t, all.data(), k, k, p.g_z0 + b * k);
    else std::fill(p.g_z0 + b * k, p.g_z0 + (b + 1) * k, T(0));
    std::copy(gv, gv + k, p.g_v0 + b * k);
    std::copy(ga, ga + k, p.g_a0 + b * k);
  }
}

// the ISA-specific versions (non-template: target_clones)
SNNLSTM_CLONES void seq_forward_f32(const SeqForward<float>& p, int64_t b0, int64_t b1) { seq_forward_rows(p, b0, b1); }
SNNLSTM_CLONES void seq_forward_f64(const SeqForward<double>& p, int64_t b0, int64_t b1) { seq_forward_rows(p, b0, b1); }
SNNLSTM_CLONES void seq_backward_f32(const SeqBackward<float>& p, int64_t b0, int64_t b1, float* acc, float* gw,
                                     float* gwi, float* gb) {
  seq_backward_rows(p, b0, b1, acc, gw, gwi, gb);
}
SNNLSTM_CLONES void seq_backward_f64(const SeqBackward<double>& p, int64_t b0, int64_t b1, double* acc, double* gw,
                                     double* gwi, double* gb) {
  seq_backward_rows(p, b0, b1, acc, gw, gwi, gb);
}
inline void seq_forward(const SeqForward<float>& p, int64_t b0, int64_t b1) { seq_forward_f32(p, b0, b1); }
inline void seq_forward(const SeqForward<double>& p, int64_t b0, int64_t b1) { seq_forward_f64(p, b0, b1); }
inline void seq_backward(const SeqBackward<float>& p, int64_t b0, int64_t b1, float* acc, float* gw, float* gwi, float* gb) {
  seq_backward_f32(p, b0, b1, acc, gw, gwi, gb);
}
inline void seq_backward(const SeqBackward<double>& p, int64_t b0, int64_t b1, double* acc, double* gw, double* gwi,
                         double* gb) {
  seq_backward_f64(p, b0, b1, acc, gw, gwi, gb);
}

template <typename T>
const T* ptr_or_null(const torch::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

}  // namespace

namespace {

// Checks the forward's inputs (event mode when x is non-empty, else dense mode with cur) and returns
// {batch, steps, k, f}.
std::vector<int64_t> check_seq_inputs(const torch::Tensor& x, const torch::Tensor& w_in_t, const torch::Tensor& bias,
                                      const torch::Tensor& cur, const torch::Tensor& w_rec_t, const torch::Tensor& z0,
                                      const torch::Tensor& v0, const torch::Tensor& a0, const torch::Tensor& r0,
                                      const torch::Tensor& theta, const torch::Tensor& alpha, const torch::Tensor& rho,
                                      const torch::Tensor& w, int64_t refractory) {
  const bool events = x.numel() > 0;
  const torch::Tensor& ref = v0;
  TORCH_CHECK(ref.device().is_cpu() && ref.dim() == 2, "state must be CPU [B, K]");
  const int64_t batch = ref.size(0), k = ref.size(1);
  int64_t steps = 0, f = 0;
  if (events) {
    TORCH_CHECK(x.dim() == 3 && x.size(0) == batch && x.is_contiguous() && x.scalar_type() == ref.scalar_type(),
                "x must be a contiguous [B, N, F] of the state's dtype");
    steps = x.size(1);
    f = x.size(2);
    TORCH_CHECK(w_in_t.is_contiguous() && w_in_t.dim() == 2 && w_in_t.size(0) == f && w_in_t.size(1) == k &&
                    w_in_t.scalar_type() == ref.scalar_type(),
                "w_in_t must be a contiguous [F, K]");
    TORCH_CHECK(bias.numel() == 0 || (bias.is_contiguous() && bias.numel() == k && bias.scalar_type() == ref.scalar_type()),
                "bias must be empty or a contiguous [K]");
  } else {
    TORCH_CHECK(cur.dim() == 3 && cur.size(0) == batch && cur.size(2) == k && cur.is_contiguous() &&
                    cur.scalar_type() == ref.scalar_type(),
                "cur must be a contiguous [B, N, K] of the state's dtype (or x non-empty)");
    steps = cur.size(1);
  }
  TORCH_CHECK(w_rec_t.is_contiguous() && w_rec_t.dim() == 2 && w_rec_t.size(0) == k && w_rec_t.size(1) == k &&
                  w_rec_t.scalar_type() == ref.scalar_type(),
              "w_rec_t must be a contiguous [K, K]");
  for (const auto* s : {&z0, &v0, &a0, &r0})
    TORCH_CHECK(s->is_contiguous() && s->sizes() == ref.sizes() && s->scalar_type() == ref.scalar_type(),
                "z0, v0, a0, r0 must be contiguous [B, K] of one dtype");
  for (const auto* q : {&theta, &alpha, &rho, &w})
    TORCH_CHECK(q->is_contiguous() && q->dim() == 1 && q->size(0) == k && q->scalar_type() == ref.scalar_type(),
                "theta, alpha, rho, w must be contiguous [K]");
  TORCH_CHECK(refractory >= 0, "refractory must be >= 0");
  return {batch, steps, k, f};
}

template <typename T>
SeqForward<T> seq_args(const std::vector<int64_t>& dims, const torch::Tensor& x, const torch::Tensor& w_in_t,
                       const torch::Tensor& bias, const torch::Tensor& cur, const torch::Tensor& w_rec_t,
                       const torch::Tensor& z0, const torch::Tensor& v0, const torch::Tensor& a0, const torch::Tensor& r0,
                       const torch::Tensor& theta, const torch::Tensor& alpha, const torch::Tensor& rho,
                       const torch::Tensor& w, int64_t refractory, const torch::Tensor& z_all) {
  const bool events = x.numel() > 0;
  return SeqForward<T>{dims[1],
                       dims[2],
                       dims[3],
                       events ? x.data_ptr<T>() : nullptr,
                       events ? w_in_t.data_ptr<T>() : nullptr,
                       events ? ptr_or_null<T>(bias) : nullptr,
                       events ? nullptr : cur.data_ptr<T>(),
                       w_rec_t.data_ptr<T>(),
                       z0.data_ptr<T>(),
                       v0.data_ptr<T>(),
                       a0.data_ptr<T>(),
                       r0.data_ptr<T>(),
                       theta.data_ptr<T>(),
                       alpha.data_ptr<T>(),
                       rho.data_ptr<T>(),
                       w.data_ptr<T>(),
                       static_cast<T>(refractory),
                       z_all.data_ptr<T>(),
                       nullptr,
                       nullptr,
                       nullptr};
}

}  // namespace

// Forward over the sequence, row-parallel. Event mode: x [B, N, F] (non-empty), w_in_t [F, K], bias [K]
// or empty; cur empty. Dense mode: x, w_in_t, bias empty; cur [B, N, K]. State z0, v0, a0, r0 [B, K];
// parameters [K]. Returns {z [B, N, K], v, a, r [B, K]}; the backward recomputes what it needs from
// these same inputs and z.
std::vector<torch::Tensor> lsnn_seq_forward(const torch::Tensor& x, const torch::Tensor& w_in_t, const torch::Tensor& bias,
                                            const torch::Tensor& cur, const torch::Tensor& w_rec_t, const torch::Tensor& z0,
                                            const torch::Tensor& v0, const torch::Tensor& a0, const torch::Tensor& r0,
                                            const torch::Tensor& theta, const torch::Tensor& alpha, const torch::Tensor& rho,
                                            const torch::Tensor& w, int64_t refractory) {
  const auto dims = check_seq_inputs(x, w_in_t, bias, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, refractory);
  const int64_t batch = dims[0], steps = dims[1], k = dims[2];
  auto z_all = torch::empty({batch, steps, k}, v0.options());
  auto v = torch::empty_like(v0), a = torch::empty_like(a0), r = torch::empty_like(r0);
  AT_DISPATCH_FLOATING_TYPES(v0.scalar_type(), "snnlstm_lsnn_seq_forward", [&] {
    using T = scalar_t;
    SeqForward<T> p = seq_args<T>(dims, x, w_in_t, bias, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, refractory, z_all);
    p.v_out = v.data_ptr<T>();
    p.a_out = a.data_ptr<T>();
    p.r_out = r.data_ptr<T>();
    at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) { seq_forward(p, b0, b1); });
  });
  return {z_all, v, a, r};
}

// Backward over the sequence, row-parallel. grad_z [B, N, K] or empty (no gradient), g_vN, g_aN [B, K];
// z_all the forward's spikes; x ... refractory the forward's inputs (each row is recomputed first).
// Event mode (x non-empty): accumulates dL/dW_in^T [F, K] (need_w_in) and dL/db [K] (need_bias) over
// the active inputs and returns no dL/dcur; dense mode returns dL/dcur [B, N, K].
// Returns {dL/dcur (or empty), dL/dz0, dL/dv0, dL/da0 [B,K], dL/dalpha, dL/drho, dL/dw, dL/dtheta [K],
// dL/dw_rec_t [K,K] (or empty), dL/dw_in_t [F,K] (or empty), dL/db [K] (or empty)}.
std::vector<torch::Tensor> lsnn_seq_backward(const torch::Tensor& grad_z, const torch::Tensor& g_vN, const torch::Tensor& g_aN,
                                             const torch::Tensor& z_all, const torch::Tensor& x, const torch::Tensor& w_in_t,
                                             const torch::Tensor& bias, const torch::Tensor& cur, const torch::Tensor& w_rec_t,
                                             const torch::Tensor& z0, const torch::Tensor& v0, const torch::Tensor& a0,
                                             const torch::Tensor& r0, const torch::Tensor& theta, const torch::Tensor& alpha,
                                             const torch::Tensor& rho, const torch::Tensor& w, int64_t refractory,
                                             double gamma, bool need_w_rec, bool need_w_in, bool need_bias) {
  const auto dims = check_seq_inputs(x, w_in_t, bias, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, refractory);
  const int64_t batch = dims[0], steps = dims[1], k = dims[2], f = dims[3];
  TORCH_CHECK(z_all.is_contiguous() && z_all.dim() == 3 && z_all.size(0) == batch && z_all.size(1) == steps &&
                  z_all.size(2) == k && z_all.scalar_type() == v0.scalar_type(),
              "z must be the forward's contiguous [B, N, K]");
  TORCH_CHECK(grad_z.numel() == 0 || (grad_z.is_contiguous() && grad_z.sizes() == z_all.sizes() &&
                                       grad_z.scalar_type() == z_all.scalar_type()),
              "grad_z must be empty or a contiguous [B, N, K]");
  for (const auto* s : {&g_vN, &g_aN})
    TORCH_CHECK(s->is_contiguous() && s->sizes() == v0.sizes() && s->scalar_type() == v0.scalar_type(),
                "g_vN, g_aN must be contiguous [B, K]");
  const bool events = x.numel() > 0;
  auto opts = z_all.options();
  const int64_t blocks = row_blocks(batch);
  auto g_cur = events ? torch::empty({0}, opts) : torch::empty_like(z_all);
  auto g_z0 = torch::empty_like(z0), g_v0 = torch::empty_like(v0), g_a0 = torch::empty_like(v0);
  auto acc = torch::zeros({blocks, 4, k}, opts);
  auto g_w_rec = torch::zeros({need_w_rec ? blocks : 0, k, k}, opts);
  auto g_w_in = torch::zeros({events && need_w_in ? blocks : 0, f, k}, opts);
  auto g_bias = torch::zeros({events && need_bias ? blocks : 0, k}, opts);
  AT_DISPATCH_FLOATING_TYPES(z_all.scalar_type(), "snnlstm_lsnn_seq_backward", [&] {
    using T = scalar_t;
    SeqBackward<T> p{seq_args<T>(dims, x, w_in_t, bias, cur, w_rec_t, z0, v0, a0, r0, theta, alpha, rho, w, refractory, z_all),
                     ptr_or_null<T>(grad_z),
                     g_vN.data_ptr<T>(),
                     g_aN.data_ptr<T>(),
                     static_cast<T>(gamma),
                     need_w_rec,
                     events && need_w_in,
                     events ? nullptr : g_cur.data_ptr<T>(),
                     g_z0.data_ptr<T>(),
                     g_v0.data_ptr<T>(),
                     g_a0.data_ptr<T>()};
    at::parallel_for(0, blocks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t b0 = batch * c / blocks, b1 = batch * (c + 1) / blocks;
        seq_backward(p, b0, b1, acc.data_ptr<T>() + c * 4 * k, need_w_rec ? g_w_rec.data_ptr<T>() + c * k * k : nullptr,
                     events && need_w_in ? g_w_in.data_ptr<T>() + c * f * k : nullptr,
                     events && need_bias ? g_bias.data_ptr<T>() + c * k : nullptr);
      }
    });
  });
  auto sums = acc.sum(0);  // [4, K], blocks in order
  auto empty = torch::empty({0}, opts);
  return {g_cur,
          g_z0,
          g_v0,
          g_a0,
          sums.select(0, 0),
          sums.select(0, 1),
          sums.select(0, 2),
          sums.select(0, 3),
          need_w_rec ? g_w_rec.sum(0) : empty,
          events && need_w_in ? g_w_in.sum(0) : empty,
          events && need_bias ? g_bias.sum(0) : empty};
}

// Whether every element of x is 0 or 1 (the event-mode test of fused_lsnn.py; one pass, stops early).
bool lsnn_is_binary(const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), "x must be a CPU tensor");
  const torch::Tensor xc = x.contiguous();
  bool binary = true;
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "snnlstm_lsnn_is_binary", [&] {
    const scalar_t* q = xc.data_ptr<scalar_t>();
    const int64_t n = xc.numel(), chunk = 1 << 16;
    for (int64_t s = 0; s < n && binary; s += chunk) {
      const int64_t e = std::min(n, s + chunk);
      bool ok = true;
      for (int64_t i = s; i < e; ++i) ok &= (q[i] == scalar_t(0)) | (q[i] == scalar_t(1));
      binary = ok;
    }
  });
  return binary;
}
