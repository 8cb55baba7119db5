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

/// Runs `f` on a worker thread of the rayon pool, the calling thread waiting once, or directly
/// when already on one. The parallel loops inside `f` then start on a worker: called from
/// outside the pool each of them would put the caller to sleep and wake it again (two context
/// switches per loop; a LeNet training step runs about 40 of them).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}
