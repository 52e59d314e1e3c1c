// Fused CPU kernels of the spiking LSTM layer (Datta et al. 2022) over a whole sequence, all T+N-1
// wavefronts in one call, forward and backward (layer_forward / layer_backward). The maths is exactly
// snnlstm/backends/fused_snn.py's forward_step/backward_step (see its module docstring for the chain
// rule); this file fuses every gate of a unit into one pass over memory and runs the wavefront loop
// (and its recurrent matrix products, through ATen) without returning to Python. Built on first use
// by torch.utils.cpp_extension (see snnlstm/kernels/build.py).
//
// Surrogate gradients are selected by an integer id, the `kernel_id` of their entry in the registry
// snnlstm.functional.surrogates.REGISTRY (snnlstm/functional/surrogates.py), which also holds the
// same derivative in torch; surr<T, ID> below must implement exactly that entry's formula.
//
// Per-cell tensors are [N, T, B, K] (element, step, batch, K contiguous values). Gate layout of z and of
// the membranes: i, f, o (3H) | g (H) | tanh_c (H).
//
// Spikes are decided by comparing the membrane with the threshold (U > V+, U < V-), which is the
// Python code's H(U / V - 1) without the division; the surrogate still sees x = U / V - 1.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <vector>

namespace {

// Denormal gradients (|g| < 1e-38) are flushed to zero inside the kernels: they change nothing
// measurable but make x86 arithmetic up to 100x slower. The caller's FP mode is restored.
struct FlushDenormals {
#if defined(__SSE__)
  unsigned int saved = _mm_getcsr();
  FlushDenormals() { _mm_setcsr(saved | 0x8040); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

struct Scalars {
  double vgp, vgn, leak_g, vcp, vcn, leak_c, shift, gamma;
  bool spike_i, spike_g, standard;
  int64_t surrogate;  // kernel_id of snnlstm.functional.surrogates.REGISTRY (see surr below)
};

Scalars unpack(const std::vector<double>& s, bool spike_i, bool spike_g, bool standard, int64_t surrogate) {
  TORCH_CHECK(s.size() == 8, "expected 8 scalars (vgp, vgn, leak_g, vcp, vcn, leak_c, shift, gamma)");
  return Scalars{s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], spike_i, spike_g, standard, surrogate};
}

template <typename T>
inline T clamp01(T x, T lo, T hi) { return x < lo ? lo : (x > hi ? hi : x); }

template <typename T>
inline T analog_tanh(T z, T vp, T vn, bool standard) {
  return standard ? std::tanh(z) : clamp01(z / vp, T(0), T(1)) + clamp01(z / (-vn), T(-1), T(0));
}

// ---------------------------------------------------------------------------------------------
// One row (one batch entry of one element in flight): loops over the H units with every gate of
// a unit in the same iteration; branch-free (spikes are comparisons cast to T) so that the
// compiler vectorises them (`omp simd`). SURR and SPIKE_G are template parameters; the other
// flags are loop-invariant and unswitched by the compiler.

// dS/dx of the surrogate with kernel_id SURR at x = U / V - 1; the ids and formulas are those of
// snnlstm.functional.surrogates.REGISTRY (tests compare this kernel's gradients with the torch ones
// for every registered surrogate): 0 triangular gamma max(0, 1 - |x|), 1 fast_sigmoid
// 1 / (25 |x| + 1)^2, 2 atan (alpha 2) 1 / (1 + (pi x)^2), 3 straight_through 1.
template <typename T, int SURR>
inline T surr(T x, T gamma) {
  if constexpr (SURR == 0) {
    return gamma * std::max(T(1) - std::abs(x), T(0));
  } else if constexpr (SURR == 1) {
    const T v = std::abs(x) * T(25) + T(1);
    return T(1) / (v * v);
  } else if constexpr (SURR == 2) {
    const T v = x * T(M_PI);
    return T(1) / (v * v + T(1));
  } else {
    return T(1);
  }
}

template <typename T>
struct Consts {
  T vgp, vgn, leak_g, vcp, vcn, leak_c, shift, gamma;
  T ivgp, ivgn, ivcp, ivcn;
  bool has_shift, spike_i, standard;
};

template <typename T>
Consts<T> consts(const Scalars& s) {
  Consts<T> c;
  c.vgp = T(s.vgp); c.vgn = T(s.vgn); c.leak_g = T(s.leak_g);
  c.vcp = T(s.vcp); c.vcn = T(s.vcn); c.leak_c = T(s.leak_c);
  c.shift = T(s.shift); c.gamma = T(s.gamma);
  c.ivgp = T(1) / c.vgp; c.ivgn = T(1) / c.vgn; c.ivcp = T(1) / c.vcp; c.ivcn = T(1) / c.vcn;
  c.has_shift = s.shift != 0.0; c.spike_i = s.spike_i; c.standard = s.standard;
  return c;
}

// Analog gate values of one row, computed outside the vectorised loops so that transcendental
// functions are only evaluated when an analog gate uses the standard activations.
template <typename T>
void analog_i(int64_t hid, const Consts<T>& k, T v, const T* __restrict__ z, T* __restrict__ val, T* __restrict__ dz,
              T* __restrict__ dv) {
  if (k.standard) {
    for (int64_t j = 0; j < hid; ++j) val[j] = T(1) / (T(1) + std::exp(-z[j]));
    if (dz != nullptr)
      for (int64_t j = 0; j < hid; ++j) { dz[j] = val[j] * (T(1) - val[j]); dv[j] = T(0); }
    return;
  }
  for (int64_t j = 0; j < hid; ++j) {
    const T a = z[j] / v + T(0.5);
    val[j] = clamp01(a, T(0), T(1));
    const T inside = T((a >= T(0)) & (a <= T(1)));
    if (dz != nullptr) { dz[j] = inside / v; dv[j] = -inside * z[j] / (v * v); }
  }
}

template <typename T>
void analog_g(int64_t hid, const Consts<T>& kref, const T* __restrict__ z, T* __restrict__ val, T* __restrict__ dz,
              T* __restrict__ dvp, T* __restrict__ dvn) {
  const Consts<T> k = kref;
  if (k.standard) {
    for (int64_t j = 0; j < hid; ++j) val[j] = std::tanh(z[j]);
    if (dz != nullptr)
      for (int64_t j = 0; j < hid; ++j) { dz[j] = T(1) - val[j] * val[j]; dvp[j] = T(0); dvn[j] = T(0); }
    return;
  }
  for (int64_t j = 0; j < hid; ++j) {
    const T a_pos = z[j] / k.vgp, a_neg = z[j] / (-k.vgn);
    val[j] = clamp01(a_pos, T(0), T(1)) + clamp01(a_neg, T(-1), T(0));
  }
  if (dz != nullptr) {
    for (int64_t j = 0; j < hid; ++j) {
      const T a_pos = z[j] / k.vgp, a_neg = z[j] / (-k.vgn);
      const T in_pos = T((a_pos >= T(0)) & (a_pos <= T(1))), in_neg = T((a_neg >= T(-1)) & (a_neg <= T(0)));
      dz[j] = in_pos / k.vgp - in_neg / k.vgn;
      dvp[j] = -in_pos * z[j] / (k.vgp * k.vgp);
      dvn[j] = in_neg * z[j] / (k.vgn * k.vgn);
    }
  }
}

template <typename T, bool SPIKE_G, bool SAVE>
__attribute__((noinline)) void forward_row(int64_t hid, const Consts<T>& k, const T* __restrict__ vs, const T* __restrict__ ls, const T* __restrict__ zr, const T* __restrict__ mr,
                 const T* __restrict__ cir, T* __restrict__ hr, T* __restrict__ cr, T* __restrict__ mo, T* __restrict__ uo, T* __restrict__ ao, T* __restrict__ cnt, T* __restrict__ scratch) {
  const Consts<T> kc = k;  // a local copy: stores through the T* outputs cannot alias it
  T* ig = scratch;
  T* gg = scratch + hid;
  if (!kc.spike_i) analog_i<T>(hid, k, vs[0], zr, ig, nullptr, nullptr);
  if (!SPIKE_G) analog_g<T>(hid, k, zr + 3 * hid, gg, nullptr, nullptr, nullptr);
  const T fi = kc.spike_i ? T(1) : T(0);  // blend weight: selects on a scalar bool do not vectorise
  const T* zi = zr; const T* zf = zr + hid; const T* zo = zr + 2 * hid; const T* zg = zr + 3 * hid;
  const T* mi = mr; const T* mf = mr + hid; const T* mo_ = mr + 2 * hid; const T* mg = mr + 3 * hid;
  const T* mc = mr + 4 * hid;
  const T* vi = vs; const T* vf = vs + hid; const T* vo = vs + 2 * hid;
  const T* li = ls; const T* lf = ls + hid; const T* lo = ls + 2 * hid;
  T ci = 0, cf = 0, co = 0, cg = 0, cc = 0;
#pragma omp simd reduction(+ : ci, cf, co, cg, cc)
  for (int64_t j = 0; j < hid; ++j) {
    const T ui = mi[j] * li[j] + zi[j], uf = mf[j] * lf[j] + zf[j], uo_ = mo_[j] * lo[j] + zo[j];
    const T si = T(ui > vi[j]), sf = T(uf > vf[j]), so = T(uo_ > vo[j]);
    const T ig_j = ig[j], gg_j = gg[j];  // unconditional loads keep the loop if-convertible
    const T i_gate = fi * si + (T(1) - fi) * ig_j;
    T g_gate, ug, m_g;
    if constexpr (SPIKE_G) {
      const T zg_j = zg[j];
      const T cur = zg_j + (zg_j >= T(0) ? kc.vgp : kc.vgn) * kc.shift;  // shift is 0 without the bias shift
      ug = mg[j] * kc.leak_g + cur;
      const T pg = T(ug > kc.vgp), ng = T(ug < kc.vgn);
      g_gate = pg - ng;
      m_g = ug - pg * kc.vgp - ng * kc.vgn;
      cg += pg + ng;
    } else {
      g_gate = gg_j;
      ug = m_g = mg[j];
      cg += T(g_gate != T(0));
    }
    const T c = sf * cir[j] + i_gate * g_gate;
    const T cur_c = c + (c >= T(0) ? kc.vcp : kc.vcn) * kc.shift;  // shift is 0 without the bias shift
    const T uc = mc[j] * kc.leak_c + cur_c;
    const T pc = T(uc > kc.vcp), nc = T(uc < kc.vcn);
    hr[j] = so * (pc - nc);
    cr[j] = c;
    mo[j] = ui - si * vi[j];
    mo[hid + j] = uf - sf * vf[j];
    mo[2 * hid + j] = uo_ - so * vo[j];
    mo[3 * hid + j] = m_g;
    mo[4 * hid + j] = uc - pc * kc.vcp - nc * kc.vcn;
    if constexpr (SAVE) {
      uo[j] = ui; uo[hid + j] = uf; uo[2 * hid + j] = uo_; uo[3 * hid + j] = ug; uo[4 * hid + j] = uc;
    }
    ci += si; cf += sf; co += so; cc += pc + nc;
  }
  if (ao != nullptr) {  // saved analog pre-activations: z_i (analog i), z_g (analog g or shift)
    int64_t col = 0;
    if (!kc.spike_i) { for (int64_t j = 0; j < hid; ++j) ao[j] = zi[j]; ++col; }
    if (!SPIKE_G || kc.has_shift) for (int64_t j = 0; j < hid; ++j) ao[col * hid + j] = zg[j];
  }
  cnt[0] += ci; cnt[1] += cf; cnt[2] += co; cnt[3] += cg; cnt[4] += cc;
}

// One row of the backward pass. The gradients of this cell's h and c arrive as two addends each
// (the loss's and the next element's, `zero` rows where absent); the membrane gradient gmr is read
// and overwritten in place; the membranes of the previous step (after reset, for the leak gradients)
// are recomputed from its saved pre-reset membranes upr (has_prev = 0 at the first step: all zero).
template <typename T, int SURR, bool SPIKE_G>
__attribute__((noinline)) void backward_row(int64_t hid, const Consts<T>& k, const T* __restrict__ vs, const T* __restrict__ iv, const T* __restrict__ ls,
                  const T* __restrict__ gha, const T* __restrict__ ghb, const T* __restrict__ gca, const T* __restrict__ gcb,
                  T* __restrict__ gmr, const T* __restrict__ ur, const T* __restrict__ upr, const T has_prev,
                  const T* __restrict__ cir, const T* __restrict__ cr, const T* __restrict__ ar,
                  T* __restrict__ gzr, T* __restrict__ gcir, T* __restrict__ g_v, T* __restrict__ g_l, T* __restrict__ g_s, T* __restrict__ scratch) {
  const Consts<T> kc = k;  // a local copy: stores through the T* outputs cannot alias it
  const T gamma = kc.gamma;
  const int64_t aux_g = kc.spike_i ? 0 : hid;  // column of z_g in the aux row
  T *i_val = scratch, *i_dz = scratch + hid, *i_dv = scratch + 2 * hid;
  T *g_val = scratch + 3 * hid, *g_dz = scratch + 4 * hid, *g_dvp = scratch + 5 * hid, *g_dvn = scratch + 6 * hid;
  if (!kc.spike_i) analog_i<T>(hid, k, vs[0], ar, i_val, i_dz, i_dv);
  if (!SPIKE_G) analog_g<T>(hid, k, ar + aux_g, g_val, g_dz, g_dvp, g_dvn);
  const bool has_shift = kc.has_shift;
  const T fi = kc.spike_i ? T(1) : T(0);  // blend weight: selects on a scalar bool do not vectorise
  // z_g's sign picks the shifted threshold; point at zeros when it is not saved (loads stay valid)
  const T* z_g = (SPIKE_G && has_shift) ? ar + aux_g : g_val;
  // per-unit partial sums (arrays, not scalar reductions, so the loop vectorises); g_s holds 7 rows of H
  T* __restrict__ a_vgp = g_s; T* __restrict__ a_vgn = g_s + hid; T* __restrict__ a_lg = g_s + 2 * hid;
  T* __restrict__ a_vcp = g_s + 3 * hid; T* __restrict__ a_vcn = g_s + 4 * hid; T* __restrict__ a_lc = g_s + 5 * hid;
  T* __restrict__ a_vi0 = g_s + 6 * hid;
#pragma omp simd
  for (int64_t j = 0; j < hid; ++j) {
    const int64_t jf = hid + j, jo = 2 * hid + j, jg = 3 * hid + j, jc = 4 * hid + j;
    const T xi = ur[j] * iv[j] - T(1), xf = ur[jf] * iv[jf] - T(1), xo = ur[jo] * iv[jo] - T(1);
    const T si = T(ur[j] > vs[j]), sf = T(ur[jf] > vs[jf]), so = T(ur[jo] > vs[jo]);
    // membranes of the previous step after reset (exactly the forward's expressions)
    const T mpi = has_prev * (upr[j] - T(upr[j] > vs[j]) * vs[j]);
    const T mpf = has_prev * (upr[jf] - T(upr[jf] > vs[jf]) * vs[jf]);
    const T mpo = has_prev * (upr[jo] - T(upr[jo] > vs[jo]) * vs[jo]);
    const T upc = upr[jc];
    const T mpc = has_prev * (upc - T(upc > kc.vcp) * kc.vcp - T(upc < kc.vcn) * kc.vcn);
    const T gh_j = gha[j] + ghb[j];
    // tanh_c and h = o * S_c
    const T uc = ur[jc], gmc = gmr[jc];
    const T xcp = uc * kc.ivcp - T(1), xcn = uc * kc.ivcn - T(1);
    const T pc = T(uc > kc.vcp), nc = T(uc < kc.vcn);
    const T g_sc = gh_j * so;
    const T g_o = gh_j * (pc - nc);
    const T g_xcp = (g_sc - gmc * kc.vcp) * surr<T, SURR>(xcp, gamma);
    const T g_xcn = (-g_sc - gmc * kc.vcn) * surr<T, SURR>(xcn, gamma);
    const T g_uc = gmc + g_xcp * kc.ivcp + g_xcn * kc.ivcn;
    const T on_pos_c = T(cr[j] >= T(0));
    a_vcp[j] += -gmc * pc - g_xcp * uc * kc.ivcp * kc.ivcp + kc.shift * on_pos_c * g_uc;
    a_vcn[j] += -gmc * nc - g_xcn * uc * kc.ivcn * kc.ivcn + kc.shift * (T(1) - on_pos_c) * g_uc;
    a_lc[j] += g_uc * mpc;
    const T g_c = g_uc + (gca[j] + gcb[j]);
    // gate values
    const T ug = ur[jg], gmg = gmr[jg];
    const T i_val_j = i_val[j], i_dz_j = i_dz[j], i_dv_j = i_dv[j], g_val_j = g_val[j], g_dz_j = g_dz[j],
            g_dvp_j = g_dvp[j], g_dvn_j = g_dvn[j], z_g_j = z_g[j];  // unconditional loads (if-conversion)
    const T i_gate = fi * si + (T(1) - fi) * i_val_j;
    T g_gate;
    T xgp = 0, xgn = 0, pg = 0, ng = 0;
    if constexpr (SPIKE_G) {
      xgp = ug * kc.ivgp - T(1); xgn = ug * kc.ivgn - T(1);
      pg = T(ug > kc.vgp); ng = T(ug < kc.vgn);
      g_gate = pg - ng;
    } else {
      g_gate = g_val_j;
    }
    gcir[j] = g_c * sf;
    const T g_i = g_c * g_gate;
    const T g_g = g_c * i_gate;
    const T g_f = g_c * cir[j];
    // g gate
    T g_zg, gm_g_new;
    if constexpr (SPIKE_G) {
      const T upg = upr[jg];
      const T mpg = has_prev * (upg - T(upg > kc.vgp) * kc.vgp - T(upg < kc.vgn) * kc.vgn);
      const T g_xgp = (g_g - gmg * kc.vgp) * surr<T, SURR>(xgp, gamma);
      const T g_xgn = (-g_g - gmg * kc.vgn) * surr<T, SURR>(xgn, gamma);
      g_zg = gmg + g_xgp * kc.ivgp + g_xgn * kc.ivgn;
      const T on_pos_g = T(z_g_j >= T(0));  // times shift, which is 0 without the bias shift
      a_vgp[j] += -gmg * pg - g_xgp * ug * kc.ivgp * kc.ivgp + kc.shift * on_pos_g * g_zg;
      a_vgn[j] += -gmg * ng - g_xgn * ug * kc.ivgn * kc.ivgn + kc.shift * (T(1) - on_pos_g) * g_zg;
      a_lg[j] += g_zg * mpg;
      gm_g_new = g_zg * kc.leak_g;
    } else {
      g_zg = g_g * g_dz_j;
      a_vgp[j] += g_g * g_dvp_j;
      a_vgn[j] += g_g * g_dvn_j;
      gm_g_new = gmg;
    }
    // i, f, o
    const T gmi = gmr[j], gmf = gmr[jf], gmo = gmr[jo];
    const T g_xi = (fi * g_i - gmi * vs[j]) * surr<T, SURR>(xi, gamma);
    const T g_xf = (g_f - gmf * vs[jf]) * surr<T, SURR>(xf, gamma);
    const T g_xo = (g_o - gmo * vs[jo]) * surr<T, SURR>(xo, gamma);
    const T g_ui = gmi + g_xi * iv[j], g_uf = gmf + g_xf * iv[jf], g_uo = gmo + g_xo * iv[jo];
    g_v[j] += -gmi * si - g_xi * ur[j] * iv[j] * iv[j];
    g_v[jf] += -gmf * sf - g_xf * ur[jf] * iv[jf] * iv[jf];
    g_v[jo] += -gmo * so - g_xo * ur[jo] * iv[jo] * iv[jo];
    g_l[j] += g_ui * mpi;
    g_l[jf] += g_uf * mpf;
    g_l[jo] += g_uo * mpo;
    const T gz_i = g_ui + (T(1) - fi) * g_i * i_dz_j;
    a_vi0[j] += (T(1) - fi) * g_i * i_dv_j;
    gzr[j] = gz_i; gzr[jf] = g_uf; gzr[jo] = g_uo; gzr[jg] = g_zg;
    gmr[j] = g_ui * ls[j]; gmr[jf] = g_uf * ls[jf]; gmr[jo] = g_uo * ls[jo];
    gmr[jg] = gm_g_new;
    gmr[jc] = g_uc * kc.leak_c;
  }
}

// ---------------------------------------------------------------------------------------------
// A whole layer: the T+N-1 wavefronts in one call. Cell (n, t) is element n at step t; wavefront d
// holds the cells (n, d - n). Buffers are [N, T, B, K] (cell (n, t) at block n * T + t); the
// initial state h0, c0 is [T, B, H] (what element "-1" produced at each step). Per wavefront: the
// recurrent products h_in W_hh^T into a scratch buffer (one matrix product for all its cells where
// their h_in blocks are one contiguous run, T <= 2, else one per cell), then one parallel pass over
// the rows of all its cells that adds the projections and updates the neurons. Membranes of the (at
// most T) elements in flight live in a ring [T, B, 5H] (slot n % T), zeroed at an element's first
// step; nothing is returned to Python between wavefronts. The backward pass mirrors it (membrane
// gradients in a ring, the previous step's membranes recomputed from the saved pre-reset ones).

inline int64_t cell_index(int64_t n, int64_t t, int64_t steps) { return n * steps + t; }

template <typename T>
inline void add_row(T* __restrict__ z, const T* __restrict__ p, int64_t width) {
#pragma omp simd
  for (int64_t j = 0; j < width; ++j) z[j] += p[j];
}

template <typename T, bool SPIKE_G, bool SAVE>
void layer_forward_impl(const torch::Tensor& proj, bool direct, const torch::Tensor& w_hh_t, const torch::Tensor& h0,
                        const torch::Tensor& c0, const torch::Tensor& v_sig, const torch::Tensor& leak_sig,
                        const Scalars& s, const torch::Tensor& h_out, const torch::Tensor& c_out,
                        const torch::Tensor& u_all, const torch::Tensor& aux_all, const torch::Tensor& counts) {
  const int64_t n_el = proj.size(0), steps = h0.size(0), batch = h0.size(1), hid = h0.size(2);
  const int64_t aux_w = aux_all.defined() ? aux_all.size(3) : 0;
  auto ring = torch::empty({steps, batch, 5 * hid}, proj.options());
  auto zbuf = torch::empty({std::min(steps, n_el), batch, 4 * hid}, proj.options());
  const auto h_flat = h_out.view({n_el * steps, batch, hid});
  T* ring_p = ring.data_ptr<T>();
  T* z_p = zbuf.data_ptr<T>();
  const T* p_p = proj.data_ptr<T>();
  const T* c0_p = c0.data_ptr<T>();
  T* h_p = h_out.data_ptr<T>();
  T* c_p = c_out.data_ptr<T>();
  T* u_p = SAVE ? u_all.data_ptr<T>() : nullptr;
  T* a_p = aux_w ? aux_all.data_ptr<T>() : nullptr;
  const T* vs = v_sig.data_ptr<T>();
  const T* ls = leak_sig.data_ptr<T>();
  const Consts<T> k = consts<T>(s);
  double total[5] = {0, 0, 0, 0, 0};
  std::mutex lock;
  for (int64_t d = 0; d < n_el + steps - 1; ++d) {
    const int64_t n_lo = std::max<int64_t>(0, d - steps + 1), n_hi = std::min(d, n_el - 1);
    const int64_t count = n_hi - n_lo + 1;
    // recurrent products h_in W_hh^T into zbuf (the projections are added row by row below)
    int64_t q0 = 0;
    if (n_lo == 0) {  // element 0 reads the initial state
      torch::Tensor z0 = zbuf.select(0, 0);
      at::mm_out(z0, h0.select(0, d), w_hh_t);
      q0 = 1;
    }
    const int64_t run = count - q0;
    if (run > 0) {
      // h of element n - 1 at step d - n: block (n - 1) T + d - n of h_flat, stride T - 1 over n
      const int64_t first = (n_lo + q0 - 1) * steps + d - (n_lo + q0);
      if (steps == 2 || run == 1) {  // one contiguous run of blocks: one product for the wavefront
        torch::Tensor out = zbuf.narrow(0, q0, run).view({run * batch, 4 * hid});
        at::mm_out(out, h_flat.narrow(0, first, run).view({run * batch, hid}), w_hh_t);
      } else {
        for (int64_t q = q0; q < count; ++q) {
          torch::Tensor zq = zbuf.select(0, q);
          at::mm_out(zq, h_flat.select(0, first + (q - q0) * (steps - 1)), w_hh_t);
        }
      }
    }
    at::parallel_for(0, count * batch, 16, [&](int64_t begin, int64_t end) {
      FlushDenormals ftz;
      T local[5] = {0, 0, 0, 0, 0};
      std::vector<T> scratch(2 * hid);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t q = r / batch, b = r % batch, n = n_lo + q, t = d - n;
        T* mr = ring_p + ((n % steps) * batch + b) * 5 * hid;
        if (t == 0) std::fill(mr, mr + 5 * hid, T(0));
        const int64_t cell = cell_index(n, t, steps) * batch + b;
        const T* cir = n == 0 ? c0_p + (t * batch + b) * hid : c_p + (cell_index(n - 1, t, steps) * batch + b) * hid;
        T* zr = z_p + r * 4 * hid;
        add_row(zr, p_p + ((direct ? n : cell_index(n, t, steps)) * batch + b) * 4 * hid, 4 * hid);
        forward_row<T, SPIKE_G, SAVE>(hid, k, vs, ls, zr, mr, cir, h_p + cell * hid, c_p + cell * hid, mr,
                                      SAVE ? u_p + cell * 5 * hid : nullptr, aux_w ? a_p + cell * aux_w : nullptr, local,
                                      scratch.data());
      }
      std::lock_guard<std::mutex> guard(lock);
      for (int q = 0; q < 5; ++q) total[q] += double(local[q]);
    });
  }
  auto acc = counts.accessor<T, 1>();
  for (int q = 0; q < 5; ++q) acc[q] = T(total[q]);
}

template <typename T, int SURR, bool SPIKE_G>
void layer_backward_impl(const c10::optional<torch::Tensor>& grad_h, const c10::optional<torch::Tensor>& grad_c,
                         const torch::Tensor& u_all, const c10::optional<torch::Tensor>& aux_all,
                         const torch::Tensor& c_out, const torch::Tensor& c0, const torch::Tensor& w_hh_t,
                         const torch::Tensor& v_sig, const torch::Tensor& leak_sig, const Scalars& s,
                         const torch::Tensor& gz_all, const torch::Tensor& g_h0, const torch::Tensor& g_c0,
                         const torch::Tensor& grads) {
  const int64_t n_el = u_all.size(0), steps = u_all.size(1), batch = u_all.size(2), hid = c0.size(2);
  const auto opts = u_all.options();
  const int64_t aux_w = aux_all.has_value() ? aux_all->size(3) : 0;
  auto gm_ring = torch::empty({steps, batch, 5 * hid}, opts);  // membrane gradients of the elements in flight
  // dL/dh_in of cell (n + 1, t), read by cell (n, t) one wavefront later, at slot n
  auto gh_rec = torch::empty({std::max<int64_t>(n_el - 1, 1), batch, hid}, opts);
  const T* gh_rd = gh_rec.data_ptr<T>();
  torch::Tensor gc_buf[2] = {torch::empty({steps, batch, hid}, opts), torch::empty({steps, batch, hid}, opts)};
  const std::vector<T> zero(hid, T(0));
  const T* gh_p = grad_h.has_value() ? grad_h->data_ptr<T>() : nullptr;
  const T* gc_p = grad_c.has_value() ? grad_c->data_ptr<T>() : nullptr;
  const T* u_p = u_all.data_ptr<T>();
  const T* a_p = aux_w ? aux_all->data_ptr<T>() : nullptr;
  const T* c_p = c_out.data_ptr<T>();
  const T* c0_p = c0.data_ptr<T>();
  T* gz_p = gz_all.data_ptr<T>();
  T* gc0_p = g_c0.data_ptr<T>();
  T* gm_p = gm_ring.data_ptr<T>();
  const T* vs = v_sig.data_ptr<T>();
  const T* ls = leak_sig.data_ptr<T>();
  std::vector<T> inv_v(3 * hid);  // the backward pass multiplies where the forward maths divides
  for (int64_t q = 0; q < 3 * hid; ++q) inv_v[q] = T(1) / vs[q];
  const Consts<T> k = consts<T>(s);
  const auto w_hh = w_hh_t.t();
  const auto gz_flat = gz_all.view({n_el * steps, batch, 4 * hid});
  // per chunk of rows (same chunks in every wavefront of equal width, so the sums are deterministic):
  // g_v_sig[3H], g_leak_sig[3H], then per-unit rows of (vgp, vgn, leak_g, vcp, vcn, leak_c, v_i[0])
  const int64_t n_acc = 13 * hid;
  std::map<std::pair<int64_t, int64_t>, std::vector<T>> partials;
  std::mutex lock;
  for (int64_t d = n_el + steps - 2; d >= 0; --d) {
    const int64_t n_lo = std::max<int64_t>(0, d - steps + 1), n_hi = std::min(d, n_el - 1);
    const int64_t count = n_hi - n_lo + 1;
    const T* gc_rd = gc_buf[(d + 1) & 1].data_ptr<T>();
    T* gc_wr = gc_buf[d & 1].data_ptr<T>();
    at::parallel_for(0, count * batch, 16, [&](int64_t begin, int64_t end) {
      T* local;
      {
        std::lock_guard<std::mutex> guard(lock);
        auto& v = partials[{count, begin}];
        if (v.empty()) v.assign(n_acc, T(0));
        local = v.data();
      }
      FlushDenormals ftz;
      std::vector<T> scratch(7 * hid);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t q = r / batch, b = r % batch, n = n_lo + q, t = d - n;
        const int64_t cell = cell_index(n, t, steps) * batch + b;
        const int64_t slot = (t * batch + b) * hid;
        const bool next = n + 1 < n_el;
        T* gm = gm_p + ((n % steps) * batch + b) * 5 * hid;
        if (t == steps - 1) std::fill(gm, gm + 5 * hid, T(0));
        const T* ur = u_p + cell * 5 * hid;
        const T* upr = t > 0 ? ur - batch * 5 * hid : ur;
        const T* cir = n == 0 ? c0_p + slot : c_p + (cell_index(n - 1, t, steps) * batch + b) * hid;
        backward_row<T, SURR, SPIKE_G>(hid, k, vs, inv_v.data(), ls, gh_p ? gh_p + cell * hid : zero.data(),
                                       next ? gh_rd + (n * batch + b) * hid : zero.data(), gc_p ? gc_p + cell * hid : zero.data(),
                                       next ? gc_rd + slot : zero.data(), gm, ur, upr, T(t > 0), cir,
                                       c_p + cell * hid, aux_w ? a_p + cell * aux_w : nullptr, gz_p + cell * 4 * hid,
                                       n == 0 ? gc0_p + slot : gc_wr + slot, local, local + 3 * hid, local + 6 * hid,
                                       scratch.data());
      }
    });
    // gradient of each cell's h input, gz W_hh: element 0's is dL/dh0 at step d, element n's goes to slot n - 1
    int64_t q0 = 0;
    if (n_lo == 0) {
      torch::Tensor target = g_h0.select(0, d);
      at::mm_out(target, gz_flat.select(0, d), w_hh);
      q0 = 1;
    }
    const int64_t run = count - q0;
    if (run > 0) {
      const int64_t n0 = n_lo + q0, first = n0 * (steps - 1) + d;  // cell (n0, d - n0); stride T - 1 over n
      if (steps == 2 || run == 1) {  // one contiguous run of blocks: one product for the wavefront
        torch::Tensor target = gh_rec.narrow(0, n0 - 1, run).view({run * batch, hid});
        at::mm_out(target, gz_flat.narrow(0, first, run).view({run * batch, 4 * hid}), w_hh);
      } else {
        for (int64_t q = 0; q < run; ++q) {
          torch::Tensor target = gh_rec.select(0, n0 - 1 + q);
          at::mm_out(target, gz_flat.select(0, first + q * (steps - 1)), w_hh);
        }
      }
    }
  }
  std::vector<double> total(n_acc, 0.0);
  for (const auto& chunk : partials)  // deterministic: a fixed order whichever thread ran a chunk
    for (int64_t q = 0; q < n_acc; ++q) total[q] += double(chunk.second[q]);
  auto acc = grads.accessor<T, 1>();
  for (int64_t q = 0; q < 6 * hid; ++q) acc[q] = T(total[q]);
  for (int64_t q = 6 * hid; q < 6 * hid + 6; ++q) acc[q] = T(0);
  for (int q = 0; q < 7; ++q) {
    double sum = 0.0;
    for (int64_t j = 0; j < hid; ++j) sum += total[(6 + q) * hid + j];
    if (q < 6) acc[6 * hid + q] += T(sum);
    else acc[0] += T(sum);  // analog i gate: its hard-sigmoid threshold is v_sig[0]
  }
}

void check_layer(const torch::Tensor& h0, const torch::Tensor& c0, const torch::Tensor& v_sig,
                 const torch::Tensor& leak_sig, const torch::Tensor& w_hh_t, const torch::Tensor& ref) {
  TORCH_CHECK(ref.device().is_cpu(), "the fused C++ spiking layer runs on the CPU only");
  TORCH_CHECK(h0.dim() == 3 && h0.is_contiguous() && c0.sizes() == h0.sizes() && c0.is_contiguous(),
              "h0 and c0 must be contiguous [T, B, H]");
  const int64_t hid = h0.size(2);
  TORCH_CHECK(v_sig.is_contiguous() && v_sig.numel() == 3 * hid, "v_sig must be a contiguous [3H]");
  TORCH_CHECK(leak_sig.is_contiguous() && leak_sig.numel() == 3 * hid, "leak_sig must be a contiguous [3H]");
  TORCH_CHECK(w_hh_t.dim() == 2 && w_hh_t.size(0) == hid && w_hh_t.size(1) == 4 * hid, "w_hh_t must be [H, 4H]");
  for (const auto* t : {&h0, &c0, &v_sig, &leak_sig, &w_hh_t})
    TORCH_CHECK(t->scalar_type() == ref.scalar_type(), "all tensors must share one dtype");
}

}  // namespace

// Forward of one spiking layer over the sequence (the whole wavefront). proj: the input projections
// incl. bias and offsets, contiguous [N, B, 4H] (direct) or [N, T, B, 4H]; h0, c0 [T, B, H].
// Returns {h [N, T, B, H], c [N, T, B, H], counts [5], u [N, T, B, 5H] (membranes before reset),
// aux [N, T, B, aux_width * H] (analog pre-activations)}; u and aux are empty unless `save`.
std::vector<torch::Tensor> layer_forward(torch::Tensor proj, torch::Tensor w_hh_t, torch::Tensor h0, torch::Tensor c0,
                                         torch::Tensor v_sig, torch::Tensor leak_sig, std::vector<double> scalars,
                                         bool spike_i, bool spike_g, bool standard, bool direct, bool save,
                                         int64_t aux_width) {
  check_layer(h0, c0, v_sig, leak_sig, w_hh_t, proj);
  const int64_t steps = h0.size(0), batch = h0.size(1), hid = h0.size(2), n_el = proj.size(0);
  TORCH_CHECK(proj.is_contiguous() && proj.dim() == (direct ? 3 : 4) && proj.size(-1) == 4 * hid &&
                  proj.size(-2) == batch && (direct || proj.size(1) == steps),
              "proj must be a contiguous [N, B, 4H] (direct) or [N, T, B, 4H]");
  const Scalars s = unpack(scalars, spike_i, spike_g, standard, 0);
  auto opts = proj.options();
  auto h_out = torch::empty({n_el, steps, batch, hid}, opts);
  auto c_out = torch::empty({n_el, steps, batch, hid}, opts);
  auto counts = torch::zeros({5}, opts);
  torch::Tensor u_all, aux_all;
  if (save) {
    u_all = torch::empty({n_el, steps, batch, 5 * hid}, opts);
    if (aux_width > 0) aux_all = torch::empty({n_el, steps, batch, aux_width * hid}, opts);
  } else {
    u_all = torch::empty({0}, opts);
  }
  AT_DISPATCH_FLOATING_TYPES(proj.scalar_type(), "snnlstm_layer_forward", [&] {
    if (spike_g) {
      if (save) layer_forward_impl<scalar_t, true, true>(proj, direct, w_hh_t, h0, c0, v_sig, leak_sig, s, h_out, c_out, u_all, aux_all, counts);
      else layer_forward_impl<scalar_t, true, false>(proj, direct, w_hh_t, h0, c0, v_sig, leak_sig, s, h_out, c_out, u_all, aux_all, counts);
    } else {
      if (save) layer_forward_impl<scalar_t, false, true>(proj, direct, w_hh_t, h0, c0, v_sig, leak_sig, s, h_out, c_out, u_all, aux_all, counts);
      else layer_forward_impl<scalar_t, false, false>(proj, direct, w_hh_t, h0, c0, v_sig, leak_sig, s, h_out, c_out, u_all, aux_all, counts);
    }
  });
  if (!aux_all.defined()) aux_all = torch::empty({0}, opts);
  return {h_out, c_out, counts, u_all, aux_all};
}

// Backward of layer_forward. grad_h, grad_c: [N, T, B, H] or None; u, aux: what the forward saved;
// c: its c output; c0 [T, B, H]. Returns {dL/dz [N, T, B, 4H] (of the projections, per cell),
// dL/dh0 [T, B, H], dL/dc0 [T, B, H], grads [6H + 6] (g_v_sig [3H], g_leak_sig [3H], then vgp, vgn,
// leak_g, vcp, vcn, leak_c)}.
std::vector<torch::Tensor> layer_backward(c10::optional<torch::Tensor> grad_h, c10::optional<torch::Tensor> grad_c,
                                          torch::Tensor u_all, c10::optional<torch::Tensor> aux_all,
                                          torch::Tensor c_out, torch::Tensor c0, torch::Tensor w_hh_t,
                                          torch::Tensor v_sig, torch::Tensor leak_sig, std::vector<double> scalars,
                                          bool spike_i, bool spike_g, bool standard, int64_t surrogate_kind) {
  check_layer(c0, c0, v_sig, leak_sig, w_hh_t, u_all);
  const int64_t n_el = u_all.size(0), steps = c0.size(0), batch = c0.size(1), hid = c0.size(2);
  TORCH_CHECK(u_all.is_contiguous() && u_all.dim() == 4 && u_all.size(1) == steps && u_all.size(2) == batch &&
                  u_all.size(3) == 5 * hid, "u must be a contiguous [N, T, B, 5H]");
  TORCH_CHECK(c_out.is_contiguous() && c_out.dim() == 4 && c_out.size(0) == n_el && c_out.size(1) == steps &&
                  c_out.size(3) == hid, "c must be a contiguous [N, T, B, H]");
  for (const auto* g : {&grad_h, &grad_c})
    if (g->has_value())
      TORCH_CHECK((*g)->is_contiguous() && (*g)->sizes() == c_out.sizes() && (*g)->scalar_type() == u_all.scalar_type(),
                  "grad_h and grad_c must be contiguous [N, T, B, H]");
  if (aux_all.has_value())
    TORCH_CHECK(aux_all->is_contiguous() && aux_all->dim() == 4 && aux_all->size(0) == n_el, "aux must be a contiguous [N, T, B, K]");
  TORCH_CHECK(surrogate_kind >= 0 && surrogate_kind <= 3, "unknown surrogate id ", surrogate_kind,
              " (the ids are the kernel_id of snnlstm.functional.surrogates.REGISTRY)");
  const Scalars s = unpack(scalars, spike_i, spike_g, standard, surrogate_kind);
  auto opts = u_all.options();
  auto gz_all = torch::empty({n_el, steps, batch, 4 * hid}, opts);
  auto g_h0 = torch::empty({steps, batch, hid}, opts);
  auto g_c0 = torch::empty({steps, batch, hid}, opts);
  auto grads = torch::empty({6 * hid + 6}, opts);
#define SNNLSTM_LAYER_BWD(SURR)                                                                                   \
  if (spike_g)                                                                                                    \
    layer_backward_impl<scalar_t, SURR, true>(grad_h, grad_c, u_all, aux_all, c_out, c0, w_hh_t, v_sig, leak_sig, \
                                              s, gz_all, g_h0, g_c0, grads);                                      \
  else                                                                                                            \
    layer_backward_impl<scalar_t, SURR, false>(grad_h, grad_c, u_all, aux_all, c_out, c0, w_hh_t, v_sig, leak_sig, \
                                               s, gz_all, g_h0, g_c0, grads);
  AT_DISPATCH_FLOATING_TYPES(u_all.scalar_type(), "snnlstm_layer_backward", [&] {
    switch (surrogate_kind) {
      case 0: SNNLSTM_LAYER_BWD(0) break;
      case 1: SNNLSTM_LAYER_BWD(1) break;
      case 2: SNNLSTM_LAYER_BWD(2) break;
      default: SNNLSTM_LAYER_BWD(3)
    }
  });
#undef SNNLSTM_LAYER_BWD
  return {gz_all, g_h0, g_c0, grads};
}

// Ponghiran & Roy's hybrid cell (snnlstm/functional/hybrid.py, hybrid_membrane_counts): spike counts
// of the gate membranes driven by integer currents [T, M, 4H] (gates i, f, c~, o). i, f, o are IF
// neurons with soft reset at `gate_threshold`; c~ is the signed neuron with two membranes
// (V+ += I, V- -= I) at `cand_threshold`. Every membrane starts at `start`. Returns the spikes of
// each membrane [M, 5H] in the order (i, f, c~ V+, o, c~ V-), all >= 0 (c~'s signed count is
// V+ - V-, its spike count V+ + V-). Same float arithmetic as the Python loop, one pass.
torch::Tensor hybrid_gate_counts(torch::Tensor current, double gate_threshold, double cand_threshold,
                                 double start) {
  TORCH_CHECK(current.dim() == 3 && current.is_contiguous() && current.scalar_type() == torch::kFloat32,
              "current must be a contiguous float32 [T, M, 4H] tensor");
  const int64_t steps = current.size(0), m_rows = current.size(1), width = current.size(2);
  TORCH_CHECK(width % 4 == 0, "the last dimension of current must be 4H, got ", width);
  const int64_t hidden = width / 4;
  auto counts = torch::zeros({m_rows, width + hidden}, current.options());
  const float* cur = current.data_ptr<float>();
  float* out = counts.data_ptr<float>();
  const float gth = static_cast<float>(gate_threshold), cth = static_cast<float>(cand_threshold);
  const float v0 = static_cast<float>(start);
  at::parallel_for(0, m_rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v(width + hidden);
    for (int64_t m = begin; m < end; ++m) {
      std::fill(v.begin(), v.end(), v0);
      float* cnt = out + m * (width + hidden);
      float* vneg = v.data() + width;
      for (int64_t t = 0; t < steps; ++t) {
        const float* row = cur + (t * m_rows + m) * width;
        for (int64_t j = 0; j < width; ++j) {  // i, f, o and the V+ membrane of c~
          const bool cand = j >= 2 * hidden && j < 3 * hidden;
          const float th = cand ? cth : gth;
          const float x = v[j] + row[j];
          const float fire = x > th ? 1.f : 0.f;
          v[j] = x - th * fire;
          cnt[j] += fire;
        }
        for (int64_t j = 0; j < hidden; ++j) {  // the V- membrane of c~
          const float x = vneg[j] - row[2 * hidden + j];
          const float fire = x > cth ? 1.f : 0.f;
          vneg[j] = x - cth * fire;
          cnt[width + j] += fire;
        }
      }
    }
  });
  return counts;
}

// The hybrid cell's signed input spike generator (hybrid.py, generator_spike_train) for `steps`
// steps: u = round(scale v); after t steps it has fired n_t = min(t, floor(t |u| / scale)) times,
// and the spike at step t is sign(u) (n_t - n_{t-1}). values [M, F] -> spikes [steps, M, F].
torch::Tensor hybrid_generator(torch::Tensor values, int64_t steps, double scale) {
  TORCH_CHECK(values.dim() == 2 && values.is_contiguous() && values.scalar_type() == torch::kFloat32,
              "values must be a contiguous float32 [M, F] tensor");
  TORCH_CHECK(steps >= 1, "steps must be >= 1, got ", steps);
  const int64_t n = values.numel();
  auto spikes = torch::empty({steps, values.size(0), values.size(1)}, values.options());
  const float* val = values.data_ptr<float>();
  float* out = spikes.data_ptr<float>();
  const float sc = static_cast<float>(scale);
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const float u = std::nearbyint(sc * val[k]);
      const float mag = std::fabs(u);
      const float sign = u > 0.f ? 1.f : (u < 0.f ? -1.f : 0.f);
      float fired = 0.f;
      for (int64_t t = 1; t <= steps; ++t) {
        const float tf = static_cast<float>(t);
        const float now = std::min(tf, std::floor(tf * mag / sc));
        out[(t - 1) * n + k] = sign * (now - fired);
        fired = now;
      }
    }
  });
  return spikes;
}

// One input element of the hybrid cell, event-driven (hybrid.py, hybrid_cell_step): the signed
// generators of values [M, F] (closed form of hybrid_generator) drive, spike by spike, the integer
// synapses weight_t [F, 4H] (the quantised [W_ih, W_hh] transposed) into the gate neurons of
// hybrid_gate_counts, whose current starts each step at bias [4H]. Only the rows of weight_t of the
// inputs that spiked are added, and no [T, M, 4H] current is stored. Currents are integer sums below
// 2^24, so float32 holds them exactly and the counts equal the dense path's (generator, matmul,
// hybrid_gate_counts). Returns {membrane spike counts [M, 5H] (i, f, c~ V+, o, c~ V-, as
// hybrid_gate_counts), generator spikes per row [M]}.
std::vector<torch::Tensor> hybrid_element_counts(torch::Tensor values, torch::Tensor weight_t, torch::Tensor bias,
                                                 int64_t steps, double gen_threshold, double gate_threshold,
                                                 double cand_threshold, double start) {
  TORCH_CHECK(values.dim() == 2 && values.is_contiguous() && values.scalar_type() == torch::kFloat32,
              "values must be a contiguous float32 [M, F] tensor");
  TORCH_CHECK(weight_t.dim() == 2 && weight_t.is_contiguous() && weight_t.scalar_type() == torch::kFloat32 &&
                  weight_t.size(0) == values.size(1),
              "weight_t must be a contiguous float32 [F, 4H] tensor with F = values.size(1)");
  TORCH_CHECK(bias.dim() == 1 && bias.is_contiguous() && bias.scalar_type() == torch::kFloat32 &&
                  bias.size(0) == weight_t.size(1),
              "bias must be a contiguous float32 [4H] tensor");
  TORCH_CHECK(steps >= 1, "steps must be >= 1, got ", steps);
  const int64_t m_rows = values.size(0), features = values.size(1), width = weight_t.size(1);
  TORCH_CHECK(width % 4 == 0, "weight_t must have 4H columns, got ", width);
  const int64_t hidden = width / 4;
  auto counts = torch::zeros({m_rows, width + hidden}, values.options());
  auto in_spikes = torch::zeros({m_rows}, values.options());
  const float* val = values.data_ptr<float>();
  const float* wt = weight_t.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  float* out = counts.data_ptr<float>();
  float* out_in = in_spikes.data_ptr<float>();
  const float sc = static_cast<float>(gen_threshold), gth = static_cast<float>(gate_threshold);
  const float cth = static_cast<float>(cand_threshold), v0 = static_cast<float>(start);
  at::parallel_for(0, m_rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> mag(features), sign(features), fired(features), cur(width), v(width + hidden), th(width);
    for (int64_t j = 0; j < width; ++j) th[j] = (j >= 2 * hidden && j < 3 * hidden) ? cth : gth;
    for (int64_t m = begin; m < end; ++m) {
      const float* row_v = val + m * features;
      for (int64_t k = 0; k < features; ++k) {
        const float u = std::nearbyint(sc * row_v[k]);
        mag[k] = std::fabs(u);
        sign[k] = u > 0.f ? 1.f : (u < 0.f ? -1.f : 0.f);
        fired[k] = 0.f;
      }
      std::fill(v.begin(), v.end(), v0);
      float* cnt = out + m * (width + hidden);
      float* vneg = v.data() + width;
      float n_in = 0.f;
      for (int64_t t = 1; t <= steps; ++t) {
        std::copy(b, b + width, cur.begin());
        const float tf = static_cast<float>(t);
        for (int64_t k = 0; k < features; ++k) {
          if (mag[k] == 0.f) continue;
          const float now = std::min(tf, std::floor(tf * mag[k] / sc));
          if (now == fired[k]) continue;
          const float spike = sign[k] * (now - fired[k]);  // +-1 (the generator fires at most once a step)
          fired[k] = now;
          const float* w = wt + k * width;
          float* c = cur.data();
          for (int64_t j = 0; j < width; ++j) c[j] += spike * w[j];
          n_in += std::fabs(spike);
        }
        for (int64_t j = 0; j < width; ++j) {  // i, f, o and the V+ membrane of c~
          const float x = v[j] + cur[j];
          const float fire = x > th[j] ? 1.f : 0.f;
          v[j] = x - th[j] * fire;
          cnt[j] += fire;
        }
        for (int64_t j = 0; j < hidden; ++j) {  // the V- membrane of c~
          const float x = vneg[j] - cur[2 * hidden + j];
          const float fire = x > cth ? 1.f : 0.f;
          vneg[j] = x - cth * fire;
          cnt[width + j] += fire;
        }
      }
      out_in[m] = n_in;
    }
  });
  return {counts, in_spikes};
}

// non-spiking layer kernels, defined in ann_layer.cpp
std::vector<torch::Tensor> ann_layer_forward(torch::Tensor z, torch::Tensor w_hh_t, torch::Tensor h0,
                                             torch::Tensor c0, bool standard, double v_sig, double vp, double vn,
                                             bool clamp_c);
std::vector<torch::Tensor> ann_layer_backward(torch::Tensor grad_h, torch::Tensor grad_c, torch::Tensor z,
                                              torch::Tensor c_all, torch::Tensor c0, torch::Tensor w_hh_t,
                                              bool standard, double v_sig, double vp, double vn, bool clamp_c);

// lsnn_layer.cpp
std::vector<torch::Tensor> lsnn_forward(torch::Tensor cur, torch::Tensor w_rec_t, torch::Tensor z0, torch::Tensor v0,
                                        torch::Tensor a0, torch::Tensor r0, torch::Tensor theta, torch::Tensor alpha,
                                        torch::Tensor rho, torch::Tensor w, int64_t refractory);
std::vector<torch::Tensor> lsnn_backward(torch::Tensor grad_z, torch::Tensor g_vN, torch::Tensor g_aN,
                                         torch::Tensor z_all, torch::Tensor vhat_all, torch::Tensor a_all,
                                         torch::Tensor nonref_all, torch::Tensor z0, torch::Tensor v0,
                                         torch::Tensor w_rec_t,
                                         torch::Tensor theta, torch::Tensor alpha, torch::Tensor rho, torch::Tensor w,
                                         double gamma);

// lsnn_layer.cpp: the row-parallel, event-driven LSNN layer
std::vector<torch::Tensor> lsnn_seq_forward(const torch::Tensor& x, const torch::Tensor& w_in_t, const torch::Tensor& bias,
                                            const torch::Tensor& cur, const torch::Tensor& w_rec_t, const torch::Tensor& z0,
                                            const torch::Tensor& v0, const torch::Tensor& a0, const torch::Tensor& r0,
                                            const torch::Tensor& theta, const torch::Tensor& alpha, const torch::Tensor& rho,
                                            const torch::Tensor& w, int64_t refractory);
std::vector<torch::Tensor> lsnn_seq_backward(const torch::Tensor& grad_z, const torch::Tensor& g_vN, const torch::Tensor& g_aN,
                                             const torch::Tensor& z_all, const torch::Tensor& x, const torch::Tensor& w_in_t,
                                             const torch::Tensor& bias, const torch::Tensor& cur, const torch::Tensor& w_rec_t,
                                             const torch::Tensor& z0, const torch::Tensor& v0, const torch::Tensor& a0,
                                             const torch::Tensor& r0, const torch::Tensor& theta, const torch::Tensor& alpha,
                                             const torch::Tensor& rho, const torch::Tensor& w, int64_t refractory,
                                             double gamma, bool need_w_rec, bool need_w_in, bool need_bias);
bool lsnn_is_binary(const torch::Tensor& x);
// stream_step.cpp: the per-element streaming kernels (classes LSTMStream, LSNNStream)
void register_streaming(pybind11::module_& m);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ann_layer_forward", &ann_layer_forward, "fused non-spiking LSTM layer over a sequence, forward");
  m.def("ann_layer_backward", &ann_layer_backward, "fused non-spiking LSTM layer over a sequence, backward");
  m.def("lsnn_forward", &lsnn_forward, "fused LSNN layer (LIF and AHP neurons) over a sequence, forward");
  m.def("lsnn_backward", &lsnn_backward, "fused LSNN layer over a sequence, backward (triangular surrogate)");
  m.def("layer_forward", &layer_forward, "fused spiking LSTM layer over a sequence (all wavefronts), forward");
  m.def("layer_backward", &layer_backward, "fused spiking LSTM layer over a sequence (all wavefronts), backward");
  m.def("hybrid_generator", &hybrid_generator, "hybrid cell signed input spike generator over T steps");
  m.def("hybrid_gate_counts", &hybrid_gate_counts, "hybrid cell spike counts per gate membrane over T steps");
  m.def("hybrid_element_counts", &hybrid_element_counts, "hybrid cell, one input element over T steps, event-driven");
  m.def("lsnn_seq_forward", &lsnn_seq_forward, "LSNN layer over a sequence, rows in parallel, event-driven input, forward");
  m.def("lsnn_seq_backward", &lsnn_seq_backward, "LSNN layer over a sequence, rows in parallel, backward");
  m.def("lsnn_is_binary", &lsnn_is_binary, "whether every entry of x is 0 or 1");
  register_streaming(m);
}
