//! Pure tensor operations, forward next to backward, a slow reference beside every fast path:
//! - [`conv`]: convolution, its gradients, the algorithms and the `auto` policy;
//! - [`conv_transpose`]: transposed convolution (the adjoint of `conv`, on the same kernels);
//! - [`pool`]: the pooling family (one loop per family through a strategy enum);
//! - [`activation`], [`linear`], [`loss`], [`norm`]: the layers' element-wise and dense maths;
//! - [`gemm`]: the matrix product every GEMM-based path calls;
//! - [`scratch`]: per-thread reusable buffers; [`simd`]: the one SIMD gate and shared helpers;
//!   [`uninit`]: the views between outputs and outputs that need not be initialised.

pub mod activation;
pub mod conv;
pub mod conv_transpose;
pub mod gemm;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod partials;
pub mod pool;
pub mod scratch;
pub mod simd;
pub mod uninit;
