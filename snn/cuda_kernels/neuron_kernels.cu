// Fused whole-sequence kernels: one thread per neuron runs the time loop of neuron.cuh, so a
// sequence [T, N] takes one launch forward and one launch backward. Loads and stores of step t
// are coalesced across the threads of a block (element t * N + n).
//
// The kernels are templates: the storage dtype S (float, double, snn::half_t, snn::bf16_t),
// the neuron family, the reset mode, and (backward) detach_reset and the surrogate id are
// compile-time constants, so every branch on them folds away. snn/cuda_kernels/ops.py compiles
// the instantiation a run needs with NVRTC (through CuPy) on first use and caches it.
#include "neuron.cuh"

template <typename S, int KIND, int RESET>
__global__ void __launch_bounds__(256)
    snn_forward(const S* x, const S* v0, const S* i0, const S* a0,
                const typename snn::io<S>::acc* beta, const typename snn::io<S>::acc* c,
                const typename snn::io<S>::acc* thr, S* spikes, S* h, S* a_prev, S* v_rec, S* vT, S* iT, S* aT,
                long long T, long long N, int bs, int ts, int record,
                typename snn::io<S>::acc v_reset, typename snn::io<S>::acc alpha,
                typename snn::io<S>::acc rho, typename snn::io<S>::acc c_rho,
                typename snn::io<S>::acc gamma) {
  typedef typename snn::io<S>::acc A;
  const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  snn::Config<A> cfg;
  cfg.kind = KIND;
  cfg.reset = RESET;
  cfg.detach = 0;
  cfg.sid = 0;
  cfg.bs = bs;
  cfg.ts = ts;
  cfg.record = record;
  cfg.gs_mode = cfg.gv_mode = snn::GRAD_NONE;
  cfg.want_beta = cfg.decay_input = cfg.want_thr = 0;
  cfg.v_reset = v_reset;
  cfg.alpha = alpha;
  cfg.rho = rho;
  cfg.c_rho = c_rho;
  cfg.gamma = gamma;
  cfg.k0 = cfg.k1 = cfg.k2 = A(0);
  snn::ForwardBuffers<S> b;
  b.x = x;
  b.v0 = v0;
  b.i0 = i0;
  b.a0 = a0;
  b.beta = beta;
  b.c = c;
  b.thr = thr;
  b.spikes = spikes;
  b.h = h;
  b.a_prev = a_prev;
  b.v_rec = v_rec;
  b.vT = vT;
  b.iT = iT;
  b.aT = aT;
  b.T = T;
  b.N = N;
  snn::forward_neuron<S>(cfg, b, n);
}

template <typename S, int KIND, int RESET, int DETACH, int SID>
__global__ void __launch_bounds__(256)
    snn_backward(const S* h, const S* a_prev, const S* x, const S* v0,
                 const typename snn::io<S>::acc* beta, const typename snn::io<S>::acc* c,
                 const typename snn::io<S>::acc* thr, const S* gs, const S* gv, const S* gvT,
                 const S* giT, const S* gaT, S* gx, S* gv0, S* gi0, S* ga0,
                 typename snn::io<S>::acc* gbeta, typename snn::io<S>::acc* gthr, long long T,
                 long long N, int bs, int ts, int gs_mode, int gv_mode, int want_beta,
                 int decay_input, int want_thr, typename snn::io<S>::acc v_reset,
                 typename snn::io<S>::acc alpha, typename snn::io<S>::acc rho,
                 typename snn::io<S>::acc c_rho, typename snn::io<S>::acc gamma,
                 typename snn::io<S>::acc k0, typename snn::io<S>::acc k1,
                 typename snn::io<S>::acc k2) {
  typedef typename snn::io<S>::acc A;
  const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  snn::Config<A> cfg;
  cfg.kind = KIND;
  cfg.reset = RESET;
  cfg.detach = DETACH;
  cfg.sid = SID;
  cfg.bs = bs;
  cfg.ts = ts;
  cfg.record = 0;
  cfg.gs_mode = gs_mode;
  cfg.gv_mode = gv_mode;
  cfg.want_beta = want_beta;
  cfg.decay_input = decay_input;
  cfg.want_thr = want_thr;
  cfg.v_reset = v_reset;
  cfg.alpha = alpha;
  cfg.rho = rho;
  cfg.c_rho = c_rho;
  cfg.gamma = gamma;
  cfg.k0 = k0;
  cfg.k1 = k1;
  cfg.k2 = k2;
  snn::BackwardBuffers<S> b;
  b.h = h;
  b.a_prev = a_prev;
  b.x = x;
  b.v0 = v0;
  b.beta = beta;
  b.c = c;
  b.thr = thr;
  b.gs = gs;
  b.gv = gv;
  b.gvT = gvT;
  b.giT = giT;
  b.gaT = gaT;
  b.gx = gx;
  b.gv0 = gv0;
  b.gi0 = gi0;
  b.ga0 = ga0;
  b.gbeta = gbeta;
  b.gthr = gthr;
  b.T = T;
  b.N = N;
  snn::backward_neuron<S>(cfg, b, n);
}
