// Streaming (element-by-element) inference kernels: one call runs one input element through every
// layer of a SpikingLSTM (all T SNN steps in SNN mode) or one step of an LSNN, with the weights and
// the carried state held in buffers allocated once (snnlstm/backends/streaming.py builds them,
// snnlstm/nn/streaming.py wraps them). Forward only, no autograd, no allocation but the returned
// output, no OpenMP (batch 1 at H = 128 is a few microseconds of arithmetic: threads would cost more).
//
// Products are sums of weight rows: z += x_j * W^T[j, :] over the non-zero inputs x_j (the weights are
// stored transposed, [fan_in, 4H], so every row is contiguous and the loop vectorises). With spikes
// (x_j in {-1, 0, +1}) this is event driven: accumulates only, no multiplications.
//
// SpikingLSTM, SNN mode (Datta et al. 2022; snnlstm/functional/cells.py): element n, layer k, step t:
//   z      = b + V/2 + V/(2T) (on spiking i, f, o) + W_ih in(n, t) + W_hh h_k(n-1, t)
//   in     = x(n) (direct encoding, every step) or its encoded spikes x(n, t) (Poisson) for k = 0,
//            else h_{k-1}(n, t)
//   cell   = the forward row of fused_cell.cpp (forward_row) on membranes that start at 0 each element
//   output = (1/T) sum_t h_{L-1}(n, t)                (the spike rate)
// The cell row below is that of fused_cell.cpp's forward_row, operation for operation (same order, same
// comparisons, no FMA: -ffp-contract=off, denormals flushed the same way), so the streamer's spikes
// equal those of the whole-sequence kernel whenever the products do (tests/nn/test_streaming.py).
// SNN mode also clamps the carried c to [-1, 1] when asked (clamp_c), as spiking_cell_step does.
//
// SpikingLSTM, ANN mode: z = b + W_ih in + W_hh h(n-1); the cell of ann_layer.cpp (forward_rows).
//
// LSNN (snnlstm/nn/lsnn.py; lsnn_layer.cpp's forward_loop): I = b + W_in x(t) + W_rec z(t-1), then
// the AHP/LIF neuron update of forward_loop.
//
// The classes are bound into the extension module by register_streaming, called from the module's
// PYBIND11_MODULE block in fused_cell.cpp.

#include <torch/extension.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// FTZ | DAZ while a spiking step runs, as fused_cell.cpp's kernels do (same results on denormals)
struct StreamFlushDenormals {
#if defined(__SSE__)
  unsigned int saved = _mm_getcsr();
  StreamFlushDenormals() { _mm_setcsr(saved | 0x8040); }
  ~StreamFlushDenormals() { _mm_setcsr(saved); }
#endif
};

// z[0:width] += sum_j in[j] * w[j, 0:width] over the non-zero in[j]; +-1 inputs add/subtract the row
template <typename S>
inline void add_rows(const S* __restrict__ in, int64_t n_in, const S* __restrict__ w, int64_t width, S* __restrict__ z) {
  for (int64_t j = 0; j < n_in; ++j) {
    const S a = in[j];
    if (a == S(0)) continue;
    const S* __restrict__ row = w + j * width;
    if (a == S(1)) {
#pragma omp simd
      for (int64_t q = 0; q < width; ++q) z[q] += row[q];
    } else if (a == S(-1)) {
#pragma omp simd
      for (int64_t q = 0; q < width; ++q) z[q] -= row[q];
    } else {
#pragma omp simd
      for (int64_t q = 0; q < width; ++q) z[q] += a * row[q];
    }
  }
}

template <typename S>
inline S clamp_to(S x, S lo, S hi) { return x < lo ? lo : (x > hi ? hi : x); }

void check_weight(const torch::Tensor& t, int64_t rows, int64_t cols, torch::ScalarType dtype, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() && t.scalar_type() == dtype, name,
              " must be a contiguous CPU tensor of the state's dtype");
  TORCH_CHECK(t.dim() == (cols < 0 ? 1 : 2) && t.size(0) == rows && (cols < 0 || t.size(1) == cols), name,
              " has shape ", t.sizes(), ", expected ", rows, " rows", cols < 0 ? "" : " and columns ", cols < 0 ? 0 : cols);
}

// the input element x [B, F] (or [T, B, F] spikes: steps > 0) as a contiguous tensor of the stream's
// dtype on the CPU, all values finite
torch::Tensor checked_input(const torch::Tensor& x, int64_t batch, int64_t features, torch::ScalarType dtype,
                            const char* who, int64_t steps = 0) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), who, ": the input is on ", x.device(), " and the layer on the CPU");
  TORCH_CHECK_TYPE(x.scalar_type() == dtype, who, " expects inputs of the layer's dtype ", dtype, ", got ", x.scalar_type());
  if (steps > 0) {
    TORCH_CHECK_VALUE(x.dim() == 3 && x.size(0) == steps && x.size(1) == batch && x.size(2) == features, who,
                      " expects the input spikes of one element of shape [T=", steps, ", batch=", batch,
                      ", features=", features, "], got ", x.sizes());
  } else {
    TORCH_CHECK_VALUE(x.dim() == 2 && x.size(0) == batch && x.size(1) == features, who,
                      " expects one input element of shape [batch=", batch, ", features=", features, "], got ", x.sizes());
  }
  torch::Tensor xc = x.contiguous();
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "snnlstm_stream_finite", [&] {
    const scalar_t* p = xc.data_ptr<scalar_t>();
    for (int64_t q = 0; q < xc.numel(); ++q) finite = finite && std::isfinite(p[q]);
  });
  TORCH_CHECK_VALUE(finite, who, " input contains NaN or infinite values; clean or impute the data first");
  return xc;
}

// ---------------------------------------------------------------------------------------------------
// SpikingLSTM

struct StreamLayer {
  torch::Tensor w_ih_t, w_hh_t, bias, v_sig, leak_sig;  // [F_k, 4H], [H, 4H], [4H], [3H], [3H]
  double vgp = 0, vgn = 0, leak_g = 0, vcp = 0, vcn = 0, leak_c = 0;
};

// the spiking cell of one row: fused_cell.cpp's forward_row without saving or counting
template <typename S, bool SPIKE_I, bool SPIKE_G>
void snn_row(int64_t hid, const S* __restrict__ vs, const S* __restrict__ ls, S vgp, S vgn, S leak_g, S vcp, S vcn,
             S leak_c, S shift, bool standard, bool clamp_c, const S* __restrict__ zr, S* __restrict__ mr,
             S* __restrict__ cr, S* __restrict__ hr, S* __restrict__ ig, S* __restrict__ gg) {
  const S* zi = zr; const S* zf = zr + hid; const S* zo = zr + 2 * hid; const S* zg = zr + 3 * hid;
  if (!SPIKE_I) {  // analog input gate: fused_cell.cpp's analog_i
    const S v = vs[0];
    if (standard)
      for (int64_t j = 0; j < hid; ++j) ig[j] = S(1) / (S(1) + std::exp(-zi[j]));
    else
      for (int64_t j = 0; j < hid; ++j) ig[j] = clamp_to(zi[j] / v + S(0.5), S(0), S(1));
  }
  if (!SPIKE_G) {  // analog g: fused_cell.cpp's analog_g
    if (standard)
      for (int64_t j = 0; j < hid; ++j) gg[j] = std::tanh(zg[j]);
    else
      for (int64_t j = 0; j < hid; ++j)
        gg[j] = clamp_to(zg[j] / vgp, S(0), S(1)) + clamp_to(zg[j] / (-vgn), S(-1), S(0));
  }
  S* mi = mr; S* mf = mr + hid; S* mo = mr + 2 * hid; S* mg = mr + 3 * hid; S* mc = mr + 4 * hid;
  const S* vi = vs; const S* vf = vs + hid; const S* vo = vs + 2 * hid;
  const S* li = ls; const S* lf = ls + hid; const S* lo = ls + 2 * hid;
#pragma omp simd
  for (int64_t j = 0; j < hid; ++j) {
    const S ui = mi[j] * li[j] + zi[j], uf = mf[j] * lf[j] + zf[j], uo = mo[j] * lo[j] + zo[j];
    const S si = S(ui > vi[j]), sf = S(uf > vf[j]), so = S(uo > vo[j]);
    S i_gate, g_gate, m_g;
    if constexpr (SPIKE_I) i_gate = si; else i_gate = ig[j];
    if constexpr (SPIKE_G) {
      const S zg_j = zg[j];
      const S cur = zg_j + (zg_j >= S(0) ? vgp : vgn) * shift;
      const S ug = mg[j] * leak_g + cur;
      const S pg = S(ug > vgp), ng = S(ug < vgn);
      g_gate = pg - ng;
      m_g = ug - pg * vgp - ng * vgn;
    } else {
      g_gate = gg[j];
      m_g = mg[j];
    }
    const S c = sf * cr[j] + i_gate * g_gate;
    const S cur_c = c + (c >= S(0) ? vcp : vcn) * shift;
    const S uc = mc[j] * leak_c + cur_c;
    const S pc = S(uc > vcp), nc = S(uc < vcn);
    hr[j] = so * (pc - nc);
    cr[j] = clamp_c ? clamp_to(c, S(-1), S(1)) : c;
    mi[j] = ui - si * vi[j];
    mf[j] = uf - sf * vf[j];
    mo[j] = uo - so * vo[j];
    mg[j] = m_g;
    mc[j] = uc - pc * vcp - nc * vcn;
  }
}

// the non-spiking cell of one row, in place: ann_layer.cpp's forward_rows (activations as its Act)
template <typename S>
void ann_row(int64_t hid, bool standard, bool clamp_c, S iv_sig, S ivp, S ivn, const S* __restrict__ zr,
             S* __restrict__ cr, S* __restrict__ hr) {
  if (standard) {
    for (int64_t j = 0; j < hid; ++j) {
      const S i = S(1) / (S(1) + std::exp(-zr[j]));
      const S f = S(1) / (S(1) + std::exp(-zr[hid + j]));
      const S o = S(1) / (S(1) + std::exp(-zr[2 * hid + j]));
      const S g = std::tanh(zr[3 * hid + j]);
      const S cn = f * cr[j] + i * g;
      cr[j] = clamp_c ? clamp_to(cn, S(-1), S(1)) : cn;
      hr[j] = o * std::tanh(cn);
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < hid; ++j) {
    const S i = clamp_to(zr[j] * iv_sig + S(0.5), S(0), S(1));
    const S f = clamp_to(zr[hid + j] * iv_sig + S(0.5), S(0), S(1));
    const S o = clamp_to(zr[2 * hid + j] * iv_sig + S(0.5), S(0), S(1));
    const S zg = zr[3 * hid + j];
    const S g = clamp_to(zg * ivp, S(0), S(1)) + clamp_to(zg * ivn, S(-1), S(0));
    const S cn = f * cr[j] + i * g;
    const S tc = clamp_to(cn * ivp, S(0), S(1)) + clamp_to(cn * ivn, S(-1), S(0));
    cr[j] = clamp_c ? clamp_to(cn, S(-1), S(1)) : cn;
    hr[j] = o * tc;
  }
}

class LSTMStream {
 public:
  // h, c: the carried state [L, T, B, H] (ANN mode: T = 1), updated in place by step();
  // layers: per layer (w_ih_t [F_k, 4H], w_hh_t [H, 4H], bias [4H] incl. the SNN offsets, and in SNN
  // mode v_sig [3H], leak_sig [3H]); scalars per layer (vgp, vgn, leak_g, vcp, vcn, leak_c) in SNN mode.
  LSTMStream(bool snn, bool spike_input, bool spike_i, bool spike_g, bool standard, bool clamp_c, double shift, double v_sig,
             double vp, double vn, std::vector<torch::Tensor> w_ih_t, std::vector<torch::Tensor> w_hh_t,
             std::vector<torch::Tensor> bias, std::vector<torch::Tensor> v_sig_vec,
             std::vector<torch::Tensor> leak_sig, std::vector<std::vector<double>> scalars, torch::Tensor h,
             torch::Tensor c)
      : snn_(snn), spike_input_(spike_input), spike_i_(spike_i), spike_g_(spike_g), standard_(standard), clamp_c_(clamp_c), shift_(shift),
        iv_sig_(1.0 / v_sig), ivp_(1.0 / vp), ivn_(-1.0 / vn), h_(h), c_(c) {
    TORCH_CHECK(h.dim() == 4 && h.is_contiguous() && c.sizes() == h.sizes() && c.is_contiguous() &&
                    h.device().is_cpu() && c.scalar_type() == h.scalar_type(),
                "h and c must be contiguous CPU [L, T, B, H] tensors of one dtype");
    dtype_ = h.scalar_type();
    TORCH_CHECK(dtype_ == torch::kFloat32 || dtype_ == torch::kFloat64, "the C++ streaming kernel takes float32/float64");
    layers_n_ = h.size(0); steps_ = h.size(1); batch_ = h.size(2); hid_ = h.size(3);
    TORCH_CHECK(snn || steps_ == 1, "ANN mode keeps one state per layer (T = 1)");
    TORCH_CHECK(snn || !spike_input, "spike inputs (Poisson encoding) need SNN mode");
    const int64_t L = layers_n_, H4 = 4 * hid_;
    TORCH_CHECK((int64_t)w_ih_t.size() == L && (int64_t)w_hh_t.size() == L && (int64_t)bias.size() == L,
                "expected one w_ih_t, w_hh_t and bias per layer");
    if (snn) {
      TORCH_CHECK((int64_t)v_sig_vec.size() == L && (int64_t)leak_sig.size() == L && (int64_t)scalars.size() == L,
                  "SNN mode expects v_sig, leak_sig and scalars per layer");
    }
    for (int64_t k = 0; k < L; ++k) {
      StreamLayer layer;
      const int64_t fan_in = w_ih_t[k].dim() == 2 ? w_ih_t[k].size(0) : -1;
      TORCH_CHECK(k == 0 || fan_in == hid_, "layer ", k, " takes the hidden size as its input size");
      check_weight(w_ih_t[k], fan_in, H4, dtype_, "w_ih_t");
      check_weight(w_hh_t[k], hid_, H4, dtype_, "w_hh_t");
      check_weight(bias[k], H4, -1, dtype_, "bias");
      layer.w_ih_t = w_ih_t[k]; layer.w_hh_t = w_hh_t[k]; layer.bias = bias[k];
      if (snn) {
        check_weight(v_sig_vec[k], 3 * hid_, -1, dtype_, "v_sig");
        check_weight(leak_sig[k], 3 * hid_, -1, dtype_, "leak_sig");
        TORCH_CHECK(scalars[k].size() == 6, "expected 6 scalars per layer (vgp, vgn, leak_g, vcp, vcn, leak_c)");
        layer.v_sig = v_sig_vec[k]; layer.leak_sig = leak_sig[k];
        layer.vgp = scalars[k][0]; layer.vgn = scalars[k][1]; layer.leak_g = scalars[k][2];
        layer.vcp = scalars[k][3]; layer.vcn = scalars[k][4]; layer.leak_c = scalars[k][5];
      }
      layers_.push_back(layer);
    }
    features_ = w_ih_t[0].size(0);
    // scratch: proj [B, 4H], z [4H], membranes [B, 5H], analog i and g [2H]
    scratch_ = torch::zeros({batch_ * H4 + H4 + batch_ * 5 * hid_ + 2 * hid_}, h.options());
  }

  // one input element x [B, F] (spike_input: its encoded spikes [T, B, F]) -> the last layer's output
  // [B, H] (SNN: spike rate over the T steps)
  torch::Tensor step(const torch::Tensor& x) {
    torch::Tensor xc = checked_input(x, batch_, features_, dtype_, "SpikingLSTM streamer", spike_input_ ? steps_ : 0);
    torch::Tensor out = torch::empty({batch_, hid_}, h_.options());
    if (dtype_ == torch::kFloat32)
      run<float>(xc.data_ptr<float>(), out.data_ptr<float>());
    else
      run<double>(xc.data_ptr<double>(), out.data_ptr<double>());
    return out;
  }

 private:
  template <typename S>
  void run(const S* x, S* out) {
    if (snn_) {
      StreamFlushDenormals ftz;
      if (spike_i_ && spike_g_) run_snn<S, true, true>(x, out);
      else if (spike_i_) run_snn<S, true, false>(x, out);
      else if (spike_g_) run_snn<S, false, true>(x, out);
      else run_snn<S, false, false>(x, out);
    } else {
      run_ann<S>(x, out);
    }
  }

  template <typename S, bool SPIKE_I, bool SPIKE_G>
  void run_snn(const S* x, S* out) {
    const int64_t H = hid_, H4 = 4 * H, T = steps_, B = batch_;
    S* h = h_.data_ptr<S>();
    S* c = c_.data_ptr<S>();
    S* proj = scratch_.data_ptr<S>();
    S* z = proj + B * H4;
    S* mem = z + H4;
    S* ig = mem + B * 5 * H;
    S* gg = ig + H;
    const S shift = S(shift_);
    for (int64_t k = 0; k < layers_n_; ++k) {
      const StreamLayer& L = layers_[k];
      const S* w_ih = L.w_ih_t.data_ptr<S>();
      const S* w_hh = L.w_hh_t.data_ptr<S>();
      const S* bias = L.bias.data_ptr<S>();
      const S* vs = L.v_sig.data_ptr<S>();
      const S* ls = L.leak_sig.data_ptr<S>();
      const int64_t fan_in = L.w_ih_t.size(0);
      S* hk = h + k * T * B * H;
      S* ck = c + k * T * B * H;
      const S* below = h + (k - 1) * T * B * H;  // layer k-1's spikes of this element (k > 0)
      if (k == 0 && !spike_input_)  // direct encoding: the same input current at every step
        for (int64_t b = 0; b < B; ++b) {
          std::copy(bias, bias + H4, proj + b * H4);
          add_rows<S>(x + b * fan_in, fan_in, w_ih, H4, proj + b * H4);
        }
      std::fill(mem, mem + B * 5 * H, S(0));  // membranes start at rest every element
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t b = 0; b < B; ++b) {
          const int64_t row = (t * B + b) * H;
          if (k == 0 && !spike_input_) {
            std::copy(proj + b * H4, proj + (b + 1) * H4, z);
          } else if (k == 0) {  // encoded input spikes of step t
            std::copy(bias, bias + H4, z);
            add_rows<S>(x + (t * B + b) * fan_in, fan_in, w_ih, H4, z);
          } else {
            std::copy(bias, bias + H4, z);
            add_rows<S>(below + row, H, w_ih, H4, z);
          }
          add_rows<S>(hk + row, H, w_hh, H4, z);  // h of the previous element at step t
          snn_row<S, SPIKE_I, SPIKE_G>(H, vs, ls, S(L.vgp), S(L.vgn), S(L.leak_g), S(L.vcp), S(L.vcn), S(L.leak_c),
                                        shift, standard_, clamp_c_, z, mem + b * 5 * H, ck + row, hk + row, ig, gg);
        }
      }
    }
    const S* top = h + (layers_n_ - 1) * T * B * H;
    for (int64_t q = 0; q < B * H; ++q) {  // the spike rate: sum over the steps, then / T (as Tensor.mean)
      S sum = top[q];
      for (int64_t t = 1; t < T; ++t) sum += top[t * B * H + q];
      out[q] = sum / S(T);
    }
  }

  template <typename S>
  void run_ann(const S* x, S* out) {
    const int64_t H = hid_, H4 = 4 * H, B = batch_;
    S* h = h_.data_ptr<S>();
    S* c = c_.data_ptr<S>();
    S* z = scratch_.data_ptr<S>() + B * H4;
    const S iv_sig = S(iv_sig_), ivp = S(ivp_), ivn = S(ivn_);
    for (int64_t k = 0; k < layers_n_; ++k) {
      const StreamLayer& L = layers_[k];
      const S* w_ih = L.w_ih_t.data_ptr<S>();
      const S* w_hh = L.w_hh_t.data_ptr<S>();
      const S* bias = L.bias.data_ptr<S>();
      const int64_t fan_in = L.w_ih_t.size(0);
      const S* in = k == 0 ? x : h + (k - 1) * B * H;
      for (int64_t b = 0; b < B; ++b) {
        std::copy(bias, bias + H4, z);
        add_rows<S>(in + b * fan_in, fan_in, w_ih, H4, z);
        add_rows<S>(h + (k * B + b) * H, H, w_hh, H4, z);
        ann_row<S>(H, standard_, clamp_c_, iv_sig, ivp, ivn, z, c + (k * B + b) * H, h + (k * B + b) * H);
      }
    }
    std::copy(h + (layers_n_ - 1) * B * H, h + layers_n_ * B * H, out);
  }

  bool snn_, spike_input_, spike_i_, spike_g_, standard_, clamp_c_;
  double shift_, iv_sig_, ivp_, ivn_;
  torch::Tensor h_, c_, scratch_;
  torch::ScalarType dtype_;
  int64_t layers_n_ = 0, steps_ = 1, batch_ = 1, hid_ = 0, features_ = 0;
  std::vector<StreamLayer> layers_;
};

// ---------------------------------------------------------------------------------------------------
// LSNN

class LSNNStream {
 public:
  // w_in_t [F, K], bias [K], w_rec_t [K, K] (I = b + x @ w_in_t + z @ w_rec_t), per-neuron theta, alpha,
  // rho, w [K]; the carried state z, v, a, r [B, K], updated in place by step().
  LSNNStream(torch::Tensor w_in_t, torch::Tensor bias, torch::Tensor w_rec_t, torch::Tensor theta, torch::Tensor alpha,
             torch::Tensor rho, torch::Tensor w, int64_t refractory, torch::Tensor z, torch::Tensor v,
             torch::Tensor a, torch::Tensor r)
      : w_in_t_(w_in_t), bias_(bias), w_rec_t_(w_rec_t), theta_(theta), alpha_(alpha), rho_(rho), w_(w),
        refractory_(refractory), z_(z), v_(v), a_(a), r_(r) {
    dtype_ = z.scalar_type();
    TORCH_CHECK(dtype_ == torch::kFloat32 || dtype_ == torch::kFloat64, "the C++ streaming kernel takes float32/float64");
    TORCH_CHECK(z.dim() == 2 && z.device().is_cpu(), "z must be a CPU [B, K] tensor");
    batch_ = z.size(0); k_ = z.size(1);
    for (const torch::Tensor* t : {&z, &v, &a, &r})
      TORCH_CHECK(t->is_contiguous() && t->sizes() == z.sizes() && t->scalar_type() == dtype_ && t->device().is_cpu(),
                  "z, v, a, r must be contiguous CPU [B, K] tensors of one dtype");
    TORCH_CHECK(w_in_t.dim() == 2, "w_in_t must be [F, K]");
    features_ = w_in_t.size(0);
    check_weight(w_in_t, features_, k_, dtype_, "w_in_t");
    check_weight(w_rec_t, k_, k_, dtype_, "w_rec_t");
    check_weight(bias, k_, -1, dtype_, "bias");
    for (const torch::Tensor* t : {&theta, &alpha, &rho, &w}) check_weight(*t, k_, -1, dtype_, "neuron parameter");
    TORCH_CHECK(refractory >= 0, "refractory must be >= 0");
    current_ = torch::zeros({batch_, k_}, z.options());
  }

  // one step x [B, F] -> spikes z [B, K]
  torch::Tensor step(const torch::Tensor& x) {
    torch::Tensor xc = checked_input(x, batch_, features_, dtype_, "LSNN streamer");
    if (dtype_ == torch::kFloat32) run<float>(xc.data_ptr<float>());
    else run<double>(xc.data_ptr<double>());
    return z_.clone();
  }

 private:
  template <typename S>
  void run(const S* x) {
    const int64_t K = k_, F = features_;
    const S* th = theta_.data_ptr<S>();
    const S* al = alpha_.data_ptr<S>();
    const S* rh = rho_.data_ptr<S>();
    const S* wp = w_.data_ptr<S>();
    const S* bias = bias_.data_ptr<S>();
    const S* w_in = w_in_t_.data_ptr<S>();
    const S* w_rec = w_rec_t_.data_ptr<S>();
    S* zp = z_.data_ptr<S>();
    S* vp = v_.data_ptr<S>();
    S* ap = a_.data_ptr<S>();
    S* rp = r_.data_ptr<S>();
    S* cur = current_.data_ptr<S>();
    const S refr = static_cast<S>(refractory_);
    for (int64_t b = 0; b < batch_; ++b) {  // I = b + W_in x + W_rec z(t-1), from the spikes of the last step
      S* row = cur + b * K;
      std::copy(bias, bias + K, row);
      add_rows<S>(x + b * F, F, w_in, K, row);
      const S* zq = zp + b * K;
      for (int64_t i = 0; i < K; ++i) {  // lsnn_layer.cpp's recurrent sum: row += z_i * W_rec^T[i]
        const S zi = zq[i];
        if (zi != S(0)) {
          const S* wrow = w_rec + i * K;
#pragma omp simd
          for (int64_t j = 0; j < K; ++j) row[j] += zi * wrow[j];
        }
      }
    }
    for (int64_t b = 0; b < batch_; ++b) {  // lsnn_layer.cpp's neuron update, operation for operation
      const int64_t o = b * K;
#pragma omp simd
      for (int64_t j = 0; j < K; ++j) {
        const S nonref = rp[o + j] > S(0) ? S(0) : S(1);
        const S vhat = nonref * (al[j] * vp[o + j] + cur[o + j] + ap[o + j]);
        const S z = nonref * (vhat / th[j] - S(1) > S(0) ? S(1) : S(0));
        zp[o + j] = z;
        vp[o + j] = vhat * (S(1) - z);
        ap[o + j] = rh[j] * ap[o + j] - wp[j] * z;
        rp[o + j] = z * refr + (S(1) - z) * std::max(rp[o + j] - S(1), S(0));
      }
    }
  }

  torch::Tensor w_in_t_, bias_, w_rec_t_, theta_, alpha_, rho_, w_;
  int64_t refractory_;
  torch::Tensor z_, v_, a_, r_, current_;
  torch::ScalarType dtype_;
  int64_t batch_ = 1, k_ = 0, features_ = 0;
};

}  // namespace

// Adds LSTMStream and LSNNStream to the extension module (called from its PYBIND11_MODULE block in
// fused_cell.cpp).
void register_streaming(py::module_& m) {
  py::class_<LSTMStream>(m, "LSTMStream", "SpikingLSTM streaming kernel: one input element per step() call")
      .def(py::init<bool, bool, bool, bool, bool, bool, double, double, double, double, std::vector<torch::Tensor>,
                    std::vector<torch::Tensor>, std::vector<torch::Tensor>, std::vector<torch::Tensor>,
                    std::vector<torch::Tensor>, std::vector<std::vector<double>>, torch::Tensor, torch::Tensor>())
      .def("step", &LSTMStream::step, "one input element [B, F] -> the last layer's output [B, H]");
  py::class_<LSNNStream>(m, "LSNNStream", "LSNN streaming kernel: one time step per step() call")
      .def(py::init<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                    torch::Tensor, int64_t, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor>())
      .def("step", &LSNNStream::step, "one input step [B, F] -> spikes [B, K]");
}
