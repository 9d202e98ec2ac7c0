// A thin stand-in for the CUDA built-ins, so that snn/cuda_kernels/neuron_kernels.cu compiles
// with a host C++ compiler unchanged: kernels become plain functions and the launcher in
// host_launch.cpp sets blockIdx/threadIdx while it walks the grid, one thread at a time.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#error "cuda_host_shim.h is for host compilers only"
#endif

#define __global__
#define __launch_bounds__(...)

struct snn_host_dim3 {
  unsigned int x, y, z;
};

static thread_local snn_host_dim3 blockIdx, threadIdx, blockDim, gridDim;
