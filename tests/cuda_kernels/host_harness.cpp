// Host-side harness of snn/cuda_kernels/neuron.cuh: the same per-neuron loops the CUDA kernels
// run, called for every neuron on the CPU, so the test-suite can hold the kernel arithmetic to
// the PyTorch reference without a GPU. Built as a shared library and driven through ctypes.
#include "neuron.cuh"

namespace {

template <typename S>
void run_forward(const void* x, const void* v0, const void* i0, const void* a0,
                 const void* beta, const void* c, const void* thr, void* spikes, void* h,
                 void* a_prev, void* v_rec, void* vT, void* iT, void* aT, long long T,
                 long long N, const int* flags, const double* consts) {
  typedef typename snn::io<S>::acc A;
  snn::Config<A> cfg = {};
  cfg.kind = flags[0];
  cfg.reset = flags[1];
  cfg.bs = flags[2];
  cfg.ts = flags[3];
  cfg.record = flags[4];
  cfg.v_reset = A(consts[0]);
  cfg.alpha = A(consts[1]);
  cfg.rho = A(consts[2]);
  cfg.c_rho = A(consts[3]);
  cfg.gamma = A(consts[4]);
  snn::ForwardBuffers<S> b;
  b.x = static_cast<const S*>(x);
  b.v0 = static_cast<const S*>(v0);
  b.i0 = static_cast<const S*>(i0);
  b.a0 = static_cast<const S*>(a0);
  b.beta = static_cast<const A*>(beta);
  b.c = static_cast<const A*>(c);
  b.thr = static_cast<const A*>(thr);
  b.spikes = static_cast<S*>(spikes);
  b.h = static_cast<S*>(h);
  b.a_prev = static_cast<S*>(a_prev);
  b.v_rec = static_cast<S*>(v_rec);
  b.vT = static_cast<S*>(vT);
  b.iT = static_cast<S*>(iT);
  b.aT = static_cast<S*>(aT);
  b.T = T;
  b.N = N;
  for (long long n = 0; n < N; ++n) snn::forward_neuron<S>(cfg, b, n);
}

template <typename S>
void run_backward(const void* const* in, void* const* out, long long T, long long N,
                  const int* flags, const double* consts) {
  typedef typename snn::io<S>::acc A;
  snn::Config<A> cfg = {};
  cfg.kind = flags[0];
  cfg.reset = flags[1];
  cfg.bs = flags[2];
  cfg.ts = flags[3];
  cfg.detach = flags[5];
  cfg.sid = flags[6];
  cfg.gs_mode = flags[7];
  cfg.gv_mode = flags[8];
  cfg.want_beta = flags[9];
  cfg.decay_input = flags[10];
  cfg.want_thr = flags[11];
  cfg.v_reset = A(consts[0]);
  cfg.alpha = A(consts[1]);
  cfg.rho = A(consts[2]);
  cfg.c_rho = A(consts[3]);
  cfg.gamma = A(consts[4]);
  cfg.k0 = A(consts[5]);
  cfg.k1 = A(consts[6]);
  cfg.k2 = A(consts[7]);
  snn::BackwardBuffers<S> b;
  const S* const* i = reinterpret_cast<const S* const*>(in);
  b.h = i[0];
  b.a_prev = i[1];
  b.x = i[2];
  b.v0 = i[3];
  b.beta = static_cast<const A*>(in[4]);
  b.c = static_cast<const A*>(in[5]);
  b.thr = static_cast<const A*>(in[6]);
  b.gs = i[7];
  b.gv = i[8];
  b.gvT = i[9];
  b.giT = i[10];
  b.gaT = i[11];
  b.gx = static_cast<S*>(out[0]);
  b.gv0 = static_cast<S*>(out[1]);
  b.gi0 = static_cast<S*>(out[2]);
  b.ga0 = static_cast<S*>(out[3]);
  b.gbeta = static_cast<A*>(out[4]);
  b.gthr = static_cast<A*>(out[5]);
  b.T = T;
  b.N = N;
  for (long long n = 0; n < N; ++n) snn::backward_neuron<S>(cfg, b, n);
}

}  // namespace

// dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16
extern "C" int snn_host_forward(int dtype, const void* x, const void* v0, const void* i0,
                                const void* a0, const void* beta, const void* c,
                                const void* thr, void* spikes, void* h, void* a_prev,
                                void* v_rec, void* vT, void* iT, void* aT, long long T,
                                long long N, const int* flags, const double* consts) {
  switch (dtype) {
    case 0:
      run_forward<float>(x, v0, i0, a0, beta, c, thr, spikes, h, a_prev, v_rec, vT, iT, aT, T,
                         N, flags, consts);
      return 0;
    case 1:
      run_forward<double>(x, v0, i0, a0, beta, c, thr, spikes, h, a_prev, v_rec, vT, iT, aT,
                          T, N, flags, consts);
      return 0;
    case 2:
      run_forward<snn::half_t>(x, v0, i0, a0, beta, c, thr, spikes, h, a_prev, v_rec, vT, iT,
                               aT, T, N, flags, consts);
      return 0;
    case 3:
      run_forward<snn::bf16_t>(x, v0, i0, a0, beta, c, thr, spikes, h, a_prev, v_rec, vT, iT,
                               aT, T, N, flags, consts);
      return 0;
  }
  return 1;
}

extern "C" int snn_host_backward(int dtype, const void* const* in, void* const* out,
                                 long long T, long long N, const int* flags,
                                 const double* consts) {
  switch (dtype) {
    case 0:
      run_backward<float>(in, out, T, N, flags, consts);
      return 0;
    case 1:
      run_backward<double>(in, out, T, N, flags, consts);
      return 0;
    case 2:
      run_backward<snn::half_t>(in, out, T, N, flags, consts);
      return 0;
    case 3:
      run_backward<snn::bf16_t>(in, out, T, N, flags, consts);
      return 0;
  }
  return 1;
}

// conversions, exposed so the test can compare them with torch's rounding
extern "C" unsigned short snn_host_float_to_half(float f) { return snn::float_to_half(f); }
extern "C" float snn_host_half_to_float(unsigned short h) { return snn::half_to_float(h); }
extern "C" unsigned short snn_host_float_to_bf16(float f) { return snn::float_to_bf16(f); }
