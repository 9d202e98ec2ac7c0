// The CUDA entry points of snn/cuda_kernels/neuron_kernels.cu, compiled for the host with
// cuda_host_shim.h and launched over the real grid (every block, every thread) on the CPU. The
// test-suite drives them through ctypes with the argument records that the CuPy launcher
// builds (snn/cuda_kernels/ops.py), so everything between the launcher and the arithmetic is
// exercised without a GPU.
#include <cstddef>
#include <cstring>

#include "cuda_host_shim.h"
#include "neuron_kernels.cu"

namespace {

template <typename Args, void (*Kernel)(const Args)>
int launch(const void* bytes, std::size_t size, long long blocks, int threads) {
  if (size != sizeof(Args)) return 2;  // the record does not match the struct
  Args args;
  std::memcpy(&args, bytes, sizeof args);
  gridDim = {(unsigned int)blocks, 1, 1};
  blockDim = {(unsigned int)threads, 1, 1};
  for (long long b = 0; b < blocks; ++b) {
    blockIdx = {(unsigned int)b, 0, 0};
    for (int t = 0; t < threads; ++t) {
      threadIdx = {(unsigned int)t, 0, 0};
      Kernel(args);
    }
  }
  return 0;
}

template <typename S, int K>
int launch_kind(int direction, const void* bytes, std::size_t size, long long blocks,
                int threads) {
  if (direction == 0)
    return launch<snn::ForwardArgs<S>, snn_forward<S, K>>(bytes, size, blocks, threads);
  return launch<snn::BackwardArgs<S>, snn_backward<S, K>>(bytes, size, blocks, threads);
}

template <typename S>
int launch_dtype(int direction, int kind, const void* bytes, std::size_t size,
                 long long blocks, int threads) {
  switch (kind) {
    case snn::KIND_LIF:
      return launch_kind<S, snn::KIND_LIF>(direction, bytes, size, blocks, threads);
    case snn::KIND_LI:
      return launch_kind<S, snn::KIND_LI>(direction, bytes, size, blocks, threads);
    case snn::KIND_CUBA:
      return launch_kind<S, snn::KIND_CUBA>(direction, bytes, size, blocks, threads);
    case snn::KIND_ALIF:
      return launch_kind<S, snn::KIND_ALIF>(direction, bytes, size, blocks, threads);
  }
  return 3;
}

#define SNN_HOST_OFFSET(kind, name) out[i++] = (long long)offsetof(Args, name);

template <typename S>
int layout(int direction, long long* out) {
  int i = 0;
  if (direction == 0) {
    typedef snn::ForwardArgs<S> Args;
    SNN_FORWARD_ARGS(SNN_HOST_OFFSET)
    out[i++] = (long long)sizeof(Args);
  } else {
    typedef snn::BackwardArgs<S> Args;
    SNN_BACKWARD_ARGS(SNN_HOST_OFFSET)
    out[i++] = (long long)sizeof(Args);
  }
  return i;
}

}  // namespace

// direction: 0 forward, 1 backward; dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16
extern "C" int snn_host_launch(int direction, int dtype, int kind, const void* args,
                               std::size_t size, long long blocks, int threads) {
  switch (dtype) {
    case 0:
      return launch_dtype<float>(direction, kind, args, size, blocks, threads);
    case 1:
      return launch_dtype<double>(direction, kind, args, size, blocks, threads);
    case 2:
      return launch_dtype<snn::half_t>(direction, kind, args, size, blocks, threads);
    case 3:
      return launch_dtype<snn::bf16_t>(direction, kind, args, size, blocks, threads);
  }
  return 1;
}

// field offsets of the argument struct followed by its size; returns how many were written
extern "C" int snn_host_layout(int direction, int double_compute, long long* out) {
  return double_compute ? layout<double>(direction, out) : layout<float>(direction, out);
}

// conversions, exposed so the test can compare them with torch's rounding
extern "C" unsigned short snn_host_float_to_half(float f) { return snn::float_to_half(f); }
extern "C" float snn_host_half_to_float(unsigned short h) { return snn::half_to_float(h); }
extern "C" unsigned short snn_host_float_to_bf16(float f) { return snn::float_to_bf16(f); }
