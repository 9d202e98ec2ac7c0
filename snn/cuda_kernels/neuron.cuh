// Per-neuron time loops of the fused kernels, forward and backward, written once for the GPU
// (neuron_kernels.cu, compiled by NVRTC through CuPy or by nvcc) and for the host (a C++
// harness in the test-suite compiles this header with g++ and checks it against the PyTorch
// reference). Keep the arithmetic here in the same order as snn/functional: no fused
// multiply-add (the kernels are compiled with --fmad=false), one rounding per operation.
//
// The general neuron (see snn/fused/description.py for the equations):
//   i_t = alpha i_{t-1} + x_t                      (CuBa; otherwise u_t = x_t)
//   h_t = beta v_{t-1} + c u_t                     (c = 1 - beta with decay_input, else 1)
//   theta_t = theta + gamma a_{t-1}                (ALIF; otherwise theta)
//   s_t = fire(h_t, theta_t),  v_t = reset(h_t, s_t)
//   a_t = rho a_{t-1} + (1 - rho) s_t              (ALIF)
// fire: binary [h - theta >= 0]; multi-level round(clip(h / theta, 0, D)); ternary
// [h - theta >= 0] - [-h - theta >= 0]. The integration kind is a template parameter of the
// kernels; reset, fire rule and surrogate are uniform run-time values (no divergence).
// Backward keeps h_t (and a_{t-1} for ALIF) in the storage dtype; spikes and post-reset
// membranes are recomputed from it.
#pragma once

#include "kernel_args.h"

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SNN_HD __host__ __device__ __forceinline__
#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstring>
#endif
#else
#include <cmath>
#include <cstring>
#define SNN_HD inline
#endif

namespace snn {

enum Kind { KIND_LIF = 0, KIND_LI = 1, KIND_CUBA = 2, KIND_ALIF = 3 };
enum Reset { RESET_SUBTRACT = 0, RESET_HARD = 1, RESET_NONE = 2 };
enum Fire { FIRE_BINARY = 0, FIRE_MULTILEVEL = 1, FIRE_TERNARY = 2 };
enum GradMode { GRAD_FULL = 0, GRAD_SCALAR = 1, GRAD_NONE = 2 };

typedef long long index_t;

// ---------------------------------------------------------------------------------------------
// storage types and their conversion to the compute type (float, or double for double)

struct half_t {
  unsigned short bits;
};
struct bf16_t {
  unsigned short bits;
};

SNN_HD unsigned int float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  unsigned int u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}

SNN_HD float bits_float(unsigned int u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// IEEE binary16 <-> binary32, round to nearest even (the GPU uses its conversion instruction;
// the host path computes the identical result in software).
SNN_HD float half_to_float(unsigned short h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  const unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
  const unsigned int e = (h >> 10) & 0x1fu;
  const unsigned int m = h & 0x3ffu;
  if (e == 0x1fu) return bits_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    const float f = (float)m * 5.9604644775390625e-8f;  // m * 2^-24, exact
    return sign ? -f : f;
  }
  return bits_float(sign | ((e + 112u) << 23) | (m << 13));
#endif
}

SNN_HD unsigned short float_to_half(float f) {
#if defined(__CUDA_ARCH__)
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  const unsigned int x = float_bits(f);
  const unsigned int sign = (x >> 16) & 0x8000u;
  const unsigned int ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (unsigned short)(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // rounds to infinity
  if (ax < 0x38800000u) {                                           // half subnormal or zero
    if (ax <= 0x33000000u) return (unsigned short)sign;            // <= 2^-25: ties to zero
    const unsigned int e = ax >> 23;
    const unsigned int m = (ax & 0x7fffffu) | 0x800000u;
    const unsigned int shift = 126u - e;
    unsigned int r = m >> shift;
    const unsigned int rem = m & ((1u << shift) - 1u);
    const unsigned int halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return (unsigned short)(sign | r);
  }
  unsigned int r = (ax - 0x38000000u) >> 13;
  const unsigned int rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return (unsigned short)(sign | r);
#endif
}

// bfloat16 <-> binary32, round to nearest even; NaN stays a quiet NaN.
SNN_HD float bf16_to_float(unsigned short b) { return bits_float((unsigned int)b << 16); }

SNN_HD unsigned short float_to_bf16(float f) {
  const unsigned int x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);
  return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

template <typename S>
struct io;

template <>
struct io<float> {
  typedef float acc;
  static SNN_HD float load(float v) { return v; }
  static SNN_HD float store(float v) { return v; }
};

template <>
struct io<double> {
  typedef double acc;
  static SNN_HD double load(double v) { return v; }
  static SNN_HD double store(double v) { return v; }
};

template <>
struct io<half_t> {
  typedef float acc;
  static SNN_HD float load(half_t v) { return half_to_float(v.bits); }
  static SNN_HD half_t store(float v) {
    half_t r;
    r.bits = float_to_half(v);
    return r;
  }
};

template <>
struct io<bf16_t> {
  typedef float acc;
  static SNN_HD float load(bf16_t v) { return bf16_to_float(v.bits); }
  static SNN_HD bf16_t store(float v) {
    bf16_t r;
    r.bits = float_to_bf16(v);
    return r;
  }
};

// round a compute value to the storage dtype and back
template <typename S>
SNN_HD typename io<S>::acc round_to(typename io<S>::acc v) {
  return io<S>::load(io<S>::store(v));
}

// ---------------------------------------------------------------------------------------------
// math used by the surrogates

SNN_HD float abs_(float v) { return fabsf(v); }
SNN_HD double abs_(double v) { return fabs(v); }
SNN_HD float exp_(float v) { return expf(v); }
SNN_HD double exp_(double v) { return exp(v); }
SNN_HD float rint_(float v) { return rintf(v); }
SNN_HD double rint_(double v) { return rint(v); }

// Surrogate derivative g'(z) selected by kernel_id (snn.surrogate), constants k0..k2 from
// the surrogate's kernel_constants() (snn.surrogate).
template <typename A>
SNN_HD A surrogate_grad(int sid, A z, A k0, A k1, A k2) {
  const A one = A(1), zero = A(0);
  switch (sid) {
    case 0: {  // atan
      const A t = k1 * z;
      return k0 / (one + t * t);
    }
    case 1: {  // sigmoid
      const A e = one / (one + exp_(-(k0 * z)));
      return k0 * e * (one - e);
    }
    case 2: {  // fast sigmoid
      const A q = one + k0 * abs_(z);
      return one / (q * q);
    }
    case 3: {  // soft sign
      A q = one + k0 * abs_(z);
      q = q * q;
      return k0 / (q + q);
    }
    case 4: {  // triangle
      const A r = k0 - k1 * abs_(z);
      return r > zero ? r : zero;
    }
    case 5: {  // piecewise quadratic
      const A t = k1 * z;
      const A r = one - t * t;
      return k0 * (r > zero ? r : zero);
    }
    case 6:  // rectangle
      return abs_(z) < k1 ? k0 : zero;
    case 7: {  // erf (gaussian)
      const A t = k1 * z;
      return k0 * exp_(k2 * (t * t));
    }
    default:  // straight through
      return k0;
  }
}

// ---------------------------------------------------------------------------------------------
// kernel arguments (declared once in kernel_args.h)

#define SNN_T_IN const S*
#define SNN_T_OUT S*
#define SNN_T_PIN const A*
#define SNN_T_POUT A*
#define SNN_T_I64 long long
#define SNN_T_I32 int
#define SNN_T_ACC A
#define SNN_DECLARE_FIELD(kind, name) SNN_T_##kind name;

template <typename S>
struct ForwardArgs {
  typedef typename io<S>::acc A;
  SNN_FORWARD_ARGS(SNN_DECLARE_FIELD)
};

template <typename S>
struct BackwardArgs {
  typedef typename io<S>::acc A;
  SNN_BACKWARD_ARGS(SNN_DECLARE_FIELD)
};

// ---------------------------------------------------------------------------------------------
// the spike rules and the reset

// spikes of the pre-reset membrane h at threshold th
template <typename A>
SNN_HD A fire(int rule, A h, A th, A levels) {
  const A one = A(1), zero = A(0);
  if (rule == FIRE_MULTILEVEL) {
    A q = h / th;
    q = q < zero ? zero : (q > levels ? levels : q);
    return rint_(q);
  }
  if (rule == FIRE_TERNARY) {
    const A p = h - th >= zero ? one : zero;
    const A m = (-h) - th >= zero ? one : zero;
    return p - m;
  }
  return h - th >= zero ? one : zero;
}

// how much of the membrane a hard reset replaces: |s| for ternary spikes, s otherwise
template <typename A>
SNN_HD A reset_mask(int rule, A s) {
  return rule == FIRE_TERNARY ? abs_(s) : s;
}

// post-reset membrane from the pre-reset one
template <typename A>
SNN_HD A reset_membrane(int reset, int rule, A h, A s, A th, A v_reset) {
  if (reset == RESET_SUBTRACT) return h - s * th;
  if (reset == RESET_HARD) return h - reset_mask(rule, s) * (h - v_reset);
  return h;
}

// ---------------------------------------------------------------------------------------------
// the whole sequence of neuron n, forward

template <typename S, int KIND>
SNN_HD void forward_neuron(const ForwardArgs<S>& b, index_t n) {
  typedef typename io<S>::acc A;
  typedef io<S> IO;
  const A zero = A(0);
  A v = IO::load(b.v0[n]);
  A cur = KIND == KIND_CUBA ? IO::load(b.i0[n]) : zero;
  A a = KIND == KIND_ALIF ? IO::load(b.a0[n]) : zero;
  const A beta = b.beta[n * b.bs];
  const A c = b.c[n * b.bs];
  const A thr = KIND == KIND_LI ? zero : b.thr[n * b.ts];
#if defined(__CUDA_ARCH__)
#pragma unroll 4
#endif
  for (index_t t = 0; t < b.T; ++t) {
    const index_t k = t * b.N + n;
    A u = IO::load(b.x[k]);
    if (KIND == KIND_CUBA) {
      cur = b.alpha * cur + u;
      u = cur;
    }
    const A h = round_to<S>(beta * v + c * u);
    if (KIND == KIND_LI) {
      v = h;
      b.spikes[k] = IO::store(h);
      if (b.record) b.v_rec[k] = IO::store(h);
      continue;
    }
    A th = thr;
    if (KIND == KIND_ALIF) {
      b.a_prev[k] = IO::store(a);
      th = thr + b.gamma * a;
    }
    const A s = fire(b.fire, h, th, b.levels);
    v = reset_membrane(b.reset, b.fire, h, s, th, b.v_reset);
    if (KIND == KIND_ALIF) a = round_to<S>(b.rho * a + b.c_rho * s);
    b.spikes[k] = IO::store(s);
    b.h[k] = IO::store(h);
    if (b.record) b.v_rec[k] = IO::store(v);
  }
  b.vT[n] = IO::store(v);
  if (KIND == KIND_CUBA) b.iT[n] = IO::store(cur);
  if (KIND == KIND_ALIF) b.aT[n] = IO::store(a);
}

// ---------------------------------------------------------------------------------------------
// the whole sequence of neuron n, backward (one reverse pass)

template <typename S, int KIND>
SNN_HD void backward_neuron(const BackwardArgs<S>& b, index_t n) {
  typedef typename io<S>::acc A;
  typedef io<S> IO;
  const A one = A(1), zero = A(0);
  A dv = IO::load(b.gvT[n]);
  A di = KIND == KIND_CUBA ? IO::load(b.giT[n]) : zero;
  A da = KIND == KIND_ALIF ? IO::load(b.gaT[n]) : zero;
  const A beta = b.beta[n * b.bs];
  const A c = b.c[n * b.bs];
  const A thr = KIND == KIND_LI ? zero : b.thr[n * b.ts];
  const A gs_all = b.gs_mode == GRAD_SCALAR ? IO::load(b.gs[0]) : zero;
  const A gv_all = b.gv_mode == GRAD_SCALAR ? IO::load(b.gv[0]) : zero;
  A acc_beta = zero, acc_thr = zero;
#if defined(__CUDA_ARCH__)
#pragma unroll 4
#endif
  for (index_t t = b.T - 1; t >= 0; --t) {
    const index_t k = t * b.N + n;
    if (b.gv_mode == GRAD_FULL) {
      dv = dv + IO::load(b.gv[k]);
    } else if (b.gv_mode == GRAD_SCALAR) {
      dv = dv + gv_all;
    }
    A ds = b.gs_mode == GRAD_FULL ? IO::load(b.gs[k]) : gs_all;
    A dh;
    if (KIND == KIND_LI) {
      dh = dv + ds;
    } else {
      const A ht = IO::load(b.h[k]);
      A th = thr;
      if (KIND == KIND_ALIF) {
        th = thr + b.gamma * IO::load(b.a_prev[k]);
        ds = ds + b.c_rho * da;
      }
      const A s = fire(b.fire, ht, th, b.levels);
      A dth = zero, dr = zero;  // dr: gradient reaching the hard-reset mask
      if (b.reset == RESET_SUBTRACT) {
        dh = dv;
        dth = -(s * dv);
        if (!b.detach) ds = ds - th * dv;
      } else if (b.reset == RESET_HARD) {
        dh = dv * (one - reset_mask(b.fire, s));
        if (!b.detach) dr = (b.v_reset - ht) * dv;
      } else {
        dh = dv;
      }
      if (b.fire == FIRE_MULTILEVEL) {
        // straight-through estimator on the window 0 <= h / th <= D (Luo et al. 2024)
        const A q = ht / th;
        const A dq = q >= zero && q <= b.levels ? ds : zero;
        dh = dh + dq / th;
        dth = dth - dq * (q / th);
      } else if (b.fire == FIRE_TERNARY) {
        const A gp = surrogate_grad<A>(b.sid, ht - th, b.k0, b.k1, b.k2);
        const A gm = surrogate_grad<A>(b.sid, (-ht) - th, b.k0, b.k1, b.k2);
        const A dp = (ds + dr) * gp;
        const A dm = (dr - ds) * gm;
        dh = dh + dp - dm;
        dth = dth - dp - dm;
      } else {
        const A dz = (ds + dr) * surrogate_grad<A>(b.sid, ht - th, b.k0, b.k1, b.k2);
        dh = dh + dz;
        dth = dth - dz;
      }
      if (KIND == KIND_ALIF) da = b.rho * da + b.gamma * dth;
      if (b.want_thr) acc_thr += dth;
    }
    if (b.want_beta) {
      // v_{t-1}, recomputed from h_{t-1} exactly as the forward pass computed it
      A vp;
      if (t == 0) {
        vp = IO::load(b.v0[n]);
      } else if (KIND == KIND_LI) {
        vp = IO::load(b.h[k - b.N]);
      } else {
        const A hp = IO::load(b.h[k - b.N]);
        A thp = thr;  // the threshold at t-1 (ALIF: adapted by a_{t-2})
        if (KIND == KIND_ALIF) thp = thr + b.gamma * IO::load(b.a_prev[k - b.N]);
        const A sp = fire(b.fire, hp, thp, b.levels);
        vp = reset_membrane(b.reset, b.fire, hp, sp, thp, b.v_reset);
      }
      acc_beta += dh * vp;
      if (b.decay_input) acc_beta -= dh * IO::load(b.x[k]);
    }
    if (KIND == KIND_CUBA) {
      di = di + c * dh;
      b.gx[k] = IO::store(di);
      di = b.alpha * di;
    } else {
      b.gx[k] = IO::store(c * dh);
    }
    dv = beta * dh;
  }
  b.gv0[n] = IO::store(dv);
  if (KIND == KIND_CUBA) b.gi0[n] = IO::store(di);
  if (KIND == KIND_ALIF) b.ga0[n] = IO::store(da);
  if (b.want_beta) b.gbeta[n] = acc_beta;
  if (b.want_thr) b.gthr[n] = acc_thr;
}

}  // namespace snn
