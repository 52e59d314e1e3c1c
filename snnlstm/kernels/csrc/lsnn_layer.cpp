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
