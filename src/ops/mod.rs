//! Pure tensor operations, forward next to backward, a slow reference beside every fast path.

pub mod conv;
pub mod conv_transpose;
pub mod gemm;
pub mod pool;
pub mod scratch;
