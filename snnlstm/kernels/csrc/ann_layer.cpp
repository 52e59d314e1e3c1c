// Fused CPU kernels of the non-spiking LSTM layer (snnlstm/functional/cells.py, lstm_cell_step) over
// a whole sequence, forward and backward; used by snnlstm/backends/fused_ann.py, which computes the input
// projections before and the weight gradients after these loops as large matrix products. Per element
// one recurrent matrix product (addmm, BLAS) and one pass over memory for all the gate activations and
// the cell update, and in the backward pass their derivatives. The [N, B, 4H] pre-activation buffer is
// updated in place (projections -> pre-activations -> gradients) so that a long sequence allocates
// it once. Built with fused_cell.cpp into one extension (snnlstm/kernels/build.py).
//
// Gate layout of z: i, f, o (3H) | g (H). Cell (with optional clamp of the carried c to [-1, 1]):
//   i, f, o = sig(z);  g = tanh_act(z_g);  c' = f c_prev + i g;  h = o tanh_act(c');  c = clamp(c')
// sig/tanh_act are the standard functions or Datta's hard versions with thresholds v_sig, v+, v-:
//   hard_sig(z) = clamp(z / v_sig + 1/2, 0, 1)
//   hard_tanh(z) = clamp(z / v+, 0, 1) + clamp(z / |v-|, -1, 0)
// Their derivatives use torch.clamp's convention: the gradient passes where the clamped argument
// lies in the closed interval, so the kernel matches autograd of the Python cell.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

// Gate activations. STANDARD selects sigmoid/tanh at compile time so that the hard versions' loops
// are branch-free and vectorise (`omp simd`); thresholds enter as reciprocals (exact for the
// power-of-two defaults, otherwise within one rounding of the Python cell's division).
template <typename T, bool STANDARD>
struct Act {
  T iv_sig, ivp, ivn;  // 1 / v_sig, 1 / v+, 1 / |v-|

  // value and derivative of the sigmoid-type gate
  inline void sig(T z, T& val, T& d) const {
    if constexpr (STANDARD) {
      val = T(1) / (T(1) + std::exp(-z));
      d = val * (T(1) - val);
    } else {
      const T a = z * iv_sig + T(0.5);
      val = std::min(std::max(a, T(0)), T(1));
      d = T((a >= T(0)) & (a <= T(1))) * iv_sig;
    }
  }

  // value and derivative of the tanh-type activation
  inline void tanh(T z, T& val, T& d) const {
    if constexpr (STANDARD) {
      val = std::tanh(z);
      d = T(1) - val * val;
    } else {
      const T a = z * ivp, b = z * ivn;
      val = std::min(std::max(a, T(0)), T(1)) + std::min(std::max(b, T(-1)), T(0));
      d = T((a >= T(0)) & (a <= T(1))) * ivp + T((b >= T(-1)) & (b <= T(0))) * ivn;
    }
  }
};

template <typename T, bool STANDARD>
Act<T, STANDARD> make_act(double v_sig, double vp, double vn) {
  return Act<T, STANDARD>{T(1.0 / v_sig), T(1.0 / vp), T(-1.0 / vn)};
}

inline int64_t grain(int64_t hidden) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(hidden, 1)); }

// rows [begin, end) of one element: z [B, 4H] -> h, c [B, H]
template <typename T, bool STANDARD, bool CLAMP>
void forward_rows(const Act<T, STANDARD>& act, int64_t hid, int64_t begin, int64_t end, const T* z,
                  const T* c_prev, T* h, T* c) {
  for (int64_t b = begin; b < end; ++b) {
    const T* __restrict__ zr = z + b * 4 * hid;
    const T* __restrict__ cp = c_prev + b * hid;
    T* __restrict__ hr = h + b * hid;
    T* __restrict__ cr = c + b * hid;
#pragma omp simd
    for (int64_t j = 0; j < hid; ++j) {
      T i, f, o, g, tc, d;
      act.sig(zr[j], i, d);
      act.sig(zr[hid + j], f, d);
      act.sig(zr[2 * hid + j], o, d);
      act.tanh(zr[3 * hid + j], g, d);
      const T cn = f * cp[j] + i * g;
      act.tanh(cn, tc, d);  // h sees the unclamped c (the reference); the carried state is clamped
      cr[j] = CLAMP ? std::min(std::max(cn, T(-1)), T(1)) : cn;
      hr[j] = o * tc;
    }
  }
}

// rows [begin, end) of one element's backward: gh (in: dL/dh), gc (in: dL/dc, out: dL/dc_prev),
// gz (out: dL/dz; may be z itself: every unit reads its four pre-activations before writing them)
template <typename T, bool STANDARD, bool CLAMP>
void backward_rows(const Act<T, STANDARD>& act, int64_t hid, int64_t begin, int64_t end, const T* z,
                   const T* c_prev, const T* c, const T* gh, T* gc, T* gz) {
  for (int64_t b = begin; b < end; ++b) {
    const T* zr = z + b * 4 * hid;  // may alias gz (dL/dz overwrites z in place)
    const T* __restrict__ cp = c_prev + b * hid;
    const T* __restrict__ cr = c + b * hid;
    const T* __restrict__ ghr = gh + b * hid;
    T* __restrict__ gcr = gc + b * hid;
    T* gzr = gz + b * 4 * hid;
#pragma omp simd
    for (int64_t j = 0; j < hid; ++j) {
      T i, f, o, g, di, df, dout, dg, tc, dtc;
      act.sig(zr[j], i, di);
      act.sig(zr[hid + j], f, df);
      act.sig(zr[2 * hid + j], o, dout);
      act.tanh(zr[3 * hid + j], g, dg);
      const T pre = f * cp[j] + i * g;  // c before the clamp
      act.tanh(pre, tc, dtc);
      const T gc_in = CLAMP ? gcr[j] * T((pre >= T(-1)) & (pre <= T(1))) : gcr[j];
      const T dc = gc_in + ghr[j] * o * dtc;
      gzr[j] = dc * g * di;
      gzr[hid + j] = dc * cp[j] * df;
      gzr[2 * hid + j] = ghr[j] * tc * dout;
      gzr[3 * hid + j] = dc * i * dg;
      gcr[j] = dc * f;
    }
  }
}

// the sequence loops (see ann_layer_forward / ann_layer_backward below)
template <typename T, bool STANDARD, bool CLAMP>
void forward_loop(const torch::Tensor& z_all, const torch::Tensor& w_hh_t, const torch::Tensor& h0,
                  const torch::Tensor& c0, double v_sig, double vp, double vn, const torch::Tensor& h_all,
                  const torch::Tensor& c_all) {
  const int64_t steps = z_all.size(0), batch = z_all.size(1), hid = h0.size(1);
  const auto act = make_act<T, STANDARD>(v_sig, vp, vn);
  torch::Tensor h_prev = h0, c_prev = c0;
  for (int64_t n = 0; n < steps; ++n) {
    torch::Tensor z = z_all.select(0, n);
    z.addmm_(h_prev, w_hh_t);  // z_n = proj_n + h_{n-1} W_hh^T, in place
    torch::Tensor h = h_all.select(0, n), c = c_all.select(0, n);
    const T* zp = z.data_ptr<T>();
    const T* cpp = c_prev.data_ptr<T>();
    T* hp = h.data_ptr<T>();
    T* cp = c.data_ptr<T>();
    at::parallel_for(0, batch, grain(hid), [&](int64_t begin, int64_t end) {
      forward_rows<T, STANDARD, CLAMP>(act, hid, begin, end, zp, cpp, hp, cp);
    });
    h_prev = h;
    c_prev = c;
  }
}

template <typename T, bool STANDARD, bool CLAMP>
void backward_loop(const torch::Tensor& grad_h, const torch::Tensor& z_all, const torch::Tensor& c_all,
                   const torch::Tensor& c0, const torch::Tensor& w_hh, double v_sig, double vp, double vn,
                   const torch::Tensor& grad_c, torch::Tensor gc, torch::Tensor gh, torch::Tensor gh_rec) {
  const int64_t steps = z_all.size(0), batch = z_all.size(1), hid = c0.size(1);
  const auto act = make_act<T, STANDARD>(v_sig, vp, vn);
  for (int64_t n = steps - 1; n >= 0; --n) {
    at::add_out(gh, grad_h.select(0, n), gh_rec);
    gc.add_(grad_c.select(0, n));  // dL/dc_n: from the next element plus from c_n itself
    const torch::Tensor c_prev = n > 0 ? c_all.select(0, n - 1) : c0;
    torch::Tensor z = z_all.select(0, n);
    T* zp = z.data_ptr<T>();
    const T* cpp = c_prev.data_ptr<T>();
    const T* cp = c_all.select(0, n).data_ptr<T>();
    const T* ghp = gh.data_ptr<T>();
    T* gcp = gc.data_ptr<T>();
    at::parallel_for(0, batch, grain(hid), [&](int64_t begin, int64_t end) {
      backward_rows<T, STANDARD, CLAMP>(act, hid, begin, end, zp, cpp, cp, ghp, gcp, zp);
    });
    at::mm_out(gh_rec, z, w_hh);  // z now holds dL/dz_n
  }
}

// FN<T, STANDARD, CLAMP>(args...) with the runtime flags as template arguments
#define SNNLSTM_DISPATCH_FLAGS(standard, clamp_c, FN, ...)                 \
  do {                                                                      \
    if (standard) {                                                         \
      if (clamp_c) FN<scalar_t, true, true>(__VA_ARGS__);                   \
      else FN<scalar_t, true, false>(__VA_ARGS__);                          \
    } else {                                                                \
      if (clamp_c) FN<scalar_t, false, true>(__VA_ARGS__);                  \
      else FN<scalar_t, false, false>(__VA_ARGS__);                         \
    }                                                                       \
  } while (0)

void check_inputs(const torch::Tensor& z_all, const torch::Tensor& w_hh_t, const torch::Tensor& h0,
                  const torch::Tensor& c0) {
  TORCH_CHECK(z_all.device().is_cpu(), "the fused C++ LSTM layer runs on the CPU only");
  TORCH_CHECK(z_all.dim() == 3 && z_all.is_contiguous(), "z must be a contiguous [N, B, 4H] tensor");
  const int64_t hid = h0.size(-1);
  TORCH_CHECK(z_all.size(2) == 4 * hid, "z must be [N, B, 4H] with H = ", hid, ", got last dim ", z_all.size(2));
  TORCH_CHECK(w_hh_t.dim() == 2 && w_hh_t.size(0) == hid && w_hh_t.size(1) == 4 * hid, "w_hh_t must be [H, 4H]");
  TORCH_CHECK(h0.is_contiguous() && c0.is_contiguous() && h0.sizes() == c0.sizes() && h0.dim() == 2 &&
                  h0.size(0) == z_all.size(1),
              "h0 and c0 must be contiguous [B, H]");
  TORCH_CHECK(w_hh_t.scalar_type() == z_all.scalar_type() && h0.scalar_type() == z_all.scalar_type() &&
                  c0.scalar_type() == z_all.scalar_type(),
              "z, w_hh_t, h0 and c0 must share one dtype");
}

}  // namespace

// Forward over the sequence. z [N, B, 4H] holds the input projections plus bias on entry and the gate
// pre-activations (recurrent term added) on return. Returns {h [N, B, H], c [N, B, H]}.
std::vector<torch::Tensor> ann_layer_forward(torch::Tensor z, torch::Tensor w_hh_t, torch::Tensor h0,
                                             torch::Tensor c0, bool standard, double v_sig, double vp, double vn,
                                             bool clamp_c) {
  check_inputs(z, w_hh_t, h0, c0);
  const int64_t steps = z.size(0), batch = z.size(1), hid = h0.size(1);
  auto h_all = torch::empty({steps, batch, hid}, z.options());
  auto c_all = torch::empty({steps, batch, hid}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "snnlstm_ann_layer_forward", [&] {
    SNNLSTM_DISPATCH_FLAGS(standard, clamp_c, forward_loop, z, w_hh_t, h0, c0, v_sig, vp, vn, h_all, c_all);
  });
  return {h_all, c_all};
}

// Backward over the sequence. grad_h, grad_c [N, B, H] (dL/dh and dL/dc of every element, c being
// the carried, clamped state); z [N, B, 4H] the forward's pre-activations on entry and dL/dz on return (the
// pre-activations are consumed). Returns {dL/dh0, dL/dc0}.
std::vector<torch::Tensor> ann_layer_backward(torch::Tensor grad_h, torch::Tensor grad_c, torch::Tensor z,
                                              torch::Tensor c_all, torch::Tensor c0, torch::Tensor w_hh_t,
                                              bool standard, double v_sig, double vp, double vn, bool clamp_c) {
  check_inputs(z, w_hh_t, c0, c0);
  TORCH_CHECK(grad_h.is_contiguous() && grad_h.sizes() == c_all.sizes(), "grad_h must be a contiguous [N, B, H]");
  TORCH_CHECK(c_all.is_contiguous() && c_all.size(0) == z.size(0), "c must be a contiguous [N, B, H]");
  TORCH_CHECK(grad_c.is_contiguous() && grad_c.sizes() == c_all.sizes(), "grad_c must be a contiguous [N, B, H]");
  const int64_t batch = z.size(1), hid = c0.size(1);
  auto gc = torch::zeros({batch, hid}, z.options());
  auto gh = torch::empty({batch, hid}, z.options());
  auto gh_rec = torch::zeros({batch, hid}, z.options());
  auto w_hh = w_hh_t.t();
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "snnlstm_ann_layer_backward", [&] {
    SNNLSTM_DISPATCH_FLAGS(standard, clamp_c, backward_loop, grad_h, z, c_all, c0, w_hh, v_sig, vp, vn, grad_c, gc,
                           gh, gh_rec);
  });
  return {gh_rec, gc};
}
