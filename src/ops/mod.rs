//! Pure tensor operations, forward next to backward, a slow reference beside every fast path.

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
