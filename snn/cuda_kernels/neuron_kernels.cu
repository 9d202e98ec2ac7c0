// Fused whole-sequence kernels: one thread per neuron runs the time loop of neuron.cuh, so a
// sequence [T, N] takes one launch forward and one launch backward. Loads and stores of step t
// are coalesced across the threads of a block (element t * N + n).
//
// Each kernel takes one argument struct (declared in kernel_args.h) by value. The storage
// dtype S (float, double, snn::half_t, snn::bf16_t) and the integration kind are template
// parameters; snn/cuda_kernels/ops.py compiles the instantiation a run needs with NVRTC
// (through CuPy) on first use and caches it. The test-suite compiles this same file for the
// host (tests/cuda_kernels/cuda_host_shim.h stands in for the CUDA built-ins) and launches it
// over the real grid on the CPU.
#include "neuron.cuh"

template <typename S, int KIND>
__global__ void __launch_bounds__(256) snn_forward(const snn::ForwardArgs<S> args) {
  const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= args.N) return;
  snn::forward_neuron<S, KIND>(args, n);
}

template <typename S, int KIND>
__global__ void __launch_bounds__(256) snn_backward(const snn::BackwardArgs<S> args) {
  const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= args.N) return;
  snn::backward_neuron<S, KIND>(args, n);
}
