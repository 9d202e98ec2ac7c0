// The arguments of the fused kernels, declared once. Each kernel takes one struct by value,
// built from these lists:
//   - neuron.cuh turns them into snn::ForwardArgs<S> / snn::BackwardArgs<S>;
//   - snn/fused/args.py reads this file and builds the same structs as NumPy records, which
//     the CuPy launcher passes to the kernels and the host-emulated tests pass to the same
//     entry points compiled for the CPU (their layout is checked against offsetof there).
// Field kinds: IN (const S*), OUT (S*), PIN (const A*), POUT (A*), I64 (long long),
// I32 (int), ACC (A), with S the storage dtype and A its compute type (float, or double).
// Keep one X(...) per line.
#pragma once

#define SNN_FORWARD_ARGS(X) \
  X(IN, x)                  \
  X(IN, v0)                 \
  X(IN, i0)                 \
  X(IN, a0)                 \
  X(PIN, beta)              \
  X(PIN, c)                 \
  X(PIN, thr)               \
  X(OUT, spikes)            \
  X(OUT, h)                 \
  X(OUT, a_prev)            \
  X(OUT, v_rec)             \
  X(OUT, vT)                \
  X(OUT, iT)                \
  X(OUT, aT)                \
  X(I64, T)                 \
  X(I64, N)                 \
  X(I32, bs)                \
  X(I32, ts)                \
  X(I32, record)            \
  X(I32, reset)             \
  X(I32, fire)              \
  X(ACC, v_reset)           \
  X(ACC, alpha)             \
  X(ACC, rho)               \
  X(ACC, c_rho)             \
  X(ACC, gamma)             \
  X(ACC, levels)

#define SNN_BACKWARD_ARGS(X) \
  X(IN, h)                   \
  X(IN, a_prev)              \
  X(IN, x)                   \
  X(IN, v0)                  \
  X(PIN, beta)               \
  X(PIN, c)                  \
  X(PIN, thr)                \
  X(IN, gs)                  \
  X(IN, gv)                  \
  X(IN, gvT)                 \
  X(IN, giT)                 \
  X(IN, gaT)                 \
  X(OUT, gx)                 \
  X(OUT, gv0)                \
  X(OUT, gi0)                \
  X(OUT, ga0)                \
  X(POUT, gbeta)             \
  X(POUT, gthr)              \
  X(I64, T)                  \
  X(I64, N)                  \
  X(I32, bs)                 \
  X(I32, ts)                 \
  X(I32, reset)              \
  X(I32, fire)               \
  X(I32, detach)             \
  X(I32, sid)                \
  X(I32, gs_mode)            \
  X(I32, gv_mode)            \
  X(I32, want_beta)          \
  X(I32, decay_input)        \
  X(I32, want_thr)           \
  X(ACC, v_reset)            \
  X(ACC, alpha)              \
  X(ACC, rho)                \
  X(ACC, c_rho)              \
  X(ACC, gamma)              \
  X(ACC, levels)             \
  X(ACC, k0)                 \
  X(ACC, k1)                 \
  X(ACC, k2)
